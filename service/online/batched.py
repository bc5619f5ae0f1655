"""The recommendation stages over many requests at once, as the batchers call them (in their
own threads): each takes the jobs of concurrent requests and returns one result per job, a
value or that job's own exception.

- users: each user's state from the store, then one encoding and one user-tower run for all;
- search: one index call (nq > 1) per model and filter, for the user vectors and the
  item-to-item seeds of every request; each request's exclusions are over-fetched and
  dropped after, so requests with different exclusions share the call;
- rank: every request's candidates gathered and scored in one ranker run.

For an exact index the over-fetch gives the same candidates as excluding inside the search.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.features import EncodingError
from service.index import VectorIndex
from service.index.port import MAX_LIMIT, HitColumns
from service.online.domain import (
    Candidates,
    Exclusions,
    FallbackReason,
    RecommendationQuery,
    UserState,
)
from service.online.ports import EncodedUser, ServableModel
from service.online.sources.found import Found
from service.online.sources.item_to_item import nearest, neighbours, neighbours_fetch, seed_vectors
from service.online.stages import load_user_state, retrieve, user_row
from service.state import StateStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedUser:
    state: UserState
    encoded: EncodedUser  # this request's row
    vector: np.ndarray
    problem: FallbackReason | None
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchJob:
    """A request's vector searches, served in one index call with the other jobs': its user
    vector (``two_tower``; None when not asked) and the items whose neighbours
    ``item_to_item`` wants (``seeds``)."""

    model: ServableModel
    vector: np.ndarray | None
    limit: int
    filter: Mapping[str, Sequence[Any]]
    exclusions: Exclusions
    seeds: Sequence[str] = ()

    def fetch(self) -> int:
        """Hits per query, with the over-fetch for what is dropped after the search."""
        if self.seeds:
            return neighbours_fetch(self.limit, self.exclusions, len(self.seeds))
        return self.limit + len(self.exclusions)


@dataclass(frozen=True)
class Searched:
    candidates: Candidates | None  # the user vector's; None when the job had none
    neighbours: Found | None  # the seeds'; None when the job had none


@dataclass(frozen=True)
class RankJob:
    model: ServableModel
    user: EncodedUser
    candidates: Candidates


@dataclass(frozen=True)
class Ranked:
    scores: np.ndarray
    seconds: dict[str, float]


class UserStage:
    def __init__(self, store: StateStore, history_length: int) -> None:
        self._store, self._history_length = store, history_length

    def __call__(self, jobs: Sequence[tuple[ServableModel, RecommendationQuery]]) -> list[Any]:
        out: list[Any] = [None] * len(jobs)
        started = time.perf_counter()
        states = [self._state(query) for _, query in jobs]
        state_s = (time.perf_counter() - started) / len(jobs)
        for model, positions in _by_model([m for m, _ in jobs]):
            started = time.perf_counter()
            rows = [
                user_row(model.rules, states[i][0], jobs[i][1].context, jobs[i][1].user_features)
                for i in positions
            ]
            encoded = _encode(model, rows)
            tower_s = time.perf_counter() - started
            for n, i in enumerate(positions):
                state, problem = states[i]
                if isinstance(encoded[n], EncodingError):
                    encoded[n], problem = _without_profile(model, state, jobs[i][1], encoded[n])
                if isinstance(encoded[n], Exception):
                    out[i] = encoded[n]
                    continue
                user, vector = encoded[n]
                seconds = {"user_state": state_s, "user_tower": tower_s}
                out[i] = ServedUser(state, user, vector, problem, seconds)
        return out

    def _state(self, query: RecommendationQuery) -> tuple[UserState, FallbackReason | None]:
        """The stored state, with the request's session events after the stored ones (they
        count as the most recent history; they are not stored)."""
        user_id, problem = query.user_id, None
        try:
            state = load_user_state(self._store, user_id, self._history_length)
        except StoreError as exc:
            log.warning("user state unavailable: %s", exc)
            state, problem = UserState(user_id, None, []), "store_unavailable"
        if query.session_events:
            events = [*state.events, *query.session_events][-self._history_length :]
            state = UserState(user_id, state.profile, events)
        return state, problem


def _encode(model: ServableModel, rows: list[dict[str, Any]]) -> list[Any]:
    """(row's encoding, its vector) per row: all in one run, or row by row when one row does
    not encode (that row gets its `EncodingError`)."""
    try:
        users = model.encode_users(rows)
    except EncodingError as exc:
        if len(rows) == 1:
            return [exc]
        return [_encode(model, [row])[0] for row in rows]
    vectors = model.embed_users(users)
    return [({k: v[n : n + 1] for k, v in users.items()}, vectors[n]) for n in range(len(rows))]


def _without_profile(
    model: ServableModel, state: UserState, query: RecommendationQuery, exc: EncodingError
) -> tuple[Any, FallbackReason | None]:
    """A stored profile that no longer encodes (written before a schema change, or a value the
    encoder now refuses) is not the request's fault and must not fail every request of that
    user: serve the user without it (``profile_unencodable``). A value the request itself sent
    stays the request's error."""
    sent = exc.feature in query.context or exc.feature in query.user_features
    if sent or not state.profile or exc.feature not in state.profile:
        return exc, None
    log.warning("stored profile does not encode (%s); serving without it", exc.feature)
    bare = UserState(state.user_id, None, state.events)
    row = user_row(model.rules, bare, query.context, query.user_features)
    return _encode(model, [row])[0], "profile_unencodable"


class SearchStage:
    def __init__(self, index: VectorIndex, overfetch_max: int = 256) -> None:
        self._index, self._overfetch_max = index, overfetch_max

    def __call__(self, jobs: Sequence[SearchJob]) -> list[Any]:
        out: list[Any] = [None] * len(jobs)
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            if len(job.exclusions) > self._overfetch_max or job.fetch() > MAX_LIMIT:
                out[i] = self._alone(job)
            else:
                key = (id(job.model), job.model.version, _filter_key(job.filter))
                groups.setdefault(key, []).append(i)
        for positions in groups.values():
            self._together([jobs[i] for i in positions], positions, out)
        return out

    def _alone(self, job: SearchJob) -> Any:
        """With the exclusions inside the search (too many to over-fetch)."""
        try:
            candidates = None
            if job.vector is not None:
                candidates = retrieve(
                    self._index, job.model, job.vector, job.limit, job.filter, job.exclusions
                )
            found = None
            if job.seeds:
                found = neighbours(
                    self._index, job.model, job.seeds, job.limit, job.filter, job.exclusions
                )
            return Searched(candidates, found)
        except Exception as exc:  # the request decides what a failure means
            return exc

    def _together(self, jobs: list[SearchJob], positions: list[int], out: list[Any]) -> None:
        queries: list[np.ndarray] = []
        planned: list[tuple[int, SearchJob, list[str]]] = []
        for i, job in zip(positions, jobs, strict=True):
            try:
                vectors = seed_vectors(self._index, job.model, job.seeds) if job.seeds else {}
            except Exception as exc:
                out[i] = exc
                continue
            known = [s for s in job.seeds if s in vectors]
            queries.extend([job.vector] if job.vector is not None else [])
            queries.extend(vectors[s] for s in known)
            planned.append((i, job, known))
        found: list[HitColumns] = []
        if queries:
            first = jobs[0]
            limit = max(job.fetch() for _, job, _ in planned)
            try:
                found = self._index.search_many(
                    first.model.version, np.stack(queries), limit, first.filter or None
                )
            except Exception as exc:
                for i, _, _ in planned:
                    out[i] = exc
                return
        at = 0
        for i, job, known in planned:
            candidates = None
            if job.vector is not None:
                hits, at = found[at], at + 1
                candidates = Candidates.kept(hits.ids, hits.scores, job.exclusions, job.limit)
            neighboured = None
            if job.seeds:
                seed_hits, at = found[at : at + len(known)], at + len(known)
                neighboured = nearest(known, seed_hits, job.limit, job.exclusions)
            out[i] = Searched(candidates, neighboured)


def _filter_key(filters: Mapping[str, Sequence[Any]]) -> tuple:
    return tuple(sorted((name, tuple(map(repr, values))) for name, values in filters.items()))


class RankStage:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    def __call__(self, jobs: Sequence[RankJob]) -> list[Any]:
        out: list[Any] = [None] * len(jobs)
        for model, positions in _by_model([job.model for job in jobs]):
            try:
                ranked = self._rank(model, [jobs[i] for i in positions])
            except Exception as exc:
                ranked = [exc] * len(positions)
            for i, result in zip(positions, ranked, strict=True):
                out[i] = result
        return out

    def _rank(self, model: ServableModel, jobs: list[RankJob]) -> list[Ranked]:
        seconds: dict[str, float] = {}
        ids = [item_id for job in jobs for item_id in job.candidates.ids]
        if not model.items.has_all(ids):  # some added by another process just now
            started = time.perf_counter()
            try:
                model.items.sync(self._store)
            except StoreError as exc:
                log.warning("catalog sync failed, ranking with what is known: %s", exc)
            seconds["catalog_sync"] = time.perf_counter() - started
        started = time.perf_counter()
        items = model.gather(ids)
        users = {k: np.concatenate([job.user[k] for job in jobs]) for k in jobs[0].user}
        owners = np.repeat(np.arange(len(jobs)), [len(job.candidates) for job in jobs])
        seconds["gather"] = time.perf_counter() - started
        started = time.perf_counter()
        scores = model.score(users, owners, items)
        seconds["rank"] = time.perf_counter() - started
        bounds = np.cumsum([0, *(len(job.candidates) for job in jobs)])
        return [Ranked(scores[a:b], seconds) for a, b in itertools.pairwise(bounds)]


def _by_model(models: Sequence[ServableModel]) -> list[tuple[ServableModel, list[int]]]:
    """Positions of the jobs for each model (a reload may put two models in one batch)."""
    groups: dict[int, tuple[ServableModel, list[int]]] = {}
    for i, model in enumerate(models):
        groups.setdefault(id(model), (model, []))[1].append(i)
    return list(groups.values())
