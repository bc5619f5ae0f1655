"""One quality run on one data set: per seed a bundle (trained, or reused from the cache),
deployed on Milvus Lite + SQLite, its held-out users replayed through the recommender for
every arm, and the figures of each arm."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from service.bundle import Bundle, load_bundle
from service.metrics import Metrics
from service.model import load_serving_model
from service.online.recommender import Recommender
from service.settings import Settings
from training.datasets import Dataset, load_dataset
from training.quality import arms as arm_sets
from training.quality import measure
from training.quality.deploy import Deployed, deploy
from training.quality.replay import Arm, replay
from training.quality.users import HeldOut, held_out
from training.report import spread

Report = Callable[[str], None]
DEADLINE_MS = 10_000.0  # offline: a slow moment of a shared machine must not change a figure
VECTOR_PAGE = 1000


@dataclass(frozen=True)
class QualitySettings:
    dataset: str
    data_dir: Path | None = None
    split: str | None = "time"  # None: the data set config's split
    seeds: tuple[int, ...] = (1, 2, 3)
    bundle: Path | None = None  # measure this bundle (one seed: its own) instead of training
    users: int = 1000  # held-out users sampled (0: all)
    candidates: int = 200
    mixes: dict[str, dict[str, float]] = field(default_factory=lambda: dict(arm_sets.DEFAULT_MIXES))
    diversity_mix: str = arm_sets.TWO_TOWER
    mmr_weights: tuple[float, ...] = (0.9, 0.8, 0.7, 0.5, 0.3)
    caps: tuple[int, ...] = (3, 2, 1)
    cap_attribute: str | None = None  # default: the schema's first filterable item feature
    epochs: int | None = None  # cap training epochs (a quick run)
    cache: Path = Path("bench-results/quality")


def run_quality(settings: QualitySettings, report: Report = print) -> dict[str, Any]:
    started = time.perf_counter()
    runs = []
    for seed, path in _bundles(settings, report):
        runs.append(_one_seed(settings, seed, path, report))
    return {
        "dataset": settings.dataset,
        "split": runs[0]["split"],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "settings": _jsonable(asdict(settings)),
        "protocol": PROTOCOL,
        "runs": runs,
        "summary": summarize(runs),
        "seconds": round(time.perf_counter() - started, 1),
    }


PROTOCOL = (
    "held-out users of the test split (sampled with a fixed seed), each asked through "
    "service.online.recommender.Recommender on Milvus Lite (FLAT) with the bundle's ONNX "
    "models; profiles, training positives as events, the context of the user's last training "
    "interaction; every training and validation positive excluded. Candidates: the answer "
    "with k = candidates (every candidate, in the ranker's order); final: its head (what a "
    "smaller k returns); two-tower alone: the two_tower candidates in cosine order."
)


def _one_seed(settings: QualitySettings, seed: int, path: Path, report: Report) -> dict[str, Any]:
    bundle = load_bundle(path)
    split = bundle.manifest.metrics["dataset"].get("split", settings.split)
    seed = int(bundle.manifest.training_config.get("seed", seed))
    dataset = load_dataset(settings.dataset, settings.data_dir, seed=seed, split=split)
    users = held_out(bundle, dataset, settings.users, (10, 50))
    report(f"seed {seed}: {len(users.users)} held-out users, offline two-tower {users.offline}")
    workdir = settings.cache / "deploy" / f"{bundle.version}"
    shutil.rmtree(workdir, ignore_errors=True)
    serving = Settings(
        search_deadline_ms=DEADLINE_MS,
        rank_deadline_ms=DEADLINE_MS,
        source_deadlines_ms=dict.fromkeys(("item_to_item", "trending", "fresh"), DEADLINE_MS),
    )
    deployed = deploy(bundle, dataset, workdir, serving.events_per_user)
    try:
        arms = _measure_arms(settings, bundle, dataset, deployed, users, serving, report)
    finally:
        deployed.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "seed": seed,
        "split": split,
        "bundle": bundle.version,
        "users": len(users.users),
        "offline_two_tower": users.offline,
        **arms,
    }


def _measure_arms(
    settings: QualitySettings,
    bundle: Bundle,
    dataset: Dataset,
    deployed: Deployed,
    users: HeldOut,
    serving: Settings,
    report: Report,
) -> dict[str, Any]:
    model = load_serving_model(bundle.path, deployed.index, deployed.store)
    recommender = Recommender(deployed.index, deployed.store, serving, Metrics())
    try:
        retrieval = {}
        for arm in arm_sets.retrieval_arms(settings.mixes, settings.candidates):
            answers = replay(recommender, model, arm, users.users)
            retrieval[arm.name] = _retrieval_figures(arm, answers, users)
            report(f"  {arm.name}: {retrieval[arm.name]['summary']}")
        attribute = settings.cap_attribute or dataset.schema.filterable()[0].name
        vectors = _vectors(deployed, bundle.version, list(users.row_of))
        diversity = []
        shares = settings.mixes[settings.diversity_mix]
        for arm in arm_sets.diversity_arms(
            shares, settings.candidates, settings.mmr_weights, settings.caps, attribute
        ):
            answers = replay(recommender, model, arm, users.users)
            k = arm_sets.DIVERSITY_K
            point = {
                **arm.labels,
                **measure.list_metrics(answers, users.positives, users.row_of, (k,)),
                f"ild@{k}": measure.intra_list_diversity(answers, vectors, k),
                f"distinct_{attribute}@{k}": measure.distinct_values(
                    answers, model.items.attributes, attribute, k
                ),
                "failures": measure.failures(answers),
            }
            diversity.append(point)
            report(f"  diversity {arm.name}: ndcg@10 {point['ndcg@10']}, ild@10 {point['ild@10']}")
    finally:
        recommender.close()
    return {"retrieval": retrieval, "diversity_mix": settings.diversity_mix, "diversity": diversity}


def _retrieval_figures(arm: Arm, answers: list, users: HeldOut) -> dict[str, Any]:
    n = arm.candidates
    candidates = measure.list_metrics(answers, users.positives, users.row_of, (n,))
    final = measure.list_metrics(answers, users.positives, users.row_of, (10, 50))
    figures: dict[str, Any] = {
        **arm.labels,
        "candidates": {f"recall@{n}": candidates[f"recall@{n}"]},
        "final": final,
        "candidate_sources": measure.source_shares(answers),
        "final_sources@10": measure.source_shares(answers, 10),
        "failures": measure.failures(answers),
    }
    if set(arm.sources) == {"two_tower"}:
        figures["two_tower_order"] = measure.list_metrics(
            answers, users.positives, users.row_of, (10, 50), measure.two_tower_order
        )
    figures["summary"] = {
        f"candidates recall@{n}": candidates[f"recall@{n}"],
        "final recall@50": final.get("recall@50"),
        "final ndcg@10": final["ndcg@10"],
    }
    return figures


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over seeds of each arm's headline figures."""
    stats = spread
    out: dict[str, Any] = {"retrieval": {}, "diversity": [], "offline_two_tower": {}}
    for metric in ("recall@50", "ndcg@10"):
        out["offline_two_tower"][metric] = stats([r["offline_two_tower"][metric] for r in runs])
    for name in runs[0]["retrieval"]:
        arms = [r["retrieval"][name] for r in runs]
        figures = {
            key: stats([a["summary"][key] for a in arms if a["summary"][key] is not None])
            for key in arms[0]["summary"]
            if arms[0]["summary"][key] is not None
        }
        if "two_tower_order" in arms[0]:
            for metric in ("recall@50", "ndcg@10"):
                figures[f"two_tower order {metric}"] = stats(
                    [a["two_tower_order"][metric] for a in arms]
                )
        out["retrieval"][name] = figures
    for n, point in enumerate(runs[0]["diversity"]):
        points = [r["diversity"][n] for r in runs]
        keys = [k for k, v in point.items() if isinstance(v, float) and k != "value"]
        out["diversity"].append(
            {
                **{k: v for k, v in point.items() if k in ("knob", "value", "attribute")},
                **{k: stats([p[k] for p in points]) for k in keys},
            }
        )
    return out


def _bundles(settings: QualitySettings, report: Report):
    """(seed, bundle path) per seed: ``settings.bundle`` alone, or one trained per seed
    (kept in the cache, so a second run only measures)."""
    if settings.bundle is not None:
        yield settings.seeds[0], settings.bundle
        return
    from training.config import TrainConfig
    from training.pipeline import train_bundle

    for seed in settings.seeds:
        tag = f"{Path(settings.dataset).stem}_{settings.split or 'config'}_seed{seed}"
        folder = settings.cache / "bundles" / tag
        done = sorted(p for p in folder.glob("*") if (p / "manifest.json").is_file())
        if done:
            report(f"seed {seed}: reusing {done[-1]}")
            yield seed, done[-1]
            continue
        from training.compare import with_epoch_cap

        cfg = TrainConfig().updated({"seed": seed})
        if settings.epochs is not None:
            cfg = with_epoch_cap(cfg, settings.epochs)
        report(f"seed {seed}: training a bundle on the {settings.split or 'config'} split")
        yield (
            seed,
            train_bundle(
                settings.dataset,
                settings.data_dir,
                folder,
                cfg,
                lambda _m: None,
                split=settings.split,
            ),
        )


def _vectors(deployed: Deployed, version: str, ids: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), VECTOR_PAGE):
        out.update(deployed.index.vectors(version, ids[start : start + VECTOR_PAGE]))
    return out


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value
