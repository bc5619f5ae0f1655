"""Load a servable model: verify the bundle, ensure its collection, build the item table from
the catalog, warm. This is the `ModelLoader` the service's runtime uses."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from service.bundle import BundleError, load_bundle
from service.bundle.manifest import RANKER
from service.index import IndexUnavailable, VectorIndex, VectorIndexError, collection_name
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
        collection, indexed, ready = _open_collection(writer, require_items)
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
    model = ServingModel(bundle, collection, writer, items, indexed, collection_ready=ready)
    warm(model)
    log.info(
        "model loaded",
        extra={"version": model.version, "collection": collection, "indexed": indexed},
    )
    return model


def _open_collection(writer: ItemWriter, require_items: bool) -> tuple[str, int, bool]:
    """(name, items indexed, ready). At start, an index that does not answer is no reason to
    stay down: the model serves popular items (not ready) and the runtime opens the collection
    once the index answers. A reload (``require_items``) needs a collection it can check."""
    version = writer.bundle.version
    try:
        collection = writer.ensure_collection()
        return collection, writer.index.count(version), True
    except IndexUnavailable as exc:
        if require_items:
            raise
        log.warning(
            "vector index unavailable at load, serving popular items until it answers: %s", exc
        )
        return collection_name(version), 0, False


def warm(model: ServingModel) -> None:
    """One user embedding and one full-size ranker batch, so the first request is not slow."""
    user = model.encode_users([{}])
    model.embed_users(user)
    ids = model.items.item_ids()[:WARM_ROWS] or [""]
    model.score(user, np.zeros(len(ids), np.int64), model.gather(ids))
