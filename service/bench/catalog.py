"""A benchmark deployment of any size from a bundle alone: synthetic items and users drawn from
the bundle's own vocabularies (so they encode like real ones), indexed with the batch job, the
catalog and profiles in a SQLite store, and a few recent events per user (history features
and exclusions are exercised, as in production)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from service.bundle import Bundle
from service.features.schema import DenseFeat, Feature, SparseFeat, VarLenSparseFeat
from service.index import open_index
from service.indexing import run_index_job
from service.profiles import import_profiles
from service.state import Event, open_store

EVENTS_PER_USER = 10
ITEMS_FILE, USERS_FILE = "items.parquet", "users.json"


@dataclass(frozen=True)
class BenchCatalog:
    workdir: Path  # items.parquet, users.json (profile + history: the prototype's memory)
    milvus_uri: str
    store_uri: str
    items: int
    user_ids: list[str]


def build_catalog(
    bundle: Bundle, items: int, users: int, workdir: Path, seed: int = 0
) -> BenchCatalog:
    """Index ``items`` synthetic items into a Milvus Lite file under ``workdir`` and record
    them, ``users`` profiles and their events in a SQLite store there. A complete catalog
    already in ``workdir`` is reused."""
    milvus_uri, store_uri = str(workdir / "milvus.db"), f"sqlite:///{workdir / 'state.db'}"
    users_path = workdir / USERS_FILE
    if users_path.exists():
        user_ids = list(json.loads(users_path.read_text()))
        return BenchCatalog(workdir, milvus_uri, store_uri, items, user_ids)
    rng = np.random.default_rng(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    schema = bundle.encoder.schema
    items_path = workdir / ITEMS_FILE
    item_rows = list(_rows(bundle, schema.item_key, "item", items, "p", rng))
    pq.write_table(pa.Table.from_pylist(item_rows), items_path)
    item_ids = [r[schema.item_key] for r in item_rows]
    profiles = {
        r[schema.user_key]: r for r in _rows(bundle, schema.user_key, "user", users, "u", rng)
    }
    history = {u: list(rng.choice(item_ids, EVENTS_PER_USER, replace=False)) for u in profiles}
    index, store = open_index(milvus_uri, timeout_s=60), open_store(store_uri, 200)
    try:
        run_index_job(bundle, index, items_path, workdir / "checkpoints", catalog=store)
        refused = import_profiles(bundle, list(profiles.values()), store).skipped
        if refused:
            raise RuntimeError(f"{refused} synthetic profiles refused by the bundle")
        for user_id, item_list in history.items():
            store.add_events(user_id, [Event(i, "read", float(n)) for n, i in enumerate(item_list)])
    finally:
        index.close()
        store.close()
    history_name = schema.history.name if schema.history else None
    memory = {
        u: {k: v for k, v in p.items() if k != schema.user_key}
        | ({history_name: [str(i) for i in history[u]]} if history_name else {})
        for u, p in profiles.items()
    }
    users_path.write_text(json.dumps(memory))  # last: its presence marks a complete catalog
    return BenchCatalog(workdir, milvus_uri, store_uri, items, list(memory))


def _rows(
    bundle: Bundle, key: str, side: str, n: int, prefix: str, rng: np.random.Generator
) -> Iterator[dict[str, Any]]:
    """``n`` rows of the features stored for ``side`` (not context, not event history); ids
    ``prefix0..`` so the first ones are ids the model was trained on."""
    schema = bundle.encoder.schema
    features = [
        f
        for f in schema.on(side)
        if f.name != key and not (isinstance(f, VarLenSparseFeat) and f.from_events)
    ]
    for k in range(n):
        yield {key: f"{prefix}{k}", **{f.name: _value(bundle, f, rng) for f in features}}


def _value(bundle: Bundle, feat: Feature, rng: np.random.Generator) -> Any:
    if isinstance(feat, DenseFeat):
        values = rng.normal(0, 0.2, feat.dim).astype(np.float32).tolist()
        return values if feat.dim > 1 else values[0]
    tokens = bundle.encoder.vocabs[feat.table].tokens
    if isinstance(feat, SparseFeat):
        return tokens[int(rng.integers(len(tokens)))]
    picked = rng.choice(tokens, min(len(tokens), int(rng.integers(1, feat.maxlen + 1))), False)
    if feat.weighted:
        return [
            f"{t}:{w:.3f}" for t, w in zip(picked, rng.dirichlet(np.ones(len(picked))), strict=True)
        ]
    return [str(t) for t in picked]
