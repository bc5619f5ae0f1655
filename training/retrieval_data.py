"""What the two towers train and are evaluated on, built from a data set's split.

Pairs are training positives (user state at the pair's time, the pair's item); evaluation
users are those with held-out positives, embedded with their state at the end of training
(profile, latest history, last seen context) and ranked against the whole catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.features import FeatureEncoder
from service.features.encoder import Arrays, Columns
from training.datasets import Dataset
from training.examples import HistoryIndex, feature_columns, side_columns
from training.models.dssm import item_features, user_features


@dataclass
class EvalUsers:
    """Users with held-out positives: tower inputs, seen items and positives (catalog rows)."""

    user_ids: list[str]
    arrays: Arrays
    seen: list[np.ndarray]
    positives: list[np.ndarray]
    columns: Columns  # the raw user-tower columns ``arrays`` were encoded from


@dataclass
class RetrievalData:
    item_ids: np.ndarray  # catalog order
    items: Arrays  # item tower inputs, one row per catalog item
    item_columns: Columns  # the raw columns ``items`` were encoded from
    pairs: Arrays  # user tower inputs, one row per training positive
    pair_users: np.ndarray  # user key of each pair
    pair_items: np.ndarray  # catalog row of each pair's item
    log_q: np.ndarray  # [catalog] log of each item's share of training positives
    popularity: np.ndarray  # [catalog] training positives per item
    val: EvalUsers
    test: EvalUsers


def build_retrieval_data(
    dataset: Dataset, history: HistoryIndex, encoder: FeatureEncoder
) -> RetrievalData:
    schema = dataset.schema
    ukey, ikey = schema.user_key, schema.item_key
    item_ids = dataset.items[ikey].to_numpy()
    row_of = pd.Series(np.arange(len(item_ids)), index=item_ids)
    item_columns = side_columns(dataset.items, [f.name for f in item_features(schema)])
    items = encoder.encode(item_columns, item_features(schema))

    def positives(split: str) -> pd.DataFrame:
        part = dataset.part(split)
        part = part[(part["label"] == 1) & part[ikey].isin(row_of.index)]
        return part

    train_pos = positives("train")
    pair_items = row_of[train_pos[ikey]].to_numpy()
    pairs = encoder.encode(
        feature_columns(dataset, train_pos, history), user_features(schema), len(train_pos)
    )
    popularity = np.bincount(pair_items, minlength=len(item_ids)).astype(np.float64)
    log_q = np.log(np.maximum(popularity, 1.0) / max(popularity.sum(), 1.0))

    def by_user(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {u: row_of[g[ikey]].to_numpy() for u, g in frame.groupby(ukey)}

    train_seen, val_pos, test_pos = (
        by_user(train_pos),
        by_user(positives("val")),
        by_user(positives("test")),
    )
    last_train = dataset.part("train").sort_values("ts", kind="stable").groupby(ukey).tail(1)

    def eval_users(held_out: dict[str, np.ndarray], seen_also: dict[str, np.ndarray]) -> EvalUsers:
        users = sorted(held_out)
        state = pd.DataFrame({ukey: users}).merge(
            last_train.drop(columns=[ikey, "ts", "label", "split"]), on=ukey, how="left"
        )
        state["ts"] = np.inf
        state[ikey] = None
        empty = np.empty(0, dtype=np.int64)
        seen = [np.concatenate([train_seen.get(u, empty), seen_also.get(u, empty)]) for u in users]
        columns = feature_columns(dataset, state, history)
        return EvalUsers(
            user_ids=users,
            arrays=encoder.encode(columns, user_features(schema), len(users)),
            seen=seen,
            positives=[held_out[u] for u in users],
            columns=columns,
        )

    return RetrievalData(
        item_ids=item_ids,
        items=items,
        item_columns=item_columns,
        pairs=pairs,
        pair_users=train_pos[ukey].to_numpy(),
        pair_items=pair_items,
        log_q=log_q,
        popularity=popularity,
        val=eval_users(val_pos, {}),
        test=eval_users(test_pos, val_pos),
    )
