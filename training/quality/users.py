"""The held-out users of a data set's test split, as requests: the offline protocol's users,
positives and exclusions (`training.retrieval_data`), sampled with a fixed seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.bundle import Bundle
from training.datasets import Dataset
from training.evaluate import retrieval_metrics
from training.examples import HistoryIndex
from training.quality.replay import EvalUser
from training.retrieval_data import build_retrieval_data

SAMPLE_SEED = 0


@dataclass
class HeldOut:
    users: list[EvalUser]
    positives: list[np.ndarray]  # catalog rows
    row_of: dict[str, int]
    offline: dict[str, float]  # the bundle's towers on these users, exact NumPy full ranking


def held_out(bundle: Bundle, dataset: Dataset, sample: int, ks: tuple[int, ...]) -> HeldOut:
    """Test users (``sample`` of them at most; 0 = all) with the context of their last
    training interaction and every training and validation positive to exclude. ``offline``
    is what `recsys train` reports for the same users: the figure the online two-tower search
    should reproduce."""
    data = build_retrieval_data(dataset, HistoryIndex(dataset), bundle.encoder)
    test = data.test
    chosen = np.arange(len(test.user_ids))
    if 0 < sample < len(chosen):
        chosen = np.sort(np.random.default_rng(SAMPLE_SEED).choice(chosen, sample, replace=False))
    context = [f.name for f in dataset.schema.features if f.side == "context"]
    ids = [str(i) for i in data.item_ids]
    users = []
    for n in chosen:
        values = {c: test.columns[c][n] for c in context if c in test.columns}
        exclude = list(dict.fromkeys(ids[r] for r in test.seen[n]))
        known = {c: v for c, v in values.items() if v is not None}
        users.append(EvalUser(str(test.user_ids[n]), known, exclude))
    user_vecs = bundle.embed_users(
        {name: [col[n] for n in chosen] for name, col in test.columns.items()}, len(chosen)
    )
    item_vecs = bundle.embed_items(data.item_columns, len(data.item_ids))
    positives = [test.positives[n] for n in chosen]
    seen = [test.seen[n] for n in chosen]
    return HeldOut(
        users,
        positives,
        {item_id: row for row, item_id in enumerate(ids)},
        retrieval_metrics(user_vecs, item_vecs, seen, positives, ks),
    )
