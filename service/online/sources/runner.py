"""Running a request's candidate sources at once, each under its own deadline, and merging
what came back in time.

``two_tower`` goes through the shared, batched search stage (the user-vector search of the
default path, with its deadline ``RECSYS_SEARCH_DEADLINE_MS``); the others run in worker
threads under ``RECSYS_SOURCE_DEADLINES_MS``. Every source is asked for the whole candidate
count, so the others can fill the quota of one that fails or comes up short. A source that
fails is named in the answer (``failed_sources``): ``timeout`` or ``unavailable``. Only these
failures are tolerated; any other exception is a bug and surfaces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from service.index import IndexUnavailable, InvalidFilter, VectorIndex
from service.online.batched import SearchJob, ServedUser
from service.online.batcher import Batcher
from service.online.clock import StageClock, off_loop
from service.online.domain import Candidates, Exclusions, FallbackReason, RecommendationQuery
from service.online.ports import ServableModel
from service.online.sources.found import Found, servable
from service.online.sources.fresh import fresh
from service.online.sources.item_to_item import neighbours
from service.online.sources.merge import merge
from service.online.sources.plan import SourcePlan
from service.online.sources.trending import TrendingCounter
from service.settings import Settings
from service.state import StateStore, StoreError
from service.validation import InvalidInput

log = logging.getLogger(__name__)
TRENDING_SCAN_FACTOR = 4
STORE_COUNTS_TTL_S = 5.0  # how stale the store's all-time counts may be for `trending`


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


class SourceRunner:
    def __init__(
        self,
        index: VectorIndex,
        store: StateStore,
        search: Batcher,
        settings: Settings,
        trending: TrendingCounter,
    ) -> None:
        self._index, self._store, self._search = index, store, search
        self._settings, self.trending = settings, trending
        self._store_counts: tuple[float, int, list[tuple[str, float]]] = (
            -STORE_COUNTS_TTL_S,
            0,
            [],
        )

    async def gather(
        self,
        model: ServableModel,
        query: RecommendationQuery,
        user: ServedUser,
        exclusions: Exclusions,
        plan: SourcePlan,
        clock: StageClock,
    ) -> Gathered:
        request = _Request(model, query, user, exclusions, sum(plan.quotas.values()))
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

        async with anyio.create_task_group() as tasks:
            for name in plan.names:
                tasks.start_soon(one, name)
        with clock.stage("merge"):
            out.candidates = merge(plan, found, request.limit)
        return out

    def _run(self, name: str, r: _Request) -> Awaitable[Found]:
        if name == "two_tower":
            return self._two_tower(r)
        blocking: Callable[[], Found] = {
            "item_to_item": lambda: self._item_to_item(r),
            "trending": lambda: self._trending(r),
            "fresh": lambda: fresh(r.model, r.limit, r.query.filter, r.exclusions),
        }[name]
        return off_loop(blocking, self._settings.source_deadlines_ms.get(name))

    async def _two_tower(self, r: _Request) -> Found:
        job = SearchJob(r.model, r.user.vector, r.limit, r.query.filter, r.exclusions)
        found: Candidates = await self._search.submit(job, self._settings.search_deadline_ms / 1000)
        return Found(found.ids, list(found.scores or []))

    def _item_to_item(self, r: _Request) -> Found:
        seeds = r.user.state.seen[: self._settings.item_to_item_seeds]
        return neighbours(self._index, r.model, seeds, r.limit, r.query.filter, r.exclusions)

    def _trending(self, r: _Request) -> Found:
        """The decayed counts; while this process has none, the store's all-time counts."""
        scan = TRENDING_SCAN_FACTOR * r.limit + len(r.exclusions)
        ranked = self.trending.top(scan) or self._counted(scan)
        return servable(r.model, ranked, r.limit, r.query.filter, r.exclusions, scan)

    def _counted(self, scan: int) -> list[tuple[str, float]]:
        """The store's top ``scan`` by all-time counts, read at most every
        ``STORE_COUNTS_TTL_S`` (a sort over every counted item: 9 ms per request on SQLite
        with 100k items, `recsys bench --sources-ab`); concurrent misses may read twice."""
        read_at, size, ranked = self._store_counts
        now = time.monotonic()
        if now - read_at >= STORE_COUNTS_TTL_S or scan > size:
            ranked = self._store.popular_items(scan)
            self._store_counts = (now, scan, ranked)
        return ranked[:scan]


def _timing(name: str) -> str:
    return "search" if name == "two_tower" else f"source_{name}"
