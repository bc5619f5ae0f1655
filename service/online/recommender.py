"""The recommendation orchestrator: runs the stages off the event loop in batches shared by
concurrent requests, times each one, applies deadlines (from the moment a request joins a
stage's queue) and falls back with a named reason instead of failing.

- store unavailable -> context-only user (``store_unavailable``);
- stored profile no longer encodes -> the user without it (``profile_unencodable``);
- vector search unavailable or past its deadline -> popular items (``index_unavailable`` /
  ``index_timeout``);
- ranker fails or is past its deadline -> retrieval order (``ranker_failed`` /
  ``ranker_timeout``).

Every fallback is counted in ``rec_fallbacks_total``; the answer names the one that changed
it most: the index's, then the ranker's, then the store's. Only these failures fall back: any
other exception is a bug and surfaces (a 500, with its traceback in the log).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from service.features import EncodingError
from service.index import IndexUnavailable, InvalidFilter, InvalidRequest, VectorIndex
from service.metrics import Metrics
from service.online.batched import (
    Ranked,
    RankJob,
    RankStage,
    SearchJob,
    SearchStage,
    ServedUser,
    UserStage,
)
from service.online.batcher import Batcher
from service.online.clock import StageClock, off_loop
from service.online.domain import (
    Candidates,
    EmptyReason,
    Exclusions,
    FallbackReason,
    Recommendation,
    RecommendationQuery,
    RecommendedItem,
)
from service.online.ports import RankerError, ServableModel
from service.online.selection import select
from service.online.sources.plan import SourcePlan, check_shares, plan
from service.online.sources.runner import SourceRunner
from service.online.sources.trending import TrendingCounter
from service.online.stages import is_cold_start, popular
from service.online.store_counts import StoreCounts
from service.settings import Settings
from service.state import StateStore
from service.validation import InvalidInput, check_request_names

log = logging.getLogger(__name__)


class Recommender:
    """Serves concurrent requests through three batched stages (user, search, rank) whose
    threads take every request waiting (`service.online.batcher`; search and rank run
    ``RECSYS_STAGE_THREADS`` batches at once)."""

    def __init__(
        self, index: VectorIndex, store: StateStore, settings: Settings, metrics: Metrics
    ) -> None:
        self._index, self._store, self._settings, self._metrics = index, store, settings, metrics
        batching = {"max_batch": settings.batch_max, "window_s": settings.batch_window_ms / 1000}
        users = UserStage(store, settings.history_length)
        self._users = Batcher("user", users, metrics, **batching)
        threads = settings.stage_threads
        self._search = Batcher("search", SearchStage(index), metrics, threads=threads, **batching)
        self._rank = Batcher("rank", RankStage(store), metrics, threads=threads, **batching)
        self.trending = TrendingCounter(settings.trending_half_life_s, settings.trending_capacity)
        self._counts = StoreCounts(store)
        self._sources = SourceRunner(self._search, settings, self.trending, self._counts)

    def close(self) -> None:
        for batcher in (self._users, self._search, self._rank):
            batcher.close()

    async def recommend(self, model: ServableModel, query: RecommendationQuery) -> Recommendation:
        """``model`` is the snapshot this request is served with, from start to end."""
        check_request_names(model.rules, query.context, query.user_features, query.filter)
        clock = StageClock(self._metrics)
        user = await self._user(model, query, clock)
        exclusions = Exclusions.of(query, user.state)
        sources = self._plan(query)
        failed: dict[str, str] = {}
        if sources.two_tower_only:
            candidates, index_problem = await self._candidates(
                model, query, user.vector, exclusions, clock
            )
        else:
            gathered = await self._sources.gather(model, query, user, exclusions, sources, clock)
            candidates, index_problem = gathered.candidates, gathered.index_problem
            failed = gathered.failed
            if not candidates and failed:
                with clock.stage("popular"):
                    candidates = await off_loop(
                        lambda: popular(
                            model, self._counts, sources_limit(sources), query.filter, exclusions
                        )
                    )
        items, ranker_problem = await self._ranked(model, user, candidates, query, clock)
        reasons = [r for r in (index_problem, ranker_problem, user.problem) if r is not None]
        for reason in reasons:
            self._metrics.fallbacks.labels(reason).inc()
        cold_start = is_cold_start(model, user.state)
        if cold_start:
            self._metrics.cold_starts.inc()
        return Recommendation(
            user_id=query.user_id,
            items=items,
            model_version=model.version,
            collection=model.collection,
            ranker=model.info.ranker,
            cold_start=cold_start,
            fallback_reason=reasons[0] if reasons else None,
            timings_ms=clock.total(),
            empty_reason=None if items else _why_empty(query, exclusions),
            user_features={**(user.state.profile or {}), **query.user_features},
            failed_sources=failed,
        )

    def _plan(self, query: RecommendationQuery) -> SourcePlan:
        shares = check_shares(query.sources) if query.sources else self._settings.sources
        return plan(shares, max(query.candidates, query.k))

    async def _user(
        self, model: ServableModel, query: RecommendationQuery, clock: StageClock
    ) -> ServedUser:
        try:
            user: ServedUser = await self._users.submit((model, query))
        except EncodingError as exc:
            raise _request_error(query, exc) from None
        for name, seconds in user.seconds.items():
            clock.record(name, seconds)
        return user

    async def _candidates(
        self,
        model: ServableModel,
        query: RecommendationQuery,
        vector: np.ndarray,
        exclusions: Exclusions,
        clock: StageClock,
    ) -> tuple[Candidates, FallbackReason | None]:
        limit = max(query.candidates, query.k)
        job = SearchJob(model, vector, limit, query.filter, exclusions)
        started = time.perf_counter()
        try:
            found = await self._search.submit(job, self._settings.search_deadline_ms / 1000)
            return found.candidates, None
        except InvalidFilter as exc:
            raise InvalidInput(str(exc), "filter") from None
        except InvalidRequest as exc:
            # the user tower gave a vector the index refuses (NaN from weights summing to 0)
            problem = "user_vector_invalid"
            log.warning("user vector refused by the index: %s; serving popular items", exc)
        except (IndexUnavailable, TimeoutError) as exc:
            problem: FallbackReason = (
                "index_timeout" if isinstance(exc, TimeoutError) else "index_unavailable"
            )
            log.warning("vector search failed (%s): %s; serving popular items", problem, exc)
        finally:
            clock.record("search", time.perf_counter() - started)
        with clock.stage("popular"):
            fallback = await off_loop(
                lambda: popular(model, self._counts, limit, query.filter, exclusions)
            )
        return fallback, problem

    async def _ranked(
        self,
        model: ServableModel,
        user: ServedUser,
        candidates: Candidates,
        query: RecommendationQuery,
        clock: StageClock,
    ) -> tuple[list[RecommendedItem], FallbackReason | None]:
        k = query.k
        if not candidates:
            clock.skipped("gather", "rank")
            return [], None
        job = RankJob(model, user.encoded, candidates)
        try:
            ranked: Ranked = await self._rank.submit(job, self._settings.rank_deadline_ms / 1000)
        except TimeoutError:
            log.warning("ranker past its deadline; serving retrieval order")
            return _retrieval_order(candidates, k), "ranker_timeout"
        except RankerError:
            log.warning("ranker failed; serving retrieval order", exc_info=True)
            return _retrieval_order(candidates, k), "ranker_failed"
        for name, seconds in ranked.seconds.items():
            clock.record(name, seconds)
        scores = ranked.scores
        items = []
        for pick in await select(self._index, model, candidates, scores, query, clock):
            c = candidates.at(pick.position)
            explanation = c.explanation
            if pick.exploration:
                explanation = replace(explanation, exploration=True)
            score = float(scores[pick.position])
            items.append(
                RecommendedItem(c.item_id, score, c.retrieval_score, c.source, explanation)
            )
        return items, None


def sources_limit(sources: SourcePlan) -> int:
    return sum(sources.quotas.values())


def _retrieval_order(candidates: Candidates, k: int) -> list[RecommendedItem]:
    return [
        RecommendedItem(c.item_id, c.retrieval_score, c.retrieval_score, c.source, c.explanation)
        for c in (candidates.at(n) for n in range(min(k, len(candidates))))
    ]


def _why_empty(query: RecommendationQuery, exclusions: Exclusions) -> EmptyReason:
    if query.filter:
        return "filter_matched_nothing"
    return "all_excluded" if len(exclusions) else "no_items"


def _request_error(query: RecommendationQuery, exc: EncodingError) -> Exception:
    """A value the request sent that the model cannot encode is the request's fault (422); a
    stored one is not, and stays an error of the service."""
    for part in ("context", "user_features"):
        if exc.feature in getattr(query, part):
            return InvalidInput(f"{part}.{exc}", f"{part}.{exc.feature}")
    return exc
