"""Timing and deadlines of one request's stages."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio

from service.metrics import Metrics

T = TypeVar("T")


class StageClock:
    """Per-stage durations of one request, into the response and the stage histogram."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.ms: dict[str, float] = {}
        self.started = time.perf_counter()

    def record(self, name: str, seconds: float) -> None:
        self.ms[name] = round(seconds * 1000, 3)
        self.metrics.stage.labels(name).observe(seconds)

    def skipped(self, *names: str) -> None:
        """Stages this request did not need: 0 in its timings (so every answer has the same
        keys), nothing in the histogram."""
        for name in names:
            self.ms.setdefault(name, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - started)

    def total(self) -> dict[str, float]:
        """The timings with ``total`` (since the clock started) added."""
        self.ms["total"] = round((time.perf_counter() - self.started) * 1000, 3)
        return self.ms


async def off_loop(fn: Callable[[], T], deadline_ms: float | None = None) -> T:
    """Run blocking ``fn`` in a worker thread so the event loop serves other requests; past
    ``deadline_ms`` raise TimeoutError (the thread is abandoned; its own timeout ends it)."""
    if deadline_ms is None:
        return await anyio.to_thread.run_sync(fn)
    with anyio.fail_after(deadline_ms / 1000):
        return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
