"""A data set's training state put where the service reads it: the items indexed into a Milvus
Lite file and recorded in the catalog, the users' profiles and their training positives as
events in a SQLite store (what `recsys index`, `recsys users import` and posted events do)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from service.bundle import Bundle
from service.index import VectorIndex, open_index
from service.indexing import run_index_job
from service.indexing.readers import read_rows
from service.profiles import import_profiles
from service.state import Event, StateStore, open_store
from training.datasets import Dataset


@dataclass
class Deployed:
    index: VectorIndex
    store: StateStore
    milvus_uri: str
    store_uri: str

    def close(self) -> None:
        self.index.close()
        self.store.close()


def deploy(
    bundle: Bundle,
    dataset: Dataset,
    workdir: Path,
    events_per_user: int,
    milvus_uri: str | None = None,
    store_uri: str | None = None,
) -> Deployed:
    """Index every item, import every profile and post every training positive as a ``read``;
    into a Milvus Lite file and a SQLite store in ``workdir`` unless URIs are given.

    The data sets carry no publish time, so the catalog takes the items in the order of their
    first interaction (never-seen items first): the order the ``fresh`` source reads."""
    workdir.mkdir(parents=True, exist_ok=True)
    milvus_uri = milvus_uri or str(workdir / "milvus.db")
    store_uri = store_uri or f"sqlite:///{workdir / 'state.db'}"
    index = open_index(milvus_uri, timeout_s=30)
    store = open_store(store_uri, events_per_user=events_per_user)
    items = workdir / "items.parquet"
    _by_first_interaction(dataset).to_parquet(items, index=False)
    run_index_job(bundle, index, items, workdir / "checkpoints", catalog=store)
    schema = dataset.schema
    users = workdir / "users.parquet"
    dataset.users.to_parquet(users, index=False)
    profiles = import_profiles(bundle, read_rows(users, schema, key=schema.user_key), store)
    if profiles.skipped:
        raise RuntimeError(f"profiles refused: {profiles.examples}")
    train = dataset.part("train")
    train = train[train["label"] == 1].sort_values("ts", kind="stable")
    for user, group in train.groupby(schema.user_key, sort=False):
        events = [
            Event(str(i), "read", float(t), 1.0)
            for i, t in zip(group[schema.item_key], group["ts"], strict=True)
        ]
        store.add_events(str(user), events)
    return Deployed(index, store, milvus_uri, store_uri)


def _by_first_interaction(dataset: Dataset) -> pd.DataFrame:
    key = dataset.schema.item_key
    first = dataset.interactions.groupby(key)["ts"].min()
    order = dataset.items[key].map(first).fillna(-float("inf"))
    return dataset.items.iloc[order.argsort(kind="stable")]
