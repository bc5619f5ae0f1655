"""Trending items: event weights decayed exponentially with time, kept in bounded memory.

Forward decay: an event of weight ``w`` at time ``t`` adds ``w * exp((t - t0) / tau)``; every
count decays by the same factor as time passes, so the stored values rank items exactly as
their decayed counts do, without touching every item on each event. When the exponent grows
large the counts are rescaled to a new ``t0``. At most ``capacity`` items are kept: past it,
the weakest tenth is dropped (an item that trends comes back with its next events). The
ranked list is computed at most every ``refresh_s``.

Each process counts the events posted to it (its own share of the traffic); a restarted
process starts empty, and the source then serves the store's all-time counts until events
arrive.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Iterable

from service.state import Event

RESCALE_EXPONENT = 50.0


class TrendingCounter:
    def __init__(
        self,
        half_life_s: float,
        capacity: int,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tau = half_life_s / math.log(2)
        self._capacity, self._refresh_s, self._clock = capacity, refresh_s, clock
        self._t0 = clock()
        self._counts: dict[str, float] = {}
        self._lock = threading.Lock()
        self._ranked: list[tuple[str, float]] = []
        self._ranked_at = -math.inf
        self._dirty = False

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, events: Iterable[Event]) -> None:
        with self._lock:
            now = self._clock()
            for e in events:
                t = min(e.ts, now)
                exponent = (t - self._t0) / self._tau
                if exponent > RESCALE_EXPONENT:
                    self._rescale(t)
                    exponent = 0.0
                value = e.weight * math.exp(exponent)
                self._counts[e.item_id] = self._counts.get(e.item_id, 0.0) + value
            if len(self._counts) > self._capacity:
                self._evict()
            self._dirty = True

    def top(self, limit: int) -> list[tuple[str, float]]:
        """Up to ``limit`` items by decayed count now, highest first (cached ``refresh_s``)."""
        now = self._clock()
        with self._lock:
            if self._dirty and now - self._ranked_at >= self._refresh_s:
                self._ranked = heapq.nlargest(
                    self._capacity, self._counts.items(), key=lambda kv: kv[1]
                )
                self._ranked_at, self._dirty = now, False
            ranked, t0 = self._ranked, self._t0
        scale = math.exp(-(now - t0) / self._tau)
        return [(item_id, value * scale) for item_id, value in ranked[:limit]]

    def _rescale(self, t: float) -> None:
        factor = math.exp(-(t - self._t0) / self._tau)
        self._counts = {k: v * factor for k, v in self._counts.items() if v * factor > 1e-12}
        self._ranked = [(k, v * factor) for k, v in self._ranked]
        self._t0 = t

    def _evict(self) -> None:
        keep = self._capacity - max(1, self._capacity // 10)
        self._counts = dict(heapq.nlargest(keep, self._counts.items(), key=lambda kv: kv[1]))
