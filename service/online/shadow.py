"""Shadow mode: the experiment's shadow variant answers the same query after the served answer
has left, in a task of its own (its latency is never the client's); its answer is dropped,
only its latency and its overlap@k with the served list are kept (Prometheus, and the totals
`GET /v1/experiments` shows). At most ``RECSYS_SHADOW_MAX_IN_FLIGHT`` run at once: past that a
request gets no shadow (counted as skipped) rather than queueing work behind live traffic. It
still shares the CPU and the stage batchers with served requests: ``RECSYS_SHADOW_FRACTION``
shadows only that share of requests (picked at random).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from service.metrics import Metrics
from service.online.domain import Recommendation, RecommendationQuery
from service.online.experiment import overlap_at_k
from service.online.ports import ServableModel

log = logging.getLogger(__name__)
Recommend = Callable[[ServableModel, RecommendationQuery], Awaitable[Recommendation]]


@dataclass
class ShadowTotals:
    runs: int = 0
    skipped: int = 0
    failed: int = 0
    latency_s_sum: float = 0.0
    overlap_sum: float = 0.0

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "runs": self.runs,
            "skipped": self.skipped,
            "failed": self.failed,
            "mean_latency_ms": 1000 * self.latency_s_sum / self.runs if self.runs else None,
            "mean_overlap_at_k": self.overlap_sum / self.runs if self.runs else None,
        }


class Shadow:
    def __init__(
        self, recommend: Recommend, metrics: Metrics, max_in_flight: int, fraction: float = 1.0
    ) -> None:
        self._recommend, self._metrics, self._max = recommend, metrics, max_in_flight
        self._fraction = fraction
        self._tasks: set[asyncio.Task] = set()
        self.totals: dict[str, ShadowTotals] = {}

    def submit(
        self, name: str, model: ServableModel, query: RecommendationQuery, served: Sequence[str]
    ) -> None:
        """Start the shadow computation of ``query`` (called on the event loop, returns now)."""
        if self._fraction < 1.0 and random.random() >= self._fraction:
            return
        totals = self.totals.setdefault(name, ShadowTotals())
        if len(self._tasks) >= self._max:
            totals.skipped += 1
            self._metrics.shadow_skipped.labels(name, "busy").inc()
            return
        task = asyncio.create_task(self._run(name, model, query, list(served), totals))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        name: str,
        model: ServableModel,
        query: RecommendationQuery,
        served: list[str],
        totals: ShadowTotals,
    ) -> None:
        start = time.perf_counter()
        try:
            result = await self._recommend(model, query)
        except Exception as exc:
            totals.failed += 1
            self._metrics.shadow_skipped.labels(name, "failed").inc()
            log.warning("shadow variant %s failed: %s", name, exc)
            return
        elapsed = time.perf_counter() - start
        overlap = overlap_at_k(served, [i.item_id for i in result.items], query.k)
        totals.runs += 1
        totals.latency_s_sum += elapsed
        totals.overlap_sum += overlap
        self._metrics.shadow_latency.labels(name).observe(elapsed)
        self._metrics.shadow_overlap.labels(name).observe(overlap)

    async def drain(self) -> None:
        """Wait for the shadow computations in flight (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
