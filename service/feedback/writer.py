"""The impression writer: answers are logged off the hot path.

A request only appends its impression to an in-memory buffer (no lock, no I/O); one
background thread writes the buffer to the store every ``flush_s`` in batches. Bounds:
the buffer holds at most ``buffer`` impressions (past it new ones are dropped and counted in
``rec_impressions_dropped_total``), so a crash loses at most that many, or the last
``flush_s`` of traffic, whichever is less; a batch leaves the buffer only once written (a
store that fails keeps it for the next flush, and attribution finds it meanwhile). `close`
(the app's shutdown) writes everything accepted before it returns.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from itertools import islice

from service.feedback.records import Impression
from service.metrics import Metrics
from service.state import Retention, StateStore, StoreError

log = logging.getLogger(__name__)


class ImpressionWriter:
    def __init__(
        self,
        store: StateStore,
        keep: Retention,
        metrics: Metrics,
        *,
        buffer: int,
        batch: int,
        flush_s: float,
    ) -> None:
        self._store, self._keep, self._metrics = store, keep, metrics
        self._limit, self._batch, self._flush_s = buffer, batch, flush_s
        self._pending: deque[Impression] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="impressions", daemon=True)
        self._thread.start()

    def offer(self, impression: Impression) -> bool:
        """Accept ``impression`` for the next write, or drop it when the buffer is full."""
        if len(self._pending) >= self._limit or self._stop.is_set():
            self._metrics.impressions_dropped.inc()
            return False
        self._pending.append(impression)
        return True

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def unwritten(self, user_id: str) -> list[Impression]:
        """The user's impressions not written yet, newest first (a click can come before the
        next flush)."""
        return [i for i in reversed(list(self._pending)) if i.user_id == user_id]

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking impressions and write every accepted one (a last try per batch)."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._pending:
            log.error("impression writer stopped with %d impressions unwritten", self.buffered)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_s):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write what is buffered now; returns how many were written."""
        written = 0
        while self._pending:
            batch = list(islice(self._pending, self._batch))  # left in place until written
            try:
                self._store.add_impressions(batch, self._keep)
            except StoreError as exc:
                self._metrics.impression_write_errors.inc()
                log.warning("impression write failed (%d buffered): %s", self.buffered, exc)
                return written
            for _ in batch:
                self._pending.popleft()
            written += len(batch)
        return written
