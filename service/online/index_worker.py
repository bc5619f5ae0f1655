"""The background item-indexing worker: catalog queue -> item tower -> vector index.

Claims pending item changes under a lease, embeds the live ones with the current model's item
tower, upserts them and deletes the tombstoned ones in one micro-batch, then acknowledges.
A failure acknowledges nothing: the lease expires and the batch is retried (by this or any
other process), so a queued change is never lost.
"""

from __future__ import annotations

import asyncio
import logging

import anyio
import numpy as np

from service.index import VectorIndexError
from service.indexing.job import item_attributes
from service.online.runtime import Runtime
from service.state import StoreError

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 5.0


class IndexWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def run_once(self) -> int:
        """Index one micro-batch; returns the number of changes applied (0: queue empty)."""
        model = self.runtime.model
        if model is None:
            return 0
        store, index = self.runtime.store, self.runtime.index
        claimed = store.claim_pending(self.settings.index_batch, self.settings.index_lease_s)
        if not claimed:
            return 0
        bundle = model.bundle
        live = [c for c in claimed if not c.deleted]
        gone = [c.item_id for c in claimed if c.deleted]
        if live:
            rows = [c.row for c in live]
            features = bundle.features("item_tower")
            columns = {f.name: [r.get(f.name) for r in rows] for f in features}
            vectors = bundle.embed_items(columns, len(rows))
            index.upsert(
                bundle.version,
                [c.item_id for c in live],
                np.asarray(vectors, np.float32),
                item_attributes(bundle, rows),
            )
        if gone:
            index.delete(bundle.version, gone)
        store.ack(claimed, bundle.version)
        metrics = self.runtime.metrics
        metrics.indexed.labels("upsert").inc(len(live))
        metrics.indexed.labels("delete").inc(len(gone))
        return len(claimed)

    async def run_forever(self) -> None:
        backoff = self.settings.index_poll_s
        while True:
            try:
                done = await anyio.to_thread.run_sync(self.run_once)
                backoff = self.settings.index_poll_s
            except (VectorIndexError, StoreError, ValueError) as exc:
                self.runtime.metrics.index_errors.inc()
                log.warning("indexing batch failed, retried after its lease: %s", exc)
                done, backoff = 0, min(backoff * 2, MAX_BACKOFF_S)
            if not done:
                await asyncio.sleep(backoff)
