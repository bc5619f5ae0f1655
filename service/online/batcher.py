"""Dynamic micro-batching across concurrent requests: each of a stage's threads (``threads``,
sharing one queue) takes every job waiting and serves them with one call (one Milvus search
with nq > 1, one ranker run over all candidate rows).

The window adapts to load: a batch starts at once when the previous one held a single job
(one client pays no wait); under load, it waits up to ``window_s`` for as many jobs as the
previous batch held. Jobs whose requests gave up (deadline) are dropped before the call.
Results go back to the event loop in one callback per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from service.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(eq=False)
class Job(Generic[T]):
    item: T
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


# A batch function returns one result per job: a value, or the exception for that job alone.
BatchFn = Callable[[Sequence[Any]], Sequence[Any]]


class Batcher:
    def __init__(
        self,
        name: str,
        fn: BatchFn,
        metrics: Metrics,
        max_batch: int = 32,
        window_s: float = 0.001,
        threads: int = 1,
    ) -> None:
        self.name, self._fn, self._metrics = name, fn, metrics
        self.max_batch, self.window_s = max_batch, window_s
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._last_size = 1
        self._threads = [
            threading.Thread(target=self._run, name=f"batch-{name}-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def submit(self, item: Any, timeout_s: float | None = None) -> Any:
        """The batch function's result for ``item``; past ``timeout_s`` TimeoutError (the job
        is then skipped if its batch has not started)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put(Job(item, future))
        if timeout_s is None:
            return await future
        return await asyncio.wait_for(future, timeout_s)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch:
                self._serve(batch)

    def _next_batch(self) -> list[Job] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.perf_counter() + (self.window_s if self._last_size > 1 else 0.0)
        want = min(self.max_batch, self._last_size)
        while len(batch) < self.max_batch:
            try:
                remaining = deadline - time.perf_counter()
                if len(batch) >= want or remaining <= 0:
                    job = self._queue.get_nowait()
                else:
                    job = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(job)
        live = [job for job in batch if not job.future.done()]
        self._last_size = len(live) or 1
        return live

    def _serve(self, batch: list[Job]) -> None:
        started = time.perf_counter()
        self._metrics.batch_size.labels(self.name).observe(len(batch))
        for job in batch:
            self._metrics.batch_wait.labels(self.name).observe(started - job.queued)
        try:
            results = list(self._fn([job.item for job in batch]))
        except Exception as exc:  # a bug in the stage: every job of the batch gets it
            log.exception("batched stage %s failed", self.name)
            results = [exc] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}
        for job, result in zip(batch, results, strict=True):
            by_loop.setdefault(job.future.get_loop(), []).append((job.future, result))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future, Any]]) -> None:
    for future, result in settled:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
