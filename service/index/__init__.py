"""Vector index: the `VectorIndex` port, its adapters, and `open_index` to pick one by URI."""

from __future__ import annotations

from typing import Any

from service.index.port import (
    CollectionMismatch,
    CollectionNotFound,
    IndexConfigError,
    IndexUnavailable,
    InvalidFilter,
    InvalidRequest,
    ScalarField,
    SearchHit,
    VectorIndex,
    VectorIndexError,
    collection_name,
)

MEMORY_URI = "memory://"

__all__ = [
    "MEMORY_URI",
    "CollectionMismatch",
    "CollectionNotFound",
    "IndexConfigError",
    "IndexUnavailable",
    "InvalidFilter",
    "InvalidRequest",
    "ScalarField",
    "SearchHit",
    "VectorIndex",
    "VectorIndexError",
    "collection_name",
    "open_index",
]


def open_index(uri: str, **kwargs: Any) -> VectorIndex:
    """`memory://` -> `ExactIndex`; any other URI -> `MilvusIndex(uri, **kwargs)`.

    Imports pymilvus only when a Milvus URI is asked for; connects on first use.
    """
    if uri == MEMORY_URI:
        if kwargs:
            raise IndexConfigError(f"{MEMORY_URI} takes no options, got {sorted(kwargs)}")
        from service.index.exact import ExactIndex

        return ExactIndex()
    from service.index.milvus import MilvusIndex

    return MilvusIndex(uri, **kwargs)
