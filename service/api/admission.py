"""Load shedding: a bound on the recommendation requests one process serves at once.

Past the bound a request is answered ``503 overloaded`` with ``Retry-After`` at once, instead
of joining queues that would make every answer late (and, past the stage deadlines, degraded).
The default bound is what the batched stages serve at once: ``RECSYS_STAGE_THREADS`` batches
of ``RECSYS_BATCH_MAX`` requests. One event loop per process: a plain counter is enough.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from service.api.errors import ApiError
from service.metrics import Metrics
from service.settings import Settings

RETRY_AFTER_S = 1


def in_flight_limit(settings: Settings) -> int:
    return settings.max_in_flight or settings.stage_threads * settings.batch_max


class Admission:
    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit, self.in_flight, self._metrics = limit, 0, metrics

    def enter(self) -> None:
        """Count one more request in, or raise the 503 that sheds it."""
        if self.in_flight >= self.limit:
            self._metrics.shed.inc()
            raise ApiError(
                503,
                f"overloaded: {self.limit} recommendation requests in flight; retry later",
                code="overloaded",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1


async def admitted(request: Request) -> AsyncIterator[None]:
    """A route dependency: the request holds a place for as long as its handler runs."""
    admission: Admission = request.app.state.admission
    admission.enter()
    try:
        yield
    finally:
        admission.leave()
