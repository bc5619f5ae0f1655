"""Load a servable model: verify the bundle, ensure its collection, build the item table from
the catalog, warm. This is the `ModelLoader` the service's runtime uses."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from service.bundle import BundleError, load_bundle
from service.bundle.manifest import RANKER
from service.index import VectorIndex, VectorIndexError
from service.indexing.writer import ItemWriter
from service.model.item_table import ItemTable
from service.model.serving import ServingModel
from service.online.ports import ModelLoadError
from service.state import StateStore, StoreError

log = logging.getLogger(__name__)
WARM_ROWS = 200


def load_serving_model(
    path: Path,
    index: VectorIndex,
    store: StateStore,
    require_items: bool = False,
    onnx_threads: int = 1,
) -> ServingModel:
    """Verify the bundle, ensure its collection, build the item table from the catalog, warm.

    ``require_items`` (a reload) refuses a collection that is empty while the catalog is
    not: swapping to it would serve nothing until every item is indexed again.
    """
    try:
        bundle = load_bundle(path, onnx_threads)
        writer = ItemWriter(bundle, index)
        collection = writer.ensure_collection()
        indexed = index.count(bundle.version)
        items = ItemTable(
            bundle.encoder,
            [f for f in bundle.features(RANKER) if f.side == "item"],
            [f.name for f in writer.fields],
        )
        items.sync(store)
    except (BundleError, VectorIndexError, StoreError) as exc:
        raise ModelLoadError(str(exc)) from exc
    if require_items and indexed == 0 and len(items) > 0:
        raise ModelLoadError(
            f"{collection} is empty while the catalog holds {len(items)} items: index it "
            f"first (recsys index --bundle {path} --items ...)"
        )
    model = ServingModel(bundle, collection, writer, items, indexed)
    warm(model)
    log.info(
        "model loaded",
        extra={"version": model.version, "collection": collection, "indexed": indexed},
    )
    return model


def warm(model: ServingModel) -> None:
    """One user embedding and one full-size ranker batch, so the first request is not slow."""
    user = model.encode_users([{}])
    model.embed_users(user)
    ids = model.items.item_ids()[:WARM_ROWS] or [""]
    model.score(user, np.zeros(len(ids), np.int64), model.gather(ids))
