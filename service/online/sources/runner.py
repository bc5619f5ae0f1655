"""Running a request's candidate sources at once, each under its own deadline, and merging
what came back in time.

``two_tower`` and ``item_to_item`` go through the shared, batched search stage as one job:
the user vector and the seeds are searched in the same index call (two calls into the one
Milvus Lite process cost about twice one: `recsys bench --sources-ab`); each source waits for
it under its own deadline (``RECSYS_SEARCH_DEADLINE_MS`` for two_tower). ``trending`` and
``fresh`` run in worker threads under ``RECSYS_SOURCE_DEADLINES_MS``. Every source is asked
for the whole candidate count, so the others can fill the quota of one that fails or comes
up short. A source that fails is named in the answer (``failed_sources``): ``timeout`` or
``unavailable``. Only these failures are tolerated; any other exception is a bug and
surfaces.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import anyio

from service.index import IndexUnavailable, InvalidFilter
from service.online.batched import Searched, SearchJob, ServedUser
from service.online.batcher import Batcher
from service.online.clock import StageClock, off_loop
from service.online.domain import Candidates, Exclusions, FallbackReason, RecommendationQuery
from service.online.ports import ServableModel
from service.online.sources.found import Found, servable
from service.online.sources.fresh import fresh
from service.online.sources.merge import merge
from service.online.sources.plan import SourcePlan
from service.online.sources.trending import TrendingCounter
from service.online.store_counts import StoreCounts
from service.settings import Settings
from service.state import StoreError
from service.validation import InvalidInput

log = logging.getLogger(__name__)
TRENDING_SCAN_FACTOR = 4


@dataclass
class Gathered:
    candidates: Candidates
    index_problem: FallbackReason | None = None
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Request:
    model: ServableModel
    query: RecommendationQuery
    user: ServedUser
    exclusions: Exclusions
    limit: int
    seeds: list[str]
    searched: asyncio.Task[Searched] | None = None


class SourceRunner:
    def __init__(
        self,
        search: Batcher,
        settings: Settings,
        trending: TrendingCounter,
        counts: StoreCounts,
    ) -> None:
        self._search, self._settings = search, settings
        self.trending, self._counts = trending, counts

    async def gather(
        self,
        model: ServableModel,
        query: RecommendationQuery,
        user: ServedUser,
        exclusions: Exclusions,
        plan: SourcePlan,
        clock: StageClock,
    ) -> Gathered:
        seeds = user.state.seen[: self._settings.item_to_item_seeds]
        request = _Request(model, query, user, exclusions, sum(plan.quotas.values()), seeds)
        request = replace(request, searched=self._vector_search(request, plan))
        found: dict[str, Found] = {}
        out = Gathered(Candidates([], [], "retrieval"))

        async def one(name: str) -> None:
            started = time.perf_counter()
            try:
                found[name] = await self._run(name, request)
            except InvalidFilter as exc:
                raise InvalidInput(str(exc), "filter") from None
            except (IndexUnavailable, StoreError, TimeoutError) as exc:
                why = "timeout" if isinstance(exc, TimeoutError) else "unavailable"
                log.warning("candidate source %s failed (%s): %s", name, why, exc)
                out.failed[name] = why
                if name == "two_tower":
                    out.index_problem = "index_timeout" if why == "timeout" else "index_unavailable"
            finally:
                clock.record(_timing(name), time.perf_counter() - started)

        try:
            async with anyio.create_task_group() as tasks:
                for name in plan.names:
                    tasks.start_soon(one, name)
        finally:
            if request.searched is not None:
                request.searched.cancel()  # both gave up: the batcher skips the job
        with clock.stage("merge"):
            out.candidates = merge(plan, found, request.limit)
        return out

    def _run(self, name: str, r: _Request) -> Awaitable[Found]:
        if name == "two_tower":
            return self._two_tower(r)
        if name == "item_to_item":
            return self._item_to_item(r)
        blocking: Callable[[], Found] = {
            "trending": lambda: self._trending(r),
            "fresh": lambda: fresh(r.model, r.limit, r.query.filter, r.exclusions),
        }[name]
        return off_loop(blocking, self._settings.source_deadlines_ms.get(name))

    def _vector_search(self, r: _Request, plan: SourcePlan) -> asyncio.Task[Searched] | None:
        """One search job for the user vector (two_tower) and the seeds (item_to_item)."""
        vector = r.user.vector if "two_tower" in plan.quotas else None
        seeds = r.seeds if "item_to_item" in plan.quotas else []
        if vector is None and not seeds:
            return None
        job = SearchJob(r.model, vector, r.limit, r.query.filter, r.exclusions, seeds)
        searched = asyncio.ensure_future(self._search.submit(job))
        # a failure that came after both sources gave up is theirs to report, not asyncio's
        searched.add_done_callback(lambda task: task.cancelled() or task.exception())
        return searched

    async def _two_tower(self, r: _Request) -> Found:
        searched = await _within(r.searched, self._settings.search_deadline_ms)
        found = searched.candidates
        return Found(found.ids, list(found.scores or []))

    async def _item_to_item(self, r: _Request) -> Found:
        if r.searched is None or not r.seeds:
            return Found([], [], [])
        deadline_ms = self._settings.source_deadlines_ms.get("item_to_item")
        return (await _within(r.searched, deadline_ms)).neighbours

    def _trending(self, r: _Request) -> Found:
        """The decayed counts; while this process has none, the store's all-time counts."""
        scan = TRENDING_SCAN_FACTOR * r.limit + len(r.exclusions)
        ranked = self.trending.top(scan) or self._counts.top(scan)
        return servable(r.model, ranked, r.limit, r.query.filter, r.exclusions, scan)


async def _within(searched: asyncio.Task[Searched] | None, deadline_ms: float | None) -> Searched:
    """The shared search's result, or TimeoutError past ``deadline_ms`` (the search goes on
    for the other source)."""
    assert searched is not None
    timeout_s = None if deadline_ms is None else deadline_ms / 1000
    return await asyncio.wait_for(asyncio.shield(searched), timeout_s)


def _timing(name: str) -> str:
    return "search" if name == "two_tower" else f"source_{name}"
