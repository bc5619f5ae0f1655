"""The vector index port: what the service asks of a nearest-neighbour store.

One collection per bundle version (`items_<version>`): item vectors of two bundles live in
different embedding spaces and must never be searched together. Item vectors are
L2-normalized by the index on the way in and the query on the way out, so every score is a
cosine similarity in [-1, 1] (inner product over unit vectors).

Adapters: `ExactIndex` (NumPy brute force, the reference) and `MilvusIndex` (Milvus Lite
file, Lite server or a Milvus server). Both share the argument checks in `checks.py` (which
apply the service's own rules from `service/validation.py`), so a request that one rejects,
the other rejects too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

# An attribute's kind and bounds are input rules: they live in service/validation.py.
from service.validation import FilterValue, ScalarField

COLLECTION_PREFIX = "items_"
MAX_LIMIT = 1000
MAX_EXCLUSIONS = 1000
MAX_FILTER_VALUES = 1000
VERSION_PATTERN = re.compile(r"[A-Za-z0-9_]{1,200}")


@dataclass(frozen=True)
class SearchHit:
    item_id: str
    score: float


@dataclass(frozen=True)
class HitColumns:
    """One query's hits, best first, as columns: ids and scores in the same order."""

    ids: list[str]
    scores: list[float]


class VectorIndexError(Exception):
    """Base of every error a vector index raises."""


class IndexUnavailable(VectorIndexError):
    """The backend did not answer in time or cannot be reached: callers fall back."""


class CollectionNotFound(VectorIndexError):
    """No collection for that bundle version: index the bundle first."""


class CollectionMismatch(VectorIndexError):
    """The collection exists but its version, dimension or fields differ from the request."""


class InvalidRequest(VectorIndexError, ValueError):
    """Bad arguments (limit, ids, vector shape, attributes): the caller's fault, never retried."""


class InvalidFilter(InvalidRequest):
    """A filter names an unknown field or carries values of the wrong type."""


class IndexConfigError(VectorIndexError, ValueError):
    """The index is configured in a way the backend cannot serve (URI, file name, index type)."""


def collection_name(version: str) -> str:
    """`items_<version>`; the version: letters, digits, underscores (a Milvus name rule)."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise InvalidRequest(
            f"bundle version {version!r} must match {VERSION_PATTERN.pattern} "
            "(it names a collection: letters, digits and underscores only)"
        )
    return COLLECTION_PREFIX + version


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest-neighbour search over item vectors, one collection per bundle version.

    `exact` is True when `search` returns the true top-k (brute force or FLAT).
    Every method raises `IndexUnavailable` when the backend is away, within its timeout.
    """

    @property
    def exact(self) -> bool: ...

    def ensure_collection(self, version: str, dim: int, fields: Sequence[ScalarField]) -> str:
        """Create the collection if absent, else verify version, dim and fields match.

        Returns the collection name; raises `CollectionMismatch` with what differs.
        """
        ...

    def upsert(
        self,
        version: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        attributes: Mapping[str, Sequence[Any]],
    ) -> None:
        """Insert or replace items by id (idempotent).

        `vectors` is `[n, dim]` float32; `attributes` holds one column of n values for every
        field of the collection (a list of strings per item for `string_array`).
        """
        ...

    def delete(self, version: str, ids: Sequence[str]) -> None:
        """Remove items by id; unknown ids are ignored."""
        ...

    def search(
        self,
        version: str,
        vector: np.ndarray,
        limit: int,
        filter: Mapping[str, Sequence[FilterValue]] | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        """Top `limit` (1..1000) items for a `[dim]` query, best first.

        `filter` keeps items whose value of each named field is one of the given values (for a
        `string_array` field: shares at least one value); fields are ANDed. `exclude_ids`
        (at most 1000) are never returned.
        """
        ...

    def search_many(
        self,
        version: str,
        vectors: np.ndarray,
        limit: int,
        filter: Mapping[str, Sequence[FilterValue]] | None = None,
    ) -> list[HitColumns]:
        """`search` for each row of a `[n, dim]` batch of queries in one call (the same limit
        and filter for all), one `HitColumns` per query."""
        ...

    def vectors(self, version: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored unit vectors of ``ids`` (at most 1000), by id; ids it does not hold are
        left out. Item-to-item retrieval and MMR diversity read item vectors through it."""
        ...

    def count(self, version: str) -> int:
        """Exact number of items, reading every acknowledged write."""
        ...

    def flush(self, version: str) -> None:
        """Seal pending writes so the backend can build its ANN index (after a bulk load)."""
        ...

    def drop(self, version: str) -> None:
        """Delete the collection; no error when it does not exist."""
        ...

    def list_versions(self) -> list[str]:
        """Versions that have a collection, sorted."""
        ...

    def describe(self, version: str) -> dict[str, Any]:
        """Collection name, version, dim, count, index type, metric, exact, fields, backend."""
        ...

    def close(self) -> None:
        """Release connections and files; the index is unusable afterwards."""
        ...
