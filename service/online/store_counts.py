"""The store's most-counted items (all-time event counts), shared by the ``trending`` source
(while this process has no decayed counts of its own) and the ``popular`` fallback.

Reading them sorts every counted item (9 ms per request on SQLite at 100k items, `recsys
bench --sources-ab`), so the list is kept and read again at most every ``ttl_s``: a stale
list is served while one background thread reads the next, and no request waits for the sort
except the first (or one asking for more items than are kept).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from service.state import StateStore, StoreError

log = logging.getLogger(__name__)
READ_AT_LEAST = 1000  # items per read: requests ask for different counts


class StoreCounts:
    def __init__(
        self,
        store: StateStore,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._ttl_s, self._clock = store, ttl_s, clock
        self._ranked: list[tuple[str, float]] = []
        self._asked, self._read_at = 0, 0.0  # how many the kept list was read for, and when
        self._lock = threading.Lock()
        self._refreshing = False

    def top(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` most-counted items, most first; StoreError only when nothing usable is
        kept and the store does not answer."""
        if n > self._asked:
            self._read(max(n, READ_AT_LEAST))
        elif self._clock() - self._read_at >= self._ttl_s:
            self._refresh_in_background()
        return self._ranked[:n]

    def _read(self, n: int) -> None:
        ranked = self._store.popular_items(n)
        with self._lock:
            self._ranked, self._asked, self._read_at = ranked, n, self._clock()

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh, name="store-counts", daemon=True).start()

    def _refresh(self) -> None:
        try:
            self._read(self._asked)
        except StoreError as exc:  # keep serving the old list; try again after the TTL
            log.warning("store counts not refreshed: %s", exc)
            with self._lock:
                self._read_at = self._clock()
        finally:
            with self._lock:
                self._refreshing = False
