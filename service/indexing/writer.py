"""Embed item rows with a bundle's item tower and write them to the bundle's collection: the one
embed-and-upsert of the batch job and the online indexing worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.bundle import Bundle
from service.bundle.manifest import ITEM_TOWER
from service.index import VectorIndex
from service.validation import attribute_columns, scalar_fields


class ItemWriter:
    def __init__(self, bundle: Bundle, index: VectorIndex) -> None:
        self.bundle, self.index = bundle, index
        self.fields = scalar_fields(bundle.encoder.schema)
        self._features = bundle.features(ITEM_TOWER)

    def ensure_collection(self) -> str:
        """Create or verify the bundle's collection (``items_<version>``); returns its name."""
        return self.index.ensure_collection(
            self.bundle.version, self.bundle.manifest.embedding_dim, self.fields
        )

    def embed(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Item vectors, ``[len(rows), dim]`` float32."""
        columns = {f.name: [row.get(f.name) for row in rows] for f in self._features}
        return np.asarray(self.bundle.embed_items(columns, len(rows)), np.float32)

    def write(
        self, ids: Sequence[str], vectors: np.ndarray, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Upsert by id: the vectors and the rows' filterable attributes."""
        self.index.upsert(self.bundle.version, ids, vectors, attribute_columns(self.fields, rows))

    def upsert(self, ids: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        if ids:
            self.write(ids, self.embed(rows), rows)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.index.delete(self.bundle.version, ids)
