"""What the online pipeline needs from the model it serves, as small protocols.

`service.model.ServingModel` implements them from a verified bundle (encoder, ONNX sessions,
item table); `tests/fakes.py` implements them in NumPy, so the pipeline and the API are tested
without a trained bundle. The pipeline reads a model only through these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from service.features import FeatureSchema
from service.index import VectorIndex
from service.state import StateStore
from service.validation import RequestRules

EncodedUser = Mapping[str, np.ndarray]
"""Requests' user + context rows (one row per request), encoded once; both the user tower and
the ranker read them."""

ItemFeatures = Any
"""The candidates' features as a ranker gathered them; opaque to the pipeline."""


class RankerError(RuntimeError):
    """The ranker could not score a batch (its model failed to run)."""


class ModelLoadError(RuntimeError):
    """The bundle or its collection is not servable; the message says why."""


class UserEncoder(Protocol):
    def encode_users(self, rows: Sequence[Mapping[str, Any]]) -> EncodedUser:
        """Encode raw user + context rows; a value the model never saw encodes as unknown."""
        ...

    def embed_users(self, users: EncodedUser) -> np.ndarray:
        """The user vectors, ``[rows, dim]``, unit length."""
        ...


class Ranker(Protocol):
    def gather(self, item_ids: Sequence[str]) -> ItemFeatures:
        """The items' features; an id not in the catalog gets the unknown item's."""
        ...

    def score(self, users: EncodedUser, owners: np.ndarray, items: ItemFeatures) -> np.ndarray:
        """One score per gathered item, ``[n]``, item ``i`` for user row ``owners[i]`` (several
        requests in one run); raises `RankerError` if the model fails."""
        ...


class Catalog(Protocol):
    """The items a model can rank, kept current from the store's change feed."""

    unencodable: set[str]  # catalog ids left out: their latest row does not encode

    def __contains__(self, item_id: object) -> bool: ...

    def __len__(self) -> int: ...

    def has_all(self, item_ids: Iterable[str]) -> bool:
        """Whether every id is in the catalog."""
        ...

    def newest(self, limit: int) -> list[str]:
        """The ``limit`` most recently added items, newest first."""
        ...

    def attributes(self, item_id: str) -> Mapping[str, Any]:
        """The item's filterable attributes (empty for an unknown item)."""
        ...

    def matches(self, item_id: str, filters: Mapping[str, Sequence[Any]]) -> bool:
        """Whether the item passes ``filters`` (field -> accepted values), as the index would."""
        ...

    def sync(self, store: StateStore) -> int:
        """Apply the store's catalog changes since the last sync; returns how many."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """What `GET /v1/models` says about a model."""

    version: str
    collection: str
    ranker: str
    dataset: str
    path: str
    loaded_at: float
    indexed_items: int
    metrics: Mapping[str, Any] = field(default_factory=dict)


class ServableModel(UserEncoder, Ranker, Protocol):
    """A model the pipeline serves: its towers and ranker, rules, catalog and fallback items."""

    version: str
    collection: str
    info: ModelInfo
    schema: FeatureSchema
    rules: RequestRules
    items: Catalog
    popular_items: Sequence[str]
    collection_ready: bool  # False: loaded while the index did not answer (popular items only)

    def ensure_collection(self) -> None:
        """Create or verify and load the model's collection; raises `VectorIndexError`."""
        ...

    def item_vectors(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Item vectors the model computes itself for ids it holds (the rest left out)."""
        ...

    def knows_user(self, user_id: str) -> bool:
        """Whether the user tower was trained on this id (else, and with no profile and no
        events, the request is a cold start)."""
        ...

    def check_items(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """The rows to store for ``(item_id, features)`` pairs, once the index and the models
        will take them; raises `InvalidInput`."""
        ...

    def check_profile(self, features: Mapping[str, Any]) -> None:
        """Raises `InvalidInput` unless the profile features are ones the model reads."""
        ...

    def write_items(
        self, upserts: Sequence[tuple[str, Mapping[str, Any]]], deletes: Sequence[str]
    ) -> None:
        """Embed ``upserts`` with the item tower and write them (and the deletes) to the index."""
        ...


ModelLoader = Callable[[Path, VectorIndex, StateStore, bool], ServableModel]
"""``load(path, index, store, require_items)``: a verified, warmed model, or `ModelLoadError`.
``require_items`` (a reload) refuses an empty collection while the catalog holds items."""
