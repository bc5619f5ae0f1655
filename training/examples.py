"""Turn a data set's tables into raw feature columns for the encoder.

The ``from_events`` history feature is rebuilt per row from *training* positives strictly
before the row's timestamp: no test interaction leaks into a history, and a row never
sees its own target item.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from service.features.encoder import Columns
from training.datasets import Dataset


class HistoryIndex:
    """Each user's training positives in time order, for "items before t" look-ups."""

    def __init__(self, dataset: Dataset) -> None:
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
            users = joined[schema.user_key].tolist()
            columns[feat.name] = history.before(users, joined["ts"].tolist(), feat.maxlen)
        elif feat.name in joined.columns:
            columns[feat.name] = _clean(joined[feat.name])
    return columns


def side_columns(frame: pd.DataFrame, names: Sequence[str]) -> Columns:
    """Columns of one table (users or items) for the features it holds."""
    return {name: _clean(frame[name]) for name in names if name in frame.columns}


def _clean(series: pd.Series) -> list:
    """Python values, with pandas' NaN for a missing value turned into None."""
    return [None if isinstance(v, float) and v != v else v for v in series.tolist()]
