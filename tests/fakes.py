"""Hand-written fakes for the unit tests, all in one place.

- `FakeModel`: the online pipeline's model (`service.online.ports.ServableModel`) with a NumPy
  user encoder and a dot-product ranker over random embedding tables, a real feature encoder
  and a real item table; switches make the ranker raise or sleep.
- `flaky_store`: a real store that fails every call while ``down`` is set.
- `slow_index`: a real exact index that sleeps before each search, or is unreachable.
- `fake_loader`: a `ModelLoader` that serves fake models by bundle folder name.

Fakes are for fast tests of logic; the integration and e2e tiers use the real parts.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.features import DenseFeat, FeatureEncoder, FeatureSchema, SparseFeat, VarLenSparseFeat
from service.index import IndexUnavailable, VectorIndex
from service.model import ItemTable
from service.online.ports import EncodedUser, ModelInfo, ModelLoader, ModelLoadError
from service.state import StateStore, StoreError
from service.validation import (
    RequestRules,
    attribute_columns,
    check_item_rows,
    check_profile,
    profile_features,
)

SCHEMA = FeatureSchema(
    "fake",
    "user_id",
    "item_id",
    (
        SparseFeat("user_id", "user"),
        SparseFeat("age_band", "user"),
        VarLenSparseFeat("favs", "user", maxlen=4, weighted=True, embedding_name="topic"),
        VarLenSparseFeat("recent", "user", maxlen=10, embedding_name="item_id", from_events=True),
        SparseFeat("device", "context"),
        SparseFeat("item_id", "item"),
        SparseFeat("topic", "item", filterable=True),
        DenseFeat("quality", "item", normalize=False),
    ),
)
TOPICS = ("t0", "t1", "t2", "t3")
DIM = 8


def catalog(n: int = 40) -> dict[str, dict[str, Any]]:
    """``n`` item rows, ids ``i0..``, topics in turn, qualities that reorder the ranking."""
    return {
        f"i{k}": {"item_id": f"i{k}", "topic": TOPICS[k % 4], "quality": [float(k % 5) - 2.0]}
        for k in range(n)
    }


class FakeModel:
    """Users and items embedded by id from seeded tables; the ranker scores
    ``sigmoid(3 * cosine(user, item) + quality)``, so its order differs from retrieval's."""

    def __init__(
        self,
        index: VectorIndex,
        items: Mapping[str, Mapping[str, Any]],
        known_users: Sequence[str] = ("known",),
        version: str = "fake_1",
    ) -> None:
        self.version, self.collection = version, f"items_{version}"
        self.schema = SCHEMA
        self.rules = RequestRules.from_schema(SCHEMA)
        self.encoder = FeatureEncoder.fit(
            SCHEMA,
            {
                "user_id": list(known_users),
                "item_id": list(items),
                "topic": list(TOPICS),
                "device": ["ios", "android"],
                "age_band": ["young", "old"],
            },
        )
        rng = np.random.default_rng(zlib.crc32(version.encode()))
        self.tables = {
            table: rng.normal(size=(self.encoder.vocab_size(table), DIM))
            for table in self.encoder.vocabs
        }
        self.items = ItemTable(self.encoder, SCHEMA.on("item"), ["topic"])
        self.popular_items = list(items)[::-1]
        self.info = ModelInfo(version, self.collection, "dot", "fake", f"/bundles/{version}", 0, 0)
        self.index = index
        self.rank_error: Exception | None = None
        self.rank_delay_s = 0.0
        self.collection_ready = True
        index.ensure_collection(version, DIM, self.rules.attributes)

    def knows_user(self, user_id: str) -> bool:
        return user_id in self.encoder.vocabs["user_id"]

    def ensure_collection(self) -> None:
        self.index.ensure_collection(self.version, DIM, self.rules.attributes)
        self.collection_ready = True

    def encode_users(self, rows: Sequence[Mapping[str, Any]]) -> EncodedUser:
        return self.encoder.encode_rows(rows, SCHEMA.on("user", "context"))

    def embed_users(self, users: EncodedUser) -> np.ndarray:
        return np.stack([self._embed(users, row) for row in range(len(users["user_id"]))])

    def _embed(self, users: EncodedUser, row: int) -> np.ndarray:
        recent = [i for i in users["recent"][row] if i != 0]
        vector = (
            self.tables["user_id"][users["user_id"][row, 0]]
            + self.tables["device"][users["device"][row, 0]]
        )
        if recent:
            vector = vector + 3 * self.tables["item_id"][recent].mean(axis=0)
        return vector / np.linalg.norm(vector)

    def gather(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        arrays, _known = self.items.gather(item_ids)
        return arrays

    def item_vectors(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        held = [i for i in item_ids if i in self.items]
        return dict(zip(held, self._vectors(held), strict=True)) if held else {}

    def score(
        self, users: EncodedUser, owners: np.ndarray, items: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        if self.rank_delay_s:
            time.sleep(self.rank_delay_s)
        if self.rank_error is not None:
            raise self.rank_error
        vectors = self._unit(self.tables["item_id"][items["item_id"][:, 0]])
        user_vectors = self.embed_users(users)[owners]
        logits = 3 * (vectors * user_vectors).sum(axis=1) + items["quality"][:, 0]
        return 1 / (1 + np.exp(-logits))

    def check_items(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        return check_item_rows(items, self.rules, self._encode_item)

    def check_profile(self, features: Mapping[str, Any]) -> None:
        check_profile(
            features,
            self.rules,
            lambda f: self.encoder.encode_rows([f], profile_features(SCHEMA)),
        )

    def write_items(
        self, upserts: Sequence[tuple[str, Mapping[str, Any]]], deletes: Sequence[str]
    ) -> None:
        if upserts:
            ids, rows = [i for i, _ in upserts], [r for _, r in upserts]
            self.index.upsert(
                self.version,
                ids,
                self._vectors(ids),
                attribute_columns(self.rules.attributes, rows),
            )
        if deletes:
            self.index.delete(self.version, deletes)

    def _vectors(self, ids: Sequence[str]) -> np.ndarray:
        rows = self.encoder.vocabs["item_id"].ids(ids)
        return self._unit(self.tables["item_id"][rows]).astype(np.float32)

    def _encode_item(self, row: Mapping[str, Any]) -> object:
        return self.encoder.encode_rows([row], SCHEMA.on("item"))

    @staticmethod
    def _unit(vectors: np.ndarray) -> np.ndarray:
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Switchable:
    """A real adapter whose every call (but ``close``) raises ``error`` while ``down`` is set,
    and whose ``slow_methods`` first sleep ``delay_s``."""

    def __init__(self, target: Any, error: Exception, slow_methods: tuple[str, ...] = ()) -> None:
        self._target, self._error, self._slow_methods = target, error, slow_methods
        self.down = False
        self.delay_s = 0.0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down and name != "close":
                raise self._error
            if name in self._slow_methods and self.delay_s:
                time.sleep(self.delay_s)
            return method(*args, **kwargs)

        return call


def flaky_store(store: StateStore) -> Switchable:
    """A real store that fails with `StoreError` while ``down`` is set."""
    return Switchable(store, StoreError("fake store: down"))


def slow_index(index: VectorIndex) -> Switchable:
    """A real index whose searches take ``delay_s`` longer, unreachable while ``down`` is set."""
    return Switchable(index, IndexUnavailable("fake index: unreachable"), ("search", "search_many"))


def fake_loader(models: Mapping[str, FakeModel], calls: list[str] | None = None) -> ModelLoader:
    """Serves ``models[path.name]``; any other path is refused with `ModelLoadError`. With
    ``calls``, records each loaded name."""

    def load(path: Path, index: VectorIndex, store: StateStore, require_items: bool) -> FakeModel:
        if path.name not in models:
            raise ModelLoadError(f"bundle {path.name}: not a fake bundle")
        model = models[path.name]
        model.items.sync(store)
        if calls is not None:
            calls.append(path.name)
        return model

    return load


def deploy(model: FakeModel, store: StateStore, items: Mapping[str, Mapping[str, Any]]) -> None:
    """What the batch job does: vectors into the index, rows into the catalog as indexed."""
    model.write_items(list(items.items()), [])
    store.put_items(list(items.items()), indexed_version=model.version)
