"""The online pipeline's vocabulary: a query, the user it is for, the items to leave out, the
candidates and the answer. Plain dataclasses; nothing here knows a bundle, Milvus or HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from service.feedback.events import is_negative
from service.index.port import MAX_EXCLUSIONS
from service.state import Event

FallbackReason = Literal[
    "store_unavailable",
    "profile_unencodable",
    "index_unavailable",
    "index_timeout",
    "ranker_failed",
    "ranker_timeout",
]
Source = Literal["retrieval", "popular"]
# why an answer has no items: no item passes the filter (and the exclusions); every item the
# index holds is excluded; the index holds no item at all
EmptyReason = Literal["filter_matched_nothing", "all_excluded", "no_items"]


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


@dataclass(frozen=True)
class UserState:
    user_id: str
    profile: dict[str, Any] | None
    events: list[Event]  # oldest first

    @property
    def seen(self) -> list[str]:
        """Items the user interacted with, most recent first, without repeats."""
        return list(dict.fromkeys(e.item_id for e in reversed(self.events)))

    @property
    def rejected(self) -> list[str]:
        """Items of the user's negative events (dislike, hide), most recent first."""
        newest_first = (e.item_id for e in reversed(self.events) if is_negative(e.type))
        return list(dict.fromkeys(newest_first))

    @property
    def history(self) -> list[str]:
        """Item ids of the positive events, oldest first (what a history feature reads)."""
        return [e.item_id for e in self.events if not is_negative(e.type)]


@dataclass(frozen=True)
class Exclusions:
    """Ids that must not come back: the request's own first, then the user's seen items
    (most recent first; without ``exclude_seen`` still the items of negative events). The
    index is given the first `MAX_EXCLUSIONS`; every one of them is
    also dropped from whatever the index or a fallback returns."""

    ordered: tuple[str, ...]
    _ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", frozenset(self.ordered))

    @classmethod
    def of(cls, query: RecommendationQuery, state: UserState) -> Exclusions:
        seen = state.seen if query.exclude_seen else state.rejected
        return cls(tuple(dict.fromkeys([*query.exclude_item_ids, *seen])))

    def for_index(self) -> list[str]:
        return list(self.ordered[:MAX_EXCLUSIONS])

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids

    def __len__(self) -> int:
        return len(self.ordered)


@dataclass(frozen=True)
class Candidate:
    item_id: str
    retrieval_score: float | None
    source: Source


@dataclass(frozen=True)
class Candidates:
    """A request's candidates in retrieval order, as columns (N candidates are not N objects
    on the hot path); iterating gives each as a `Candidate`."""

    ids: list[str]
    scores: list[float] | None  # None: not retrieved by score (popular items)
    source: Source

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Candidate]:
        for n, item_id in enumerate(self.ids):
            yield self.at(n, item_id)

    def at(self, n: int, item_id: str | None = None) -> Candidate:
        score = None if self.scores is None else self.scores[n]
        return Candidate(self.ids[n] if item_id is None else item_id, score, self.source)

    @classmethod
    def kept(
        cls, ids: list[str], scores: list[float], exclusions: Exclusions, limit: int
    ) -> Candidates:
        """The first ``limit`` hits that are not excluded."""
        if not len(exclusions):
            return cls(ids[:limit], scores[:limit], "retrieval")
        keep = [n for n, item_id in enumerate(ids) if item_id not in exclusions][:limit]
        return cls([ids[n] for n in keep], [scores[n] for n in keep], "retrieval")


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    score: float | None
    retrieval_score: float | None
    source: Source


@dataclass(frozen=True)
class Recommendation:
    user_id: str
    items: list[RecommendedItem]
    model_version: str
    collection: str
    ranker: str
    cold_start: bool
    fallback_reason: FallbackReason | None
    timings_ms: dict[str, float]
    empty_reason: EmptyReason | None = None
    # the stored profile overridden by the request's user features: what the answer was
    # computed from besides context and history (the impression log keeps it for training)
    user_features: dict[str, Any] = field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        return self.fallback_reason is not None
