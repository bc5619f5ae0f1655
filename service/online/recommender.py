"""The recommendation orchestrator: runs the stages off the event loop, times each one,
applies deadlines and falls back with a named reason instead of failing.

- store unavailable -> context-only user (degraded, ``store_unavailable``);
- vector search unavailable or past its deadline -> popular items (``index_unavailable`` /
  ``index_timeout``);
- ranker fails or is past its deadline -> retrieval order (``ranker_failed`` /
  ``ranker_timeout``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import numpy as np

from service.index import IndexUnavailable, InvalidFilter
from service.online import stages
from service.online.model import ServingModel, sync_items
from service.online.runtime import Runtime
from service.state import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")


class RecommendationError(ValueError):
    """The request cannot be served as asked (e.g. a filter on a field that is not filterable)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RecommendationQuery:
    user_id: str
    k: int = 20
    candidates: int = 200
    context: dict[str, Any] = field(default_factory=dict)
    user_features: dict[str, Any] = field(default_factory=dict)
    exclude_item_ids: list[str] = field(default_factory=list)
    exclude_seen: bool = True
    filter: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class RecommendedItem:
    item_id: str
    score: float | None
    retrieval_score: float | None
    source: str


@dataclass
class Recommendation:
    user_id: str
    items: list[RecommendedItem]
    model_version: str
    collection: str
    ranker: str
    cold_start: bool
    fallback_reason: str | None
    timings_ms: dict[str, float]

    @property
    def degraded(self) -> bool:
        return self.fallback_reason is not None


class _Timings:
    """Per-stage durations of one request, into the response and the stage histogram."""

    def __init__(self, runtime: Runtime) -> None:
        self.metrics = runtime.metrics
        self.ms: dict[str, float] = {}

    def record(self, name: str, seconds: float) -> None:
        self.ms[name] = round(seconds * 1000, 3)
        self.metrics.stage.labels(name).observe(seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - started)


async def off_loop(fn: Callable[[], T], deadline_ms: float | None = None) -> T:
    """Run blocking ``fn`` in a worker thread so the event loop serves other requests; past
    ``deadline_ms`` raise TimeoutError (the thread is abandoned; its own timeout ends it)."""
    if deadline_ms is None:
        return await anyio.to_thread.run_sync(fn)
    with anyio.fail_after(deadline_ms / 1000):
        return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)


class Recommender:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def _check_query(self, model: ServingModel, query: RecommendationQuery) -> None:
        """Unknown feature or filter names are mistakes worth a 422, not silent OOVs."""
        known = {
            "filter": {f.name for f in model.bundle.encoder.schema.filterable()},
            "context": {f.name for f in model.context_features()},
            "user_features": {f.name for f in model.profile_features()},
        }
        for part, allowed in known.items():
            for name in getattr(query, part):
                if name not in allowed:
                    raise RecommendationError(
                        f"{part}.{name}: unknown; this model accepts {sorted(allowed)}",
                        f"{part}.{name}",
                    )

    async def recommend(self, query: RecommendationQuery) -> Recommendation:
        """Three hops off the event loop: user (state + tower), search, rank (gather + ranker)."""
        model = self.runtime.model
        assert model is not None, "the app reports ready only once a model is loaded"
        self._check_query(model, query)
        store, index, settings = self.runtime.store, self.runtime.index, self.settings
        timings = _Timings(self.runtime)
        started = time.perf_counter()
        reason: str | None = None

        def user() -> tuple[stages.UserState, str | None, dict[str, Any], np.ndarray]:
            problem = None
            with timings.stage("user_state"):
                try:
                    state = stages.load_user_state(store, query.user_id, settings.history_length)
                except StoreError as exc:
                    log.warning("user state unavailable: %s", exc)
                    state, problem = stages.UserState(query.user_id, None, []), "store_unavailable"
            with timings.stage("user_tower"):
                row = stages.user_row(model, state, query.context, query.user_features)
                return state, problem, row, stages.embed_user(model, row)

        state, reason, row, vector = await off_loop(user)
        cold_start = stages.is_cold_start(model, state)
        excluded = set(query.exclude_item_ids) | set(state.seen if query.exclude_seen else ())
        limit = max(query.candidates, query.k)
        exclude = stages.exclusions(query.exclude_item_ids, state.seen, query.exclude_seen)
        search_started = time.perf_counter()
        try:
            candidates = await off_loop(
                lambda: stages.retrieve(index, model, vector, limit, query.filter, exclude),
                settings.search_deadline_ms,
            )
            timings.record("search", time.perf_counter() - search_started)
        except InvalidFilter as exc:
            raise RecommendationError(str(exc), "filter") from None
        except (IndexUnavailable, TimeoutError) as exc:
            timings.record("search", time.perf_counter() - search_started)
            reason = "index_timeout" if isinstance(exc, TimeoutError) else "index_unavailable"
            log.warning("vector search failed (%s): %s; serving popular items", reason, exc)
            with timings.stage("popular"):
                candidates = await off_loop(
                    lambda: stages.popular(model, store, limit, query.filter, excluded)
                )
        candidates = [c for c in candidates if c.item_id not in excluded]
        ids = [c.item_id for c in candidates]

        def rank() -> np.ndarray:
            if any(i not in model.items for i in ids):  # added by another process just now
                with timings.stage("catalog_sync"):
                    sync_items(model.items, store)
            with timings.stage("gather"):
                arrays = model.ranker_inputs(row, ids)
            with timings.stage("rank"):
                return stages.rank(model, arrays)

        items: list[RecommendedItem] = []
        if candidates:
            try:
                scores = await off_loop(rank, settings.rank_deadline_ms)
                items = [
                    RecommendedItem(
                        ids[i],
                        float(scores[i]),
                        candidates[i].retrieval_score,
                        candidates[i].source,
                    )
                    for i in stages.top_k(scores, query.k)
                ]
            except Exception as exc:  # any ranker failure: serve retrieval order instead
                reason = reason or (
                    "ranker_timeout" if isinstance(exc, TimeoutError) else "ranker_failed"
                )
                log.error("ranker failed (%s): %r; serving retrieval order", reason, exc)
                items = [
                    RecommendedItem(c.item_id, c.retrieval_score, c.retrieval_score, c.source)
                    for c in candidates[: query.k]
                ]
        timings.ms["total"] = round((time.perf_counter() - started) * 1000, 3)
        if reason:
            self.runtime.metrics.fallbacks.labels(reason).inc()
        if cold_start:
            self.runtime.metrics.cold_starts.inc()
        return Recommendation(
            query.user_id,
            items,
            model.version,
            model.collection,
            model.ranker_name,
            cold_start,
            reason,
            timings.ms,
        )
