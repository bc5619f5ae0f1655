"""A servable model: a verified bundle, its collection and its item table, loaded as one.

A bundle's user vectors only make sense against its own item vectors, so the bundle, the
collection ``items_<version>`` and the item table encoded with that bundle's encoder are
loaded, checked and swapped together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.bundle import Bundle, BundleError, load_bundle
from service.bundle.manifest import RANKER, USER_TOWER
from service.features import Feature, FeatureSchema
from service.features.encoder import Arrays
from service.index import VectorIndex, VectorIndexError
from service.indexing import scalar_fields
from service.online.item_table import ItemTable
from service.state import StateStore, StoreError

log = logging.getLogger(__name__)
CHANGES_PAGE = 10_000
WARM_ROWS = 200


class ModelLoadError(RuntimeError):
    """The bundle or its collection is not servable; the message says why."""


@dataclass
class ServingModel:
    bundle: Bundle
    collection: str
    items: ItemTable
    indexed_items: int
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def ranker_name(self) -> str:
        return self.bundle.manifest.ranker

    def ranker_request_features(self) -> list[Feature]:
        """The ranker's user and context inputs: encoded once per request, not per item."""
        return [f for f in self.bundle.features(RANKER) if f.side != "item"]

    def user_tower_features(self) -> list[Feature]:
        return self.bundle.features(USER_TOWER)

    def profile_features(self) -> list[Feature]:
        return profile_features(self.bundle.encoder.schema)

    def context_features(self) -> list[Feature]:
        return self.bundle.encoder.schema.on("context")

    def ranker_inputs(self, row: Mapping[str, Any], item_ids: Sequence[str]) -> Arrays:
        """The ranker's batch: the request's user/context features encoded once and repeated,
        the candidates' item features gathered from the item table."""
        arrays, _known = self.items.gather(item_ids)
        user = self.bundle.encoder.encode_rows([row], self.ranker_request_features())
        n = len(item_ids)
        arrays.update({name: np.repeat(values, n, axis=0) for name, values in user.items()})
        return arrays


def profile_features(schema: FeatureSchema) -> list[Feature]:
    """User features a profile (or a request) may set: not the id, not the event history."""
    return [
        f
        for f in schema.on("user")
        if f.name != schema.user_key and not getattr(f, "from_events", False)
    ]


def sync_items(items: ItemTable, store: StateStore, page: int = CHANGES_PAGE) -> int:
    """Apply every catalog change after the table's sequence number; returns how many."""
    applied = 0
    while True:
        changes = store.changes_since(items.seq, page)
        applied += items.apply(changes)
        if len(changes) < page:
            return applied


def load_serving_model(
    path: Path,
    index: VectorIndex,
    store: StateStore,
    onnx_threads: int = 1,
    require_items: bool = False,
) -> ServingModel:
    """Verify the bundle, ensure its collection, build the item table from the catalog, warm.

    ``require_items`` (a reload) refuses a collection that is empty while the catalog is
    not: swapping to it would serve nothing until every item is indexed again.
    """
    try:
        bundle = load_bundle(path, onnx_threads)
        collection = index.ensure_collection(
            bundle.version, bundle.manifest.embedding_dim, scalar_fields(bundle)
        )
        indexed = index.count(bundle.version)
        schema = bundle.encoder.schema
        items = ItemTable(
            bundle.encoder,
            [f for f in bundle.features(RANKER) if f.side == "item"],
            [f.name for f in schema.filterable()],
        )
        sync_items(items, store)
    except (BundleError, VectorIndexError, StoreError) as exc:
        raise ModelLoadError(str(exc)) from exc
    if require_items and indexed == 0 and len(items) > 0:
        raise ModelLoadError(
            f"{collection} is empty while the catalog holds {len(items)} items: index it "
            f"first (recsys index --bundle {path} --items ...)"
        )
    model = ServingModel(bundle, collection, items, indexed)
    warm(model)
    log.info(
        "model loaded",
        extra={"version": model.version, "collection": collection, "indexed": indexed},
    )
    return model


def warm(model: ServingModel) -> None:
    """One user embedding and one full-size ranker batch, so the first request is not slow."""
    model.bundle.embed_users({}, n=1)
    ids = model.items.item_ids()[:WARM_ROWS] or [""]
    model.bundle.models[RANKER].run(model.ranker_inputs({}, ids))
