"""Traffic-sized export -> training: a real SQLite store holding the synthetic posts data as
served impressions (8 items per answer) and attributed clicks, exported by the service and
trained on by `training` without code changes; the retrained towers beat popularity."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from service.bundle import load_bundle
from service.feedback.export import export_dataset
from service.feedback.records import Feedback, Impression, ShownItem
from service.state import Retention, open_store

KEEP = Retention(10**7, 10**9)
PER_ANSWER = 8
V = "default"  # the variant


def fill(store, data: Path) -> tuple[int, int]:
    """Each user's generated impressions as answers of 8 (an item once per answer, as the
    service answers), their clicks as feedback; returns (items shown, clicks)."""
    items = pd.read_parquet(data / "items.parquet").to_dict("records")
    store.put_items([(r["post_id"], {"topic_id": r["topic_id"]}) for r in items], "v0")
    users = pd.read_parquet(data / "users.parquet").set_index("client_id")
    start, impressions, clicks = time.time() - 3600, [], []
    for n, (user, rows) in enumerate(pd.read_parquet(data / "interactions.parquet").groupby(
        "client_id", sort=False
    )):  # fmt: skip
        profile = {k: list(v) for k, v in users.loc[user].items()}
        rows = rows.to_dict("records")
        for a in range(0, len(rows), PER_ANSWER):
            answer = list({r["post_id"]: r for r in reversed(rows[a : a + PER_ANSWER])}.values())
            request_id, ts = f"{user}-{a}", start + n + a / 100
            shown = tuple(
                ShownItem(r["post_id"], i, 0.5, "retrieval") for i, r in enumerate(answer, 1)
            )
            context = {"client_type": answer[0]["client_type"]}
            impressions.append(
                Impression(request_id, ts, user, "v0", "default", shown, context, profile)
            )
            clicks += [
                Feedback(request_id, user, r["post_id"], "click", 1.0, ts + 1, True, i, "v0", V)
                for i, r in enumerate(answer, 1)
                if r["label"]
            ]
    store.add_impressions(impressions, KEEP)
    store.add_feedback(clicks, KEEP)
    return sum(len(i.items) for i in impressions), len(clicks)


def test_an_export_of_served_traffic_retrains_better_than_popularity(
    posts_dir: Path, posts_bundle: Path, tmp_path: Path
):
    from training.compare import with_epoch_cap
    from training.config import TrainConfig
    from training.pipeline import train_bundle

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    shown, clicks = fill(store, posts_dir)
    bundle = load_bundle(posts_bundle)
    summary = export_dataset(
        store, bundle.encoder.schema, bundle.manifest.models["ranker"].features, tmp_path / "out"
    )
    store.close()
    assert summary.positives == clicks and summary.dropped == 0
    assert summary.interactions == shown and summary.users == 3000

    path = train_bundle(
        str(summary.config), None, tmp_path / "bundles", with_epoch_cap(TrainConfig(), 2), print
    )
    metrics = json.loads((path / "manifest.json").read_text())["metrics"]
    retrieval = metrics["retrieval"]
    assert retrieval["dssm"]["recall@50"] > 1.2 * retrieval["popularity"]["recall@50"], retrieval
    assert metrics["ranker"]["auc"] > 0.65, metrics["ranker"]
