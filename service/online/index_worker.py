"""The background item-indexing worker: catalog queue -> item tower -> vector index.

Claims pending item changes under a lease, has the current model embed and upsert the live ones
and delete the tombstoned ones in one micro-batch, then acknowledges.
A failure acknowledges nothing: the lease expires and the batch is retried (by this or any
other process), so a queued change is never lost.
"""

from __future__ import annotations

import asyncio
import logging

import anyio

from service.index import VectorIndexError
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
        store = self.runtime.store
        claimed = store.claim_pending(self.settings.index_batch, self.settings.index_lease_s)
        if not claimed:
            return 0
        live = [(c.item_id, c.row) for c in claimed if not c.deleted]
        gone = [c.item_id for c in claimed if c.deleted]
        model.write_items(live, gone)
        store.ack(claimed, model.version)
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
