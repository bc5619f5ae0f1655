"""The recommendation pipeline as small, blocking stages over the ports (the recommender runs
them off the event loop, times them and applies deadlines and fallbacks):

user state -> user row -> user tower -> vector search -> gather item features -> rank -> top k
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.index import VectorIndex
from service.online.domain import Candidates, Exclusions, UserState
from service.online.ports import ServableModel
from service.online.store_counts import StoreCounts
from service.state import StateStore, StoreError
from service.validation import RequestRules


def load_user_state(store: StateStore, user_id: str, history_length: int) -> UserState:
    return UserState(
        user_id, store.get_profile(user_id), store.recent_events(user_id, history_length)
    )


def is_cold_start(model: ServableModel, state: UserState) -> bool:
    """No profile, no events and an id the user tower never saw: only context is known."""
    return state.profile is None and not state.events and not model.knows_user(state.user_id)


def user_row(
    rules: RequestRules,
    state: UserState,
    context: Mapping[str, Any],
    user_features: Mapping[str, Any],
) -> dict[str, Any]:
    """The raw user + context features of this request: stored profile, overridden by the
    request's own user features, plus context, the user id and the event history."""
    row: dict[str, Any] = {**(state.profile or {}), **user_features, **context}
    row[rules.user_key] = state.user_id
    if rules.history is not None:
        row[rules.history] = state.history
    return row


def retrieve(
    index: VectorIndex,
    model: ServableModel,
    vector: np.ndarray,
    limit: int,
    filters: Mapping[str, Sequence[Any]] | None,
    exclusions: Exclusions,
) -> Candidates:
    """The index's top ``limit`` for the user vector, without any excluded id (the first
    ones excluded inside the search, every one after it)."""
    hits = index.search(model.version, vector, limit, filters or None, exclusions.for_index())
    ids, scores = [h.item_id for h in hits], [h.score for h in hits]
    return Candidates.kept(ids, scores, exclusions, limit)


def popular(
    model: ServableModel,
    counts: StoreCounts,
    limit: int,
    filters: Mapping[str, Sequence[Any]] | None,
    exclusions: Exclusions,
) -> Candidates:
    """Most-read items from the store's event counts (when it answers), then the bundle's
    training popularity; only catalog items (when there is a catalog) that pass the filters and
    are not excluded."""
    try:
        counted = [item_id for item_id, _ in counts.top(limit + len(exclusions))]
    except StoreError:
        counted = []
    ordered = dict.fromkeys([*counted, *model.popular_items])
    has_catalog = len(model.items) > 0
    out: list[str] = []
    for item_id in ordered:
        if item_id in exclusions or (has_catalog and item_id not in model.items):
            continue
        if filters and not model.items.matches(item_id, filters):
            continue
        out.append(item_id)
        if len(out) == limit:
            break
    return Candidates(out, None, "popular")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first (stable for ties)."""
    return np.argsort(-scores, kind="stable")[:k]
