"""The in-memory item table: the ranker's item features, encoded once per item.

Milvus returns ids and scores only (decoding output fields costs more than the search, see
docs/architecture.md); the ranker's item-side inputs are gathered here by row. The table follows
the catalog's change feed, so a worker process ranks an item another process just added.
Row 0 is the unknown item (every feature OOV), used for ids not (yet) in the catalog.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from service.features import EncodingError, Feature, FeatureEncoder
from service.features.encoder import Arrays
from service.features.vocab import token
from service.state import ItemChange, StateStore

log = logging.getLogger(__name__)
UNKNOWN_ROW = 0
CHANGES_PAGE = 10_000


class ItemTable:
    def __init__(
        self,
        encoder: FeatureEncoder,
        features: Sequence[Feature],
        attribute_names: Sequence[str] = (),
    ) -> None:
        self.encoder = encoder
        self.features = list(features)
        self.attribute_names = list(attribute_names)
        self.seq = 0
        self._row_of: dict[str, int] = {}
        self._attributes: dict[str, dict[str, Any]] = {}
        self._arrays = encoder.encode({}, self.features, 1)  # row 0: unknown item
        self._size = 1
        self._lock = threading.Lock()
        self.unencodable: set[str] = set()  # catalog ids whose latest row does not encode

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._row_of

    def has_all(self, item_ids: Iterable[str]) -> bool:
        """Whether every id is in the table (one set comparison, not a lookup per id)."""
        return self._row_of.keys() >= set(item_ids)

    def item_ids(self) -> list[str]:
        with self._lock:
            return list(self._row_of)

    def newest(self, limit: int) -> list[str]:
        """The ``limit`` most recently added items, newest first (rows keep the order items were
        first added in; a deleted item added again is new)."""
        with self._lock:
            return list(itertools.islice(reversed(self._row_of), limit))

    def attributes(self, item_id: str) -> Mapping[str, Any]:
        return self._attributes.get(item_id, {})

    def apply(self, changes: Iterable[ItemChange]) -> int:
        """Apply changes from the catalog feed (in sequence order); returns how many."""
        changes = [c for c in changes if c.seq > self.seq]
        if not changes:
            return 0
        latest = {c.item_id: c for c in changes}
        live, encoded = self._encode([c for c in latest.values() if c.row is not None])
        with self._lock:
            for c in latest.values():
                if c.row is None:
                    self.unencodable.discard(c.item_id)
                if c.row is None or c.item_id in self.unencodable:
                    self._row_of.pop(c.item_id, None)
                    self._attributes.pop(c.item_id, None)
            if live:
                rows = [self._row_for(c.item_id) for c in live]
                self._ensure_capacity(self._size)
                for name, values in encoded.items():
                    self._arrays[name][rows] = values
                for c in live:
                    self._attributes[c.item_id] = {
                        n: c.row.get(n) for n in self.attribute_names if n in c.row
                    }
            self.seq = max(self.seq, changes[-1].seq)
        return len(changes)

    def _encode(self, live: list[ItemChange]) -> tuple[list[ItemChange], Arrays | None]:
        """The changes that encode and their arrays. A row that does not (written before a
        schema change, or a value the encoder now refuses) is skipped, so one row cannot stop
        every later sync: the item leaves the table (ranked as unknown, its id logged once)."""
        if not live:
            return [], None
        try:
            encoded = self.encoder.encode_rows([c.row for c in live], self.features)
        except EncodingError:
            live = [c for c in live if self._encodes(c)]
            encoded = (
                self.encoder.encode_rows([c.row for c in live], self.features) if live else None
            )
        self.unencodable.difference_update(c.item_id for c in live)
        return live, encoded

    def _encodes(self, change: ItemChange) -> bool:
        try:
            self.encoder.encode_rows([change.row], self.features)
            return True
        except EncodingError as exc:
            if change.item_id not in self.unencodable:
                log.warning(
                    "catalog item %s does not encode (%s); skipped", change.item_id, exc.feature
                )
            self.unencodable.add(change.item_id)
            return False

    def sync(self, store: StateStore, page: int = CHANGES_PAGE) -> int:
        """Apply every catalog change after the table's sequence number; returns how many."""
        applied = 0
        while True:
            changes = store.changes_since(self.seq, page)
            applied += self.apply(changes)
            if len(changes) < page:
                return applied

    def _row_for(self, item_id: str) -> int:
        row = self._row_of.get(item_id)
        if row is None:
            row = self._row_of[item_id] = self._size
            self._size += 1
        return row

    def _ensure_capacity(self, size: int) -> None:
        capacity = len(next(iter(self._arrays.values())))
        if size <= capacity:
            return
        new_capacity = max(size, 2 * capacity, 1024)
        for name, values in self._arrays.items():
            grown = np.zeros((new_capacity, *values.shape[1:]), dtype=values.dtype)
            grown[:capacity] = values
            self._arrays[name] = grown

    def gather(self, item_ids: Sequence[str]) -> tuple[Arrays, np.ndarray]:
        """The encoded features of ``item_ids`` (unknown ids get row 0) and a mask of known ones."""
        with self._lock:
            row_of = self._row_of.get
            rows = np.fromiter(map(row_of, item_ids, repeat(UNKNOWN_ROW)), np.int64, len(item_ids))
            arrays = {name: values[rows] for name, values in self._arrays.items()}
        return arrays, rows != UNKNOWN_ROW

    def matches(self, item_id: str, filters: Mapping[str, Sequence[Any]]) -> bool:
        """Whether the item passes ``filters`` (field -> accepted values), as Milvus would."""
        attributes = self._attributes.get(item_id, {})
        for name, accepted in filters.items():
            wanted = {token(v) for v in accepted}
            value = attributes.get(name)
            values = value if isinstance(value, list | tuple) else [value]
            if not wanted.intersection(token(v) for v in values if v is not None):
                return False
        return True
