"""`ExactIndex`: in-memory brute force over unit vectors, the reference for tests and recall.

Exact inner product over L2-normalized vectors (cosine), top-k by `np.argpartition`. Not a
serving backend: data lives in this process only and is lost on exit.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.index import checks
from service.index.port import (
    CollectionMismatch,
    CollectionNotFound,
    FilterValue,
    HitColumns,
    ScalarField,
    SearchHit,
    collection_name,
)


@dataclass
class _Collection:
    version: str
    dim: int
    fields: tuple[ScalarField, ...]
    ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    vectors: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))
    attributes: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.empty((0, self.dim), np.float32)
        self.attributes = {f.name: [] for f in self.fields}


class ExactIndex:
    """Brute-force `VectorIndex` kept in memory; thread-safe, exact by construction."""

    exact = True

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}
        self._lock = threading.Lock()

    def ensure_collection(self, version: str, dim: int, fields: Sequence[ScalarField]) -> str:
        name = collection_name(version)
        dim, fields = checks.check_dim(dim), checks.check_fields(fields)
        with self._lock:
            existing = self._collections.get(name)
            if existing is None:
                self._collections[name] = _Collection(version, dim, fields)
            elif existing.dim != dim:
                raise CollectionMismatch(f"collection {name} has dim {existing.dim}, not {dim}")
            elif mismatch := checks.fields_mismatch(existing.fields, fields):
                raise CollectionMismatch(f"collection {name}: {mismatch}")
        return name

    def upsert(
        self,
        version: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        attributes: Mapping[str, Sequence[Any]],
    ) -> None:
        c = self._get(version)
        ids = checks.check_ids(ids, unique=True)
        unit = checks.normalized_rows(vectors, len(ids), c.dim)
        columns = checks.check_attributes(c.fields, attributes, len(ids))
        with self._lock:
            new = [i for i in ids if i not in c.rows]
            c.rows.update({item_id: len(c.ids) + k for k, item_id in enumerate(new)})
            c.ids.extend(new)
            c.vectors = np.concatenate([c.vectors, np.empty((len(new), c.dim), np.float32)])
            for column in c.attributes.values():
                column.extend([None] * len(new))
            positions = [c.rows[i] for i in ids]
            c.vectors[positions] = unit
            for name, values in columns.items():
                column = c.attributes[name]
                for row, value in zip(positions, values, strict=True):
                    column[row] = value

    def delete(self, version: str, ids: Sequence[str]) -> None:
        c = self._get(version)
        ids = checks.check_ids(ids)
        with self._lock:
            for item_id in ids:
                row = c.rows.pop(item_id, None)
                if row is None:
                    continue
                last = len(c.ids) - 1
                if row != last:
                    moved = c.ids[last]
                    c.ids[row], c.rows[moved] = moved, row
                    c.vectors[row] = c.vectors[last]
                    for column in c.attributes.values():
                        column[row] = column[last]
                c.ids.pop()
                for column in c.attributes.values():
                    column.pop()
                c.vectors = c.vectors[:last]

    def search(
        self,
        version: str,
        vector: np.ndarray,
        limit: int,
        filter: Mapping[str, Sequence[FilterValue]] | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        c = self._get(version)
        query = checks.normalized_query(vector, c.dim)
        limit = checks.check_limit(limit)
        excluded = checks.check_exclusions(exclude_ids)
        conditions = checks.check_filter(c.fields, filter)
        with self._lock:
            scores = c.vectors @ query
            candidates = np.arange(len(c.ids))
            if conditions or excluded:
                keep = np.ones(len(c.ids), dtype=bool)
                for f, values in conditions:
                    keep &= _matches(f, c.attributes[f.name], values)
                keep[[c.rows[i] for i in excluded if i in c.rows]] = False
                candidates = np.flatnonzero(keep)
                scores = scores[candidates]
            k = min(limit, len(candidates))
            if k == 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [SearchHit(c.ids[candidates[i]], float(scores[i])) for i in top]

    def search_many(
        self,
        version: str,
        vectors: np.ndarray,
        limit: int,
        filter: Mapping[str, Sequence[FilterValue]] | None = None,
    ) -> list[HitColumns]:
        found = [self.search(version, v, limit, filter) for v in np.atleast_2d(vectors)]
        return [HitColumns([h.item_id for h in hits], [h.score for h in hits]) for hits in found]

    def vectors(self, version: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        c = self._get(version)
        ids = checks.check_ids(ids)
        with self._lock:
            return {i: c.vectors[c.rows[i]].copy() for i in ids if i in c.rows}

    def count(self, version: str) -> int:
        return len(self._get(version).ids)

    def flush(self, version: str) -> None:
        self._get(version)

    def drop(self, version: str) -> None:
        with self._lock:
            self._collections.pop(collection_name(version), None)

    def list_versions(self) -> list[str]:
        with self._lock:
            return sorted(c.version for c in self._collections.values())

    def describe(self, version: str) -> dict[str, Any]:
        c = self._get(version)
        return {
            "collection": collection_name(version),
            "version": c.version,
            "dim": c.dim,
            "count": len(c.ids),
            "index_type": "BRUTE_FORCE",
            "metric": "IP",
            "exact": True,
            "fields": list(c.fields),
            "backend": "memory",
        }

    def close(self) -> None:
        with self._lock:
            self._collections.clear()

    def _get(self, version: str) -> _Collection:
        name = collection_name(version)
        with self._lock:
            c = self._collections.get(name)
        if c is None:
            raise CollectionNotFound(f"no collection {name} for bundle version {version!r}")
        return c


def _matches(field: ScalarField, column: list[Any], values: list[FilterValue]) -> np.ndarray:
    wanted = set(values)
    if field.kind == "string_array":
        return np.fromiter((not wanted.isdisjoint(v) for v in column), bool, len(column))
    return np.fromiter((v in wanted for v in column), bool, len(column))
