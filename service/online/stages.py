"""The recommendation pipeline as small, blocking stages (the orchestrator runs them off the
event loop, times them and applies deadlines and fallbacks):

user state -> user row -> user tower -> vector search -> gather item features -> rank -> top k
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.bundle.manifest import RANKER
from service.features.encoder import Arrays
from service.index import SearchHit, VectorIndex
from service.index.port import MAX_EXCLUSIONS
from service.online.model import ServingModel
from service.state import Event, StateStore


@dataclass(frozen=True)
class UserState:
    user_id: str
    profile: dict[str, Any] | None
    events: list[Event]  # oldest first

    @property
    def seen(self) -> list[str]:
        """Items the user interacted with, most recent first, without repeats."""
        return list(dict.fromkeys(e.item_id for e in reversed(self.events)))


@dataclass(frozen=True)
class Candidate:
    item_id: str
    retrieval_score: float | None
    source: str  # "retrieval" | "popular"


def load_user_state(store: StateStore, user_id: str, history_length: int) -> UserState:
    return UserState(
        user_id, store.get_profile(user_id), store.recent_events(user_id, history_length)
    )


def is_cold_start(model: ServingModel, state: UserState) -> bool:
    """No profile, no events and an id the user tower never saw: only context is known."""
    schema = model.bundle.encoder.schema
    known_id = state.user_id in model.bundle.encoder.vocabs[schema[schema.user_key].table]
    return state.profile is None and not state.events and not known_id


def user_row(
    model: ServingModel,
    state: UserState,
    context: Mapping[str, Any],
    user_features: Mapping[str, Any],
) -> dict[str, Any]:
    """The raw user + context features of this request: stored profile, overridden by the
    request's own user features, plus context, the user id and the event history."""
    schema = model.bundle.encoder.schema
    row: dict[str, Any] = {**(state.profile or {}), **user_features, **context}
    row[schema.user_key] = state.user_id
    history = schema.history
    if history is not None:
        row[history.name] = [e.item_id for e in state.events]
    return row


def embed_user(model: ServingModel, row: Mapping[str, Any]) -> np.ndarray:
    encoded = model.bundle.encoder.encode_rows([row], model.user_tower_features())
    return model.bundle.models["user_tower"].run(encoded)[0]


def exclusions(requested: Sequence[str], seen: Sequence[str], exclude_seen: bool) -> list[str]:
    """Ids Milvus must leave out, at most `MAX_EXCLUSIONS`: the request's first, then the most
    recently seen. The orchestrator drops any excluded id that still comes back."""
    ids = list(dict.fromkeys([*requested, *(seen if exclude_seen else ())]))
    return ids[:MAX_EXCLUSIONS]


def retrieve(
    index: VectorIndex,
    model: ServingModel,
    vector: np.ndarray,
    limit: int,
    filters: Mapping[str, Sequence[Any]] | None,
    exclude: Sequence[str],
) -> list[Candidate]:
    hits: list[SearchHit] = index.search(model.version, vector, limit, filters or None, exclude)
    return [Candidate(h.item_id, h.score, "retrieval") for h in hits]


def popular(
    model: ServingModel,
    store: StateStore,
    limit: int,
    filters: Mapping[str, Sequence[Any]] | None,
    exclude: set[str],
) -> list[Candidate]:
    """Most-read items from the event counts, then the bundle's training popularity; only
    items in the catalog (when there is one) that pass the filters and are not excluded."""
    counted = [item_id for item_id, _ in store.popular_items(limit + len(exclude))]
    ordered = dict.fromkeys([*counted, *model.bundle.popular_items])
    has_catalog = len(model.items) > 0
    out = []
    for item_id in ordered:
        if item_id in exclude or (has_catalog and item_id not in model.items):
            continue
        if filters and not model.items.matches(item_id, filters):
            continue
        out.append(Candidate(item_id, None, "popular"))
        if len(out) == limit:
            break
    return out


def rank(model: ServingModel, arrays: Arrays) -> np.ndarray:
    return model.bundle.models[RANKER].run(arrays).reshape(-1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first (stable for ties)."""
    return np.argsort(-scores, kind="stable")[:k]
