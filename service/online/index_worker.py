"""The background item-indexing worker: catalog queue -> item tower -> vector index.

Claims pending item changes under a lease, has the current model embed and upsert the live ones
and delete the tombstoned ones in one micro-batch, then acknowledges.
A change the index refuses (`service.indexing.isolate`) is found by bisecting the batch, so the
rest of the batch is indexed and acknowledged; the refused change goes back to the store with
its reason (`StateStore.fail`), retried after ``RECSYS_INDEX_RETRY_S`` and moved to ``failed``
after ``RECSYS_INDEX_MAX_ATTEMPTS`` refusals. Any other failure acknowledges nothing: the lease
expires and the batch is retried (by this or any other process), so a queued change is never
lost.

The lease is short (``RECSYS_INDEX_LEASE_S``) and renewed by a heartbeat while the batch is
written, so a slow write keeps its claim and the changes a dead process held are taken by
another (or the restarted one) a few seconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence

import anyio

from service.index import VectorIndexError
from service.indexing.isolate import write_isolating
from service.online.ports import ServableModel
from service.online.runtime import Runtime
from service.state import ClaimedItem, StateStore, StoreError

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 5.0


class IndexWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def run_once(self) -> int:
        """Index one micro-batch; returns the number of changes handled (0: queue empty)."""
        model = self.runtime.model
        if model is None:
            return 0
        store = self.runtime.store
        claimed = store.claim_pending(self.settings.index_batch, self.settings.index_lease_s)
        if not claimed:
            return 0
        with _heartbeat(store, claimed, self.settings.index_lease_s):
            refused = write_isolating(lambda batch: _write(model, batch), claimed)
        bad = {c.item_id for c, _ in refused}
        done = [c for c in claimed if c.item_id not in bad]
        self._write_variants(model, done)
        store.ack(done, model.version)
        for item, why in refused:
            self._refused(item, why)
        metrics = self.runtime.metrics
        metrics.indexed.labels("upsert").inc(sum(not c.deleted for c in done))
        metrics.indexed.labels("delete").inc(sum(c.deleted for c in done))
        return len(claimed)

    def _write_variants(self, model: ServableModel, done: Sequence[ClaimedItem]) -> None:
        """An experiment's other bundles get the same changes in their own collections; the
        queue follows the served model only, so a change one of them refuses is logged and
        left out of that variant's collection (not retried)."""
        for other in self.runtime.experiments.models():
            if other is model or not done:
                continue
            try:
                _write(other, done)
            except (VectorIndexError, ValueError) as exc:
                log.warning(
                    "experiment collection %s missed %d changes: %s",
                    other.collection,
                    len(done),
                    exc,
                )

    def _refused(self, item: ClaimedItem, why: str) -> None:
        s, metrics = self.settings, self.runtime.metrics
        failed = self.runtime.store.fail(item, why, s.index_max_attempts, s.index_retry_s)
        metrics.refused.inc()
        if failed:
            metrics.failed.inc()
            log.error(
                "item %s failed: refused %d times: %s", item.item_id, s.index_max_attempts, why
            )
        else:
            log.warning("item %s refused by the index, retried later: %s", item.item_id, why)

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


@contextlib.contextmanager
def _heartbeat(store: StateStore, claimed: Sequence[ClaimedItem], lease_s: float) -> Iterator[None]:
    """Renew the claim every third of its lease until the block ends (a thread: the write
    it guards blocks this one)."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(lease_s / 3):
            try:
                store.renew(claimed, lease_s)
            except StoreError as exc:
                log.warning("lease renewal failed: %s", exc)

    thread = threading.Thread(target=beat, name="index-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _write(model: ServableModel, batch: Sequence[ClaimedItem]) -> None:
    model.write_items(
        [(c.item_id, c.row) for c in batch if c.row is not None],
        [c.item_id for c in batch if c.deleted],
    )
