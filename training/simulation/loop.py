"""The loop, round by round, against the running service (``recsys simulate``).

Round 0 serves a bundle trained on a short generated log. Each later round exports the
impression log and its attributed clicks (`service.feedback.export`), retrains on them with
the serving bundle as the gate's baseline, indexes the new bundle's collection, reloads it
through the gated admin route, and runs an A/B experiment (sticky by user) of the round-0
bundle against the one now serving. Round 1 also offers a deliberately worse bundle (one
epoch at a step size too small to learn), which the gate must refuse. Users click with the
latent truth's probability (`World`); a popularity list, scored by the same truth on the same
requests, is the counterfactual floor.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from service.bundle import load_bundle
from service.feedback.experiment_report import count, report
from service.feedback.export import export_dataset
from service.index import open_index
from service.index.lite_server import LiteServer
from service.indexing import run_index_job
from service.loopback import free_port
from service.state import open_store
from training.compare import with_epoch_cap
from training.config import TrainConfig
from training.datasets import load_dataset
from training.datasets.posts import SynthConfig, write
from training.pipeline import train_bundle
from training.quality.deploy import deploy
from training.simulation.service import Api, running_service
from training.simulation.world import World

CONTROL, RETRAINED = "round0", "retrained"


@dataclass(frozen=True)
class SimulationSettings:
    workdir: Path
    rounds: int = 3
    users: int = 2000
    items: int = 1000
    initial_impressions: int = 10  # per user, in the generated log round 0 trains on
    requests_per_user: int = 2  # per round
    k: int = 10
    epochs: int | None = None  # cap training epochs (a quick run)
    seed: int = 7


def run_simulation(s: SimulationSettings, say: Callable[[str], None]) -> dict[str, Any]:
    synth = SynthConfig(
        users=s.users, items=s.items, impressions_per_user=s.initial_impressions, seed=s.seed
    )
    data, bundles = s.workdir / "data", s.workdir / "bundles"
    write(synth, data)
    world = World(synth, s.seed)
    train = TrainConfig().updated({"seed": s.seed})
    train = with_epoch_cap(train, s.epochs) if s.epochs else train
    say(f"round 0: training on the generated log ({s.users} users x {s.initial_impressions})")
    first = train_bundle("posts", data, bundles, train, _quiet)
    dataset = load_dataset("posts", data, seed=s.seed)
    seen = _positives(dataset.part("train"))
    popular = _popular(dataset.part("train"))
    store_uri = f"sqlite:///{s.workdir / 'state.db'}"
    with LiteServer(s.workdir / "milvus.db", port=free_port()) as lite:
        deploy(load_bundle(first), dataset, s.workdir / "serve", 200, lite.uri, store_uri).close()
        with running_service(first, bundles, s.workdir, lite.uri, store_uri) as url:
            api = Api(url)
            traffic = Traffic(s, world, api, seen, popular, store_uri, say)
            rollout = Rollout(
                api, train, bundles, lite.uri, store_uri, s.workdir, traffic.started, say
            )
            try:
                rounds = [traffic.serve_round(0, {"default": first})]
                serving = first
                for n in range(1, s.rounds + 1):
                    serving = rollout.retrain(n, serving)
                    api.experiment("loop", {CONTROL: first, RETRAINED: serving})
                    rounds.append(traffic.serve_round(n, {CONTROL: first, RETRAINED: serving}))
            finally:
                api.close()
        totals = traffic.totals()
    return {
        "settings": {k: v for k, v in asdict(s).items() if k != "workdir"},
        "rounds": rounds,
        "gate": rollout.gate_checks,
        "totals": totals,
    }


class Traffic:
    """The simulated users' side: requests, clicks, and what was accepted."""

    def __init__(
        self,
        s: SimulationSettings,
        world: World,
        api: Api,
        seen: dict[str, set[str]],
        popular: list[str],
        store_uri: str,
        say: Callable[[str], None],
    ) -> None:
        self.s, self.world, self.api, self.seen, self.popular = s, world, api, seen, popular
        self.store_uri, self.say = store_uri, say
        self.answers = self.clicks = 0
        self.variant_of: dict[str, set[str]] = defaultdict(set)  # in the experiment's rounds
        self.started = time.time()

    def serve_round(self, n: int, bundles: dict[str, Path]) -> dict[str, Any]:
        since = time.time()
        expected: dict[str, list[float]] = defaultdict(list)
        users = list(self.world.users)
        self.world.rng.shuffle(users)
        for _ in range(self.s.requests_per_user):
            for user in users:
                context = self.world.context(user)
                answer = self.api.recommend(user, self.s.k, context)
                self.answers += 1
                items = [i["item_id"] for i in answer["items"]]
                if n > 0:
                    self.variant_of[user].add(answer["variant"])
                p = self.world.click_probability(user, items, context)
                expected[answer["variant"]].append(float(p.mean()) if len(p) else 0.0)
                popular = [i for i in self.popular if i not in self.seen[user]][: self.s.k]
                expected["popularity"].append(
                    float(self.world.click_probability(user, popular, context).mean())
                )
                clicked = self.world.clicks(user, items, context)
                if clicked:
                    self.api.click(user, answer["request_id"], clicked)
                    self.clicks += len(clicked)
                    self.seen[user].update(clicked)
        time.sleep(0.6)  # the impression writer flushes every 0.2 s
        figures = self._round_figures(n, since, bundles, expected)
        ctrs = ", ".join(f"{v['variant']} {v['ctr']:.4f}" for v in figures["variants"])
        self.say(f"round {n}: {len(users) * self.s.requests_per_user} answers; CTR {ctrs}")
        return figures

    def _round_figures(
        self, n: int, since: float, bundles: dict[str, Path], expected: dict[str, list[float]]
    ) -> dict[str, Any]:
        store = open_store(self.store_uri)
        try:
            counts = count(store.impressions_since(since), store.feedback_since(since))
        finally:
            store.close()
        control = "default" if n == 0 else CONTROL
        rows = []
        for row in report(counts, control):
            figures = {**asdict(row), **asdict(row.counts)}
            del figures["counts"]
            figures["expected_ctr"] = float(np.mean(expected[row.counts.variant]))
            figures["bundle"] = bundles[row.counts.variant].name
            rows.append(figures)
        return {
            "round": n,
            "variants": rows,
            "popularity_expected_ctr": float(np.mean(expected["popularity"])),
        }

    def totals(self) -> dict[str, Any]:
        """What the service accepted against what the store holds, and whether every user
        kept one variant through the experiment's rounds."""
        store = open_store(self.store_uri)
        try:
            impressions = sum(1 for _ in store.impressions_since(self.started))
            positives = sum(1 for f in store.feedback_since(self.started) if f.positive)
        finally:
            store.close()
        sticky = bool(self.variant_of) and all(len(v) == 1 for v in self.variant_of.values())
        return {
            "answers": self.answers,
            "impressions_logged": impressions,
            "clicks_posted": self.clicks,
            "clicks_attributed": positives,
            "variant_sticky_per_user": sticky,
        }


class Rollout:
    """The operator's side of a round: export, retrain, index, gated reload."""

    def __init__(
        self,
        api: Api,
        train: TrainConfig,
        bundles: Path,
        milvus_uri: str,
        store_uri: str,
        workdir: Path,
        since: float,
        say: Callable[[str], None],
    ) -> None:
        self.api, self.train, self.bundles, self.say = api, train, bundles, say
        self.milvus_uri, self.store_uri, self.workdir = milvus_uri, store_uri, workdir
        self.since = since  # the export takes the traffic from then on
        self.gate_checks: list[dict[str, Any]] = []

    def retrain(self, n: int, serving: Path) -> Path:
        """Retrain on all traffic so far and offer it to the gate; the bundle serving after.
        In round 1 the gate is also offered a deliberately worse bundle."""
        exported = self._export(serving, n)
        candidate = train_bundle(str(exported), None, self.bundles, self.train, _quiet, serving)
        if self._offer("retrained", n, candidate):
            serving = candidate
        if n == 1:
            worse = _worse_bundle(exported, self.bundles, self.train, serving)
            if self._offer("worse", n, worse):  # the gate missed it: serve the retrained one
                self.api.reload(serving, force=True)
        return serving

    def _offer(self, which: str, n: int, bundle: Path) -> bool:
        _index(bundle, self.milvus_uri, self.store_uri, self.workdir / "serve" / "items.parquet")
        status, answer = self.api.reload(bundle)
        self.gate_checks.append(_gate(which, n, status, answer))
        self.say(f"round {n}: reload of the {which} bundle -> {status}")
        return status == 200

    def _export(self, serving: Path, n: int) -> Path:
        store = open_store(self.store_uri)
        try:
            bundle = load_bundle(serving)
            summary = export_dataset(
                store,
                bundle.encoder.schema,
                bundle.manifest.models["ranker"].features,
                self.workdir / f"traffic-{n}",
                self.since,
            )
        finally:
            store.close()
        return summary.config


def _positives(train: pd.DataFrame) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for user, item in train.loc[train["label"] == 1, ["client_id", "post_id"]].itertuples(
        index=False
    ):
        seen[user].add(item)
    return seen


def _popular(train: pd.DataFrame) -> list[str]:
    clicks = Counter(train.loc[train["label"] == 1, "post_id"])
    return [item for item, _ in clicks.most_common()]


def _index(bundle: Path, milvus_uri: str, store_uri: str, items: Path) -> None:
    index, store = open_index(milvus_uri, timeout_s=30), open_store(store_uri)
    try:
        run_index_job(load_bundle(bundle), index, items, bundle / ".checkpoints", catalog=store)
    finally:
        index.close()
        store.close()


def _worse_bundle(exported: Path, bundles: Path, train: TrainConfig, serving: Path) -> Path:
    """The same exported data, one epoch at a step size too small to learn: worse by design
    (a bundle trained on shuffled data would not do: the gate scores both bundles on the
    candidate's own test split)."""
    barely = train.updated({"ranker": {"learning_rate": 1e-6}, "dssm": {"learning_rate": 1e-6}})
    return train_bundle(str(exported), None, bundles, with_epoch_cap(barely, 1), _quiet, serving)


def _gate(which: str, n: int, status: int, answer: dict[str, Any]) -> dict[str, Any]:
    gate = answer.get("gate") or {}
    return {
        "bundle": which,
        "round": n,
        "status": status,
        "decision": gate.get("decision", "refused" if status == 409 else None),
        "candidate": gate.get("candidate"),
        "baseline": gate.get("baseline"),
        "message": (answer.get("error") or {}).get("message"),
    }


def _quiet(_message: str) -> None:
    pass
