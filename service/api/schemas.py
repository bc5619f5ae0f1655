"""Request and response bodies of the REST API, with bounds and OpenAPI examples."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from service.index.port import MAX_LIMIT
from service.online.experiment import NAME as EXPERIMENT_NAME
from service.validation import (
    BUNDLE_PATH_PATTERN,
    BUNDLE_PATH_RULE,
    FEATURE_NAME_PATTERN,
    ID_PATTERN,
    MAX_EVENT_TS,
    MAX_LIST_VALUES,
    check_bundle_text,
    check_raw_scalar,
    check_raw_value,
    raw_value_schema,
)

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
# Raw values follow service.validation (numbers past int64 or float32, lone surrogates, nested
# lists are refused here, so no store, encoder or index ever meets them); one validator per
# value keeps the 422's field a plain path (``features.age``).
Scalar = Annotated[Any, AfterValidator(check_raw_scalar), WithJsonSchema(raw_value_schema(True))]
FeatureValue = Annotated[Any, AfterValidator(check_raw_value), WithJsonSchema(raw_value_schema())]
FeatureName = Annotated[str, StringConstraints(pattern=FEATURE_NAME_PATTERN)]
Features = Annotated[dict[FeatureName, FeatureValue], Field(max_length=64)]
MAX_K, MAX_CANDIDATES, MAX_EXCLUSIONS, MAX_BATCH = 200, MAX_LIMIT, 1000, 1000
MAX_SESSION_EVENTS = 100
SourceName = Literal["two_tower", "item_to_item", "trending", "fresh"]


BundlePath = Annotated[
    str,
    StringConstraints(max_length=4096),
    AfterValidator(check_bundle_text),
    WithJsonSchema(
        {"type": "string", "pattern": BUNDLE_PATH_PATTERN, "maxLength": 4096},
        mode="validation",
    ),
    Field(description=BUNDLE_PATH_RULE),
]
VariantName = Annotated[str, StringConstraints(pattern=EXPERIMENT_NAME.pattern)]


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer includes 48.0; strict pydantic would refuse it (and a bool)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole_number)]


class Strict(BaseModel):
    """Request bodies: no unknown field, no coercion (`false` is not the integer 0)."""

    model_config = ConfigDict(extra="forbid", strict=True)


Filter = Annotated[
    dict[FeatureName, Annotated[list[Scalar], Field(max_length=MAX_LIST_VALUES)]],
    Field(max_length=16),
]


class EventIn(Strict):
    item_id: Id
    type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] = "read"
    ts: float | None = Field(
        None, ge=0, le=MAX_EVENT_TS, allow_inf_nan=False, description="Unix seconds; default: now."
    )
    weight: float | None = Field(
        None,
        ge=0,
        le=1000,
        allow_inf_nan=False,
        description="Default by type: read 1, click 1, like 2, purchase 5, any other 1; "
        "dislike and hide (negatives: the item stays out of later answers) always 0.",
    )
    request_id: Id | None = Field(
        None,
        description="The recommendation this event answers (its `request_id`); without it, "
        "the latest answer that showed the item to this user within "
        "RECSYS_ATTRIBUTION_WINDOW_S.",
    )


class DiversityIn(Strict):
    attribute: FeatureName | None = Field(
        None, description="Item attribute (a filterable field) whose values are capped."
    )
    max_per_value: Annotated[int, Field(ge=1, le=MAX_K), BeforeValidator(_whole_number)] | None = (
        Field(
            None,
            description="At most this many items per attribute value in top k (needs `attribute`; "
            "default 1 when `attribute` is given).",
        )
    )
    mmr_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="MMR over item vectors: 1 = rank score only, 0 = spread only.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"max_per_value": {"type": "null"}}},
                {"required": ["attribute"], "properties": {"attribute": {"type": "string"}}},
            ]
        }
    )

    @model_validator(mode="after")
    def _cap_names_attribute(self) -> DiversityIn:
        if self.max_per_value is not None and self.attribute is None:
            raise ValueError("max_per_value needs an attribute")
        if self.attribute is not None and self.max_per_value is None:
            self.max_per_value = 1
        return self


class RecommendationRequest(Strict):
    user_id: Id
    k: Whole = Field(20, ge=1, le=MAX_K, description="Items to return.")
    candidates: Whole = Field(
        200,
        ge=1,
        le=MAX_CANDIDATES,
        description="Candidates retrieved and ranked (raised to k when smaller).",
    )
    context: Features = Field(default_factory=dict, description="Context features.")
    user_features: Features = Field(
        default_factory=dict, description="User features that override the stored profile."
    )
    exclude_item_ids: list[Id] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)
    exclude_seen: bool = Field(True, description="Leave out items of the user's recent events.")
    filter: Filter = Field(
        default_factory=dict,
        description="Filterable item field -> accepted values (fields are ANDed).",
    )
    sources: (
        Annotated[dict[SourceName, Annotated[float, Field(gt=0, le=1)]], Field(min_length=1)] | None
    ) = Field(
        None,
        description="Candidate source -> share of the candidates (default: RECSYS_SOURCES).",
    )
    session_events: list[EventIn] = Field(
        default_factory=list,
        max_length=MAX_SESSION_EVENTS,
        description="Recent events not posted yet: read as the newest history (user vector, "
        "item_to_item, exclusions), never stored.",
    )
    diversity: DiversityIn | None = Field(None, description="Diversity of the top k.")
    exploration: Whole = Field(
        0, ge=0, le=MAX_K, description="Slots of the top k sampled by score from below it."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u42",
                    "k": 10,
                    "context": {"client_type": "ios"},
                    "exclude_item_ids": ["p7"],
                    "filter": {"topic_id": ["t3", "t5"]},
                }
            ]
        },
    )


class ExplanationOut(BaseModel):
    reason: str = Field(
        description="for_you (two_tower) | similar_to (item_to_item; see similar_to) | "
        "trending | fresh | popular (fallback): the source that put the item in the candidates"
    )
    sources: list[str] = Field(description="Every source that retrieved the item.")
    retrieval_scores: dict[str, float | None] = Field(
        description="The item's score in each of those sources: cosine for two_tower and "
        "item_to_item, decayed event weight for trending, newness 1 / (1 + r) for the r-th "
        "newest catalog item for fresh, none (null) for popular."
    )
    similar_to: str | None = Field(
        None, description="The user's item it is nearest to (when item_to_item found it)."
    )
    exploration: bool = Field(False, description="Fills an exploration slot.")


class RecommendedItemOut(BaseModel):
    item_id: str
    score: float | None = Field(description="Ranker probability (retrieval score if degraded).")
    retrieval_score: float | None = Field(
        description="Score in the source that put it in the candidates (cosine from vector "
        "search for two_tower)."
    )
    source: str = Field(description="retrieval | popular")
    explanation: ExplanationOut


class RecommendationResponse(BaseModel):
    request_id: str
    user_id: str
    items: list[RecommendedItemOut]
    model_version: str
    collection: str
    ranker: str
    cold_start: bool = Field(description="Unknown user: context/profile-only user vector.")
    degraded: bool
    fallback_reason: str | None = Field(
        description="store_unavailable | profile_unencodable | index_unavailable | "
        "index_timeout | user_vector_invalid (the user features gave no usable vector, e.g. "
        "weights summing to 0) | ranker_failed | ranker_timeout"
    )
    empty_reason: str | None = Field(
        None,
        description="Set only when `items` is empty: filter_matched_nothing (no item passes "
        "the filter and the exclusions) | all_excluded (every indexed item is excluded) | "
        "no_items (the index holds no item)",
    )
    failed_sources: dict[str, str] = Field(
        default_factory=dict,
        description="Candidate sources that failed -> timeout | unavailable (the others filled "
        "their quota).",
    )
    timings_ms: dict[str, float]
    variant: str = Field(
        "default",
        description="The experiment variant that served this answer (`default` outside any "
        "experiment); the impression log records it.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "3f2a9c0e8b7d4e51",
                    "user_id": "u42",
                    "items": [
                        {
                            "item_id": "p9",
                            "score": 0.81,
                            "retrieval_score": 0.62,
                            "source": "retrieval",
                            "explanation": {
                                "reason": "similar_to",
                                "sources": ["item_to_item", "two_tower"],
                                "retrieval_scores": {"item_to_item": 0.71, "two_tower": 0.62},
                                "similar_to": "p7",
                                "exploration": False,
                            },
                        }
                    ],
                    "model_version": "posts_20261125133443_f37b7885",
                    "collection": "items_posts_20261125133443_f37b7885",
                    "ranker": "deepfm",
                    "cold_start": False,
                    "degraded": False,
                    "fallback_reason": None,
                    "empty_reason": None,
                    "failed_sources": {},
                    "timings_ms": {
                        "user_state": 0.3,
                        "user_tower": 0.2,
                        "search": 6.1,
                        "gather": 0.2,
                        "rank": 1.9,
                        "total": 9.4,
                    },
                }
            ]
        }
    )


class SimilarItemOut(BaseModel):
    item_id: str
    score: float = Field(description="Cosine similarity of the two item vectors.")


class SimilarItemsResponse(BaseModel):
    item_id: str
    items: list[SimilarItemOut]
    model_version: str


class EventsRequest(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"events": [{"item_id": "p7", "type": "read"}]}]},
    )


class EventsAccepted(BaseModel):
    user_id: str
    accepted: int
    attributed: int = Field(0, description="Events attributed to an answer that showed them.")
    unknown_item_ids: list[str] = Field(
        default_factory=list,
        description="Items of these events the catalog does not hold (yet): the events are "
        "stored, but the user tower reads an unknown item for them.",
    )


class ProfileRequest(Strict):
    features: Features

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"features": {"follow_topic_id": ["t3"], "client_type": "ios"}}]
        },
    )


class Profile(BaseModel):
    user_id: str
    features: dict[str, Any]


class ItemIn(Strict):
    item_id: Id
    features: Features = Field(
        default_factory=dict, description="The item's features, as the model's schema names them."
    )


class ItemsRequest(Strict):
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_BATCH)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"items": [{"item_id": "p9001", "features": {"topic_id": "t3"}}]}]
        },
    )


class ItemsAccepted(BaseModel):
    accepted: int
    seq: int = Field(description="Change sequence number of the last accepted item.")


class ItemStatusOut(BaseModel):
    item_id: str
    state: str = Field(
        description="queued | indexed | deleted | failed (the index refused the latest change "
        "RECSYS_INDEX_MAX_ATTEMPTS times; `error` says why; fix the row with a new PUT, or "
        "`recsys index retry`)"
    )
    seq: int
    indexed_version: str | None
    updated_at: float
    error: str | None = Field(None, description="Why the index refused the latest change.")
    attempts: int = Field(0, description="Refused attempts of the latest change.")
    deleted: bool = Field(
        False, description="The latest change removes the item (queued, or done once indexed)."
    )


class ModelOut(BaseModel):
    version: str
    collection: str
    ranker: str
    dataset: str
    path: str = Field(
        description="The bundle folder relative to the bundles root (what a reload takes), "
        "never an absolute path."
    )
    loaded_at: float
    indexed_items_at_load: int
    catalog_items: int
    metrics: dict[str, Any]
    last_reload_error: str | None
    online: list[OnlineStatsOut] = Field(
        default_factory=list,
        description="Impressions, attributed positives and CTR of this version per variant "
        "since this process started.",
    )


class OnlineStatsOut(BaseModel):
    model_version: str
    variant: str
    impressions: int = Field(description="Answers logged since this process started.")
    items_shown: int
    positives: int = Field(description="Shown items with an attributed positive event.")
    negatives: int = Field(description="Attributed negative events (dislike, hide).")
    ctr: float | None = Field(description="positives / items_shown (None before any answer).")
    mean_click_position: float | None = Field(description="Mean position (1 = first).")


class VariantOut(BaseModel):
    name: str
    weight: float
    model_version: str
    online: list[OnlineStatsOut]


class ShadowOut(BaseModel):
    name: str
    model_version: str
    runs: int = Field(description="Shadow answers computed since this process started.")
    skipped: int = Field(description="Requests that got no shadow (too many in flight).")
    failed: int
    mean_latency_ms: float | None
    mean_overlap_at_k: float | None = Field(description="Mean |served top k ∩ shadow top k| / k.")


class ExperimentsOut(BaseModel):
    since: float = Field(description="When this process started counting (unix seconds).")
    variants: list[VariantOut]
    name: str | None = Field(None, description="The running experiment (None: no experiment).")
    shadow: ShadowOut | None = None
    last_error: str | None = Field(
        None, description="Why this process could not follow the stored experiment, if so."
    )


class VariantIn(Strict):
    name: VariantName
    bundle: BundlePath = Field(description="Bundle folder inside RECSYS_BUNDLES_ROOT.")
    weight: float = Field(ge=0, description="Relative share of traffic (normalized).")


class ShadowIn(Strict):
    name: VariantName
    bundle: BundlePath = Field(description="Bundle folder inside RECSYS_BUNDLES_ROOT.")


class ExperimentIn(Strict):
    name: VariantName = Field(
        description="Part of the assignment hash: a new name reshuffles users."
    )
    variants: list[VariantIn] = Field(
        min_length=1, max_length=8, description="The first is the control."
    )
    shadow: ShadowIn | None = Field(
        None, description="Computed beside the served answer, never returned."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "ranker-v2",
                    "variants": [
                        {"name": "control", "bundle": "posts_a", "weight": 0.5},
                        {"name": "candidate", "bundle": "posts_b", "weight": 0.5},
                    ],
                }
            ]
        },
    )


class GateOut(BaseModel):
    decision: Literal["passed", "refused", "forced", "off"]
    reason: str
    candidate: dict[str, float] = Field(description="The new bundle's figures.")
    baseline: dict[str, float] = Field(description="The serving bundle's, on the same data.")
    margins: dict[str, float] = Field(description="How much lower each figure may be.")
    baseline_version: str | None = Field(description="The bundle the figures were scored against.")


class ReloadOut(ModelOut):
    gate: GateOut


class ReloadRequest(Strict):
    bundle: BundlePath = Field(description="Bundle folder to serve, inside the bundles root.")
    force: bool = Field(
        False, description="Serve it even if the rollout gate refuses (the answer says forced)."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"bundle": "bundles/posts_20261125133443_f37b7885"}]},
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str
