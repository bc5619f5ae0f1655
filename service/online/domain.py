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
    "user_vector_invalid",
    "ranker_failed",
    "ranker_timeout",
]
Source = Literal["retrieval", "popular"]
SourceName = Literal["two_tower", "item_to_item", "trending", "fresh"]
# why an item is in the answer, for a product UI: the source that put it among the candidates
# (`popular`: the fallback when no source answered)
ReasonKind = Literal["for_you", "similar_to", "trending", "fresh", "popular"]
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
    sources: dict[str, float] | None = None  # source -> share of the candidates; None: config
    session_events: list[Event] = field(default_factory=list)  # used, never stored
    diversity: Diversity | None = None
    exploration: int = 0  # slots of the top k sampled by score from below it
    # seeds the exploration draw, so an answer can be reproduced (the API derives it from the
    # request id); None: a fresh draw each time
    exploration_seed: int | None = None


@dataclass(frozen=True)
class Diversity:
    """After the ranker: at most ``max_per_value`` items per value of ``attribute`` in the top
    k, and/or MMR over item vectors (``mmr_weight`` 1 = rank score only, 0 = spread only)."""

    attribute: str | None = None
    max_per_value: int | None = None
    mmr_weight: float | None = None


@dataclass(frozen=True)
class Explanation:
    """Why an item is in the answer: its reason (``similar_to`` names the user's item it is
    near), every source that retrieved it with its score there, and whether it fills an
    exploration slot (sampled from below the top)."""

    reason: ReasonKind
    sources: tuple[str, ...]
    retrieval_scores: dict[str, float | None]
    similar_to: str | None = None
    exploration: bool = False


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
    explanation: Explanation


@dataclass(frozen=True)
class Candidates:
    """A request's candidates in retrieval order, as columns (N candidates are not N objects
    on the hot path); iterating gives each as a `Candidate`."""

    ids: list[str]
    scores: list[float] | None  # None: not retrieved by score (popular items)
    source: Source
    explanations: list[Explanation] | None = None  # None: one source, explained on demand

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Candidate]:
        for n, item_id in enumerate(self.ids):
            yield self.at(n, item_id)

    def at(self, n: int, item_id: str | None = None) -> Candidate:
        score = None if self.scores is None else self.scores[n]
        item_id = self.ids[n] if item_id is None else item_id
        return Candidate(item_id, score, self.source, self._explain(n, score))

    def _explain(self, n: int, score: float | None) -> Explanation:
        if self.explanations is not None:
            return self.explanations[n]
        if self.source == "popular":
            return Explanation("popular", ("popular",), {"popular": None})
        return Explanation("for_you", ("two_tower",), {"two_tower": score})

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
    explanation: Explanation


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
    failed_sources: dict[str, str] = field(default_factory=dict)  # source -> why

    @property
    def degraded(self) -> bool:
        return self.fallback_reason is not None
