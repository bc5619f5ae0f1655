"""Turn a data set's tables into raw feature columns for the encoder.

The ``from_events`` history feature is rebuilt per row from *training* positives only, so
no held-out interaction leaks into a history, and a row never sees its own item. Which
training positives depends on the split, so that a training row sees the state an
evaluated user is seen in: with a time split a test user's state is everything before the
test period, so a row gets the positives strictly before its time ("before"); with a
random split a test user's state is all of the user's training positives, so a row gets
all of them but its own item ("others"). Training on earlier-only histories for a random
split made DSSM lose to BPR on MovieLens (docs/rankers.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from service.features.encoder import Columns
from training.datasets import Dataset


class HistoryIndex:
    """Each user's training positives in time order; ``mode`` "before" for a time split,
    "others" for a random one (see the module docstring)."""

    def __init__(self, dataset: Dataset) -> None:
        self.mode = "others" if dataset.split_method == "random" else "before"
        key_u, key_i = dataset.schema.user_key, dataset.schema.item_key
        positives = dataset.part("train")
        positives = positives[positives["label"] == 1].sort_values("ts", kind="stable")
        self._items: dict[str, np.ndarray] = {}
        self._ts: dict[str, np.ndarray] = {}
        for user, group in positives.groupby(key_u, sort=False):
            self._items[user] = group[key_i].to_numpy()
            self._ts[user] = group["ts"].to_numpy()

    def before(self, users: Sequence[str], ts: Sequence[float], maxlen: int) -> list[list[str]]:
        """For each (user, t): the last ``maxlen`` training positives with time < t."""
        out = []
        empty = np.empty(0, dtype=object)
        for user, t in zip(users, ts, strict=True):
            times = self._ts.get(user)
            if times is None:
                out.append([])
                continue
            end = int(np.searchsorted(times, t, side="left"))
            out.append(list(self._items.get(user, empty)[max(0, end - maxlen) : end]))
        return out

    def others(self, users: Sequence[str], items: Sequence[object], maxlen: int) -> list[list[str]]:
        """For each (user, item): the last ``maxlen`` training positives other than the item."""
        out = []
        empty = np.empty(0, dtype=object)
        for user, item in zip(users, items, strict=True):
            seen = self._items.get(user, empty)
            out.append(list(seen[seen != item][-maxlen:]) if len(seen) else [])
        return out

    def rows(
        self, users: Sequence[str], items: Sequence[object], ts: Sequence[float], maxlen: int
    ) -> list[list[str]]:
        """The history of each row, by the index's mode."""
        if self.mode == "others":
            return self.others(users, items, maxlen)
        return self.before(users, ts, maxlen)

    def latest(self, users: Sequence[str], maxlen: int) -> list[list[str]]:
        """Each user's last ``maxlen`` training positives: the state at serving time."""
        return self.before(users, [np.inf] * len(users), maxlen)

    def seen(self, user: str) -> np.ndarray:
        return self._items.get(user, np.empty(0, dtype=object))


def feature_columns(dataset: Dataset, rows: pd.DataFrame, history: HistoryIndex) -> Columns:
    """Raw columns for every schema feature, one value per row of ``rows``.

    ``rows`` needs the user key, item key and ``ts``; context columns come from ``rows``,
    user and item features from the profile and catalog tables.
    """
    schema = dataset.schema
    joined = rows.merge(dataset.users, on=schema.user_key, how="left", suffixes=("", "_u"))
    joined = joined.merge(dataset.items, on=schema.item_key, how="left", suffixes=("", "_i"))
    columns: dict[str, list] = {}
    for feat in schema.features:
        if getattr(feat, "from_events", False):
            columns[feat.name] = history.rows(
                joined[schema.user_key].tolist(),
                joined[schema.item_key].tolist(),
                joined["ts"].tolist(),
                feat.maxlen,
            )
        elif feat.name in joined.columns:
            columns[feat.name] = _clean(joined[feat.name])
    return columns


def side_columns(frame: pd.DataFrame, names: Sequence[str]) -> Columns:
    """Columns of one table (users or items) for the features it holds."""
    return {name: _clean(frame[name]) for name in names if name in frame.columns}


def _clean(series: pd.Series) -> list:
    """Python values, with pandas' NaN for a missing value turned into None."""
    return [None if isinstance(v, float) and v != v else v for v in series.tolist()]
