"""The recommendation orchestrator: runs the stages off the event loop, times each one,
applies deadlines and falls back with a named reason instead of failing.

- store unavailable -> context-only user (``store_unavailable``);
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
from dataclasses import dataclass

import numpy as np

from service.features import EncodingError
from service.index import IndexUnavailable, InvalidFilter, VectorIndex
from service.metrics import Metrics
from service.online.clock import StageClock, off_loop
from service.online.domain import (
    Candidate,
    Exclusions,
    FallbackReason,
    Recommendation,
    RecommendationQuery,
    RecommendedItem,
    UserState,
)
from service.online.ports import EncodedUser, RankerError, ServableModel
from service.online.stages import (
    is_cold_start,
    load_user_state,
    popular,
    retrieve,
    top_k,
    user_row,
)
from service.settings import Settings
from service.state import StateStore, StoreError
from service.validation import InvalidInput, check_request_names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _User:
    state: UserState
    encoded: EncodedUser
    vector: np.ndarray


class Recommender:
    def __init__(
        self, index: VectorIndex, store: StateStore, settings: Settings, metrics: Metrics
    ) -> None:
        self._index, self._store, self._settings, self._metrics = index, store, settings, metrics

    async def recommend(self, model: ServableModel, query: RecommendationQuery) -> Recommendation:
        """Three hops off the event loop: the user (state + tower), the search, the ranker.
        ``model`` is the snapshot this request is served with, from start to end."""
        check_request_names(model.rules, query.context, query.user_features, query.filter)
        clock = StageClock(self._metrics)
        user, store_problem = await off_loop(lambda: self._user(model, query, clock))
        exclusions = Exclusions.of(query, user.state)
        candidates, index_problem = await self._candidates(
            model, query, user.vector, exclusions, clock
        )
        items, ranker_problem = await self._ranked(model, user.encoded, candidates, query.k, clock)
        reasons = [r for r in (index_problem, ranker_problem, store_problem) if r is not None]
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
        )

    def _user(
        self, model: ServableModel, query: RecommendationQuery, clock: StageClock
    ) -> tuple[_User, FallbackReason | None]:
        problem: FallbackReason | None = None
        with clock.stage("user_state"):
            try:
                state = load_user_state(self._store, query.user_id, self._settings.history_length)
            except StoreError as exc:
                log.warning("user state unavailable: %s", exc)
                state, problem = UserState(query.user_id, None, []), "store_unavailable"
        with clock.stage("user_tower"):
            row = user_row(model.rules, state, query.context, query.user_features)
            try:
                encoded = model.encode_user(row)
            except EncodingError as exc:
                raise _request_error(query, exc) from None
            return _User(state, encoded, model.embed_user(encoded)), problem

    async def _candidates(
        self,
        model: ServableModel,
        query: RecommendationQuery,
        vector: np.ndarray,
        exclusions: Exclusions,
        clock: StageClock,
    ) -> tuple[list[Candidate], FallbackReason | None]:
        limit = max(query.candidates, query.k)
        started = time.perf_counter()
        try:
            found = await off_loop(
                lambda: retrieve(self._index, model, vector, limit, query.filter, exclusions),
                self._settings.search_deadline_ms,
            )
            return found, None
        except InvalidFilter as exc:
            raise InvalidInput(str(exc), "filter") from None
        except (IndexUnavailable, TimeoutError) as exc:
            problem: FallbackReason = (
                "index_timeout" if isinstance(exc, TimeoutError) else "index_unavailable"
            )
            log.warning("vector search failed (%s): %s; serving popular items", problem, exc)
        finally:
            clock.record("search", time.perf_counter() - started)
        with clock.stage("popular"):
            fallback = await off_loop(
                lambda: popular(model, self._store, limit, query.filter, exclusions)
            )
        return fallback, problem

    async def _ranked(
        self,
        model: ServableModel,
        user: EncodedUser,
        candidates: list[Candidate],
        k: int,
        clock: StageClock,
    ) -> tuple[list[RecommendedItem], FallbackReason | None]:
        if not candidates:
            return [], None
        try:
            scores = await off_loop(
                lambda: self._score(model, user, candidates, clock),
                self._settings.rank_deadline_ms,
            )
        except TimeoutError:
            log.warning("ranker past its deadline; serving retrieval order")
            return _retrieval_order(candidates, k), "ranker_timeout"
        except RankerError:
            log.warning("ranker failed; serving retrieval order", exc_info=True)
            return _retrieval_order(candidates, k), "ranker_failed"
        return [
            RecommendedItem(
                candidates[i].item_id,
                float(scores[i]),
                candidates[i].retrieval_score,
                candidates[i].source,
            )
            for i in top_k(scores, k)
        ], None

    def _score(
        self,
        model: ServableModel,
        user: EncodedUser,
        candidates: list[Candidate],
        clock: StageClock,
    ) -> np.ndarray:
        ids = [c.item_id for c in candidates]
        if any(i not in model.items for i in ids):  # added by another process just now
            with clock.stage("catalog_sync"):
                try:
                    model.items.sync(self._store)
                except StoreError as exc:
                    log.warning("catalog sync failed, ranking with what is known: %s", exc)
        with clock.stage("gather"):
            items = model.gather(ids)
        with clock.stage("rank"):
            return model.score(user, items)


def _retrieval_order(candidates: list[Candidate], k: int) -> list[RecommendedItem]:
    return [
        RecommendedItem(c.item_id, c.retrieval_score, c.retrieval_score, c.source)
        for c in candidates[:k]
    ]


def _request_error(query: RecommendationQuery, exc: EncodingError) -> Exception:
    """A value the request sent that the model cannot encode is the request's fault (422); a
    stored one is not, and stays an error of the service."""
    for part in ("context", "user_features"):
        if exc.feature in getattr(query, part):
            return InvalidInput(f"{part}.{exc}", f"{part}.{exc.feature}")
    return exc
