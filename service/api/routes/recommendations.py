from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from service.api.admission import admitted
from service.api.auth import require_api_key
from service.api.contract import contract_of
from service.api.deps import current_model, error_responses, feedback, recommender, runtime, shadow
from service.api.request_query import query_of
from service.api.schemas import RecommendationRequest, RecommendationResponse
from service.feedback.loop import FeedbackLoop
from service.feedback.records import DEFAULT_VARIANT
from service.logs import request_id_var
from service.online.ports import ServableModel
from service.online.recommender import Recommender
from service.online.runtime import Runtime
from service.online.shadow import Shadow

router = APIRouter(tags=["recommendations"], dependencies=[Depends(require_api_key)])


@router.post(
    "/v1/recommendations",
    response_model=RecommendationResponse,
    summary="Top-k items for a user: real-time user vector, Milvus retrieval, ranker",
    responses=error_responses(400, 401, 413, 422, 503),
    dependencies=[Depends(admitted)],
)
async def recommend(
    body: RecommendationRequest,
    model: Annotated[ServableModel, Depends(current_model)],
    rec: Annotated[Recommender, Depends(recommender)],
    loop: Annotated[FeedbackLoop, Depends(feedback)],
    rt: Annotated[Runtime, Depends(runtime)],
    shadows: Annotated[Shadow, Depends(shadow)],
) -> Response:
    """The answer is serialized straight from the domain result with orjson: its shape is
    `RecommendationResponse` (the schema in /openapi.json; a test checks every answer against
    it), without validating every item again on the way out. During an experiment the user's
    variant (a stable hash of experiment and user id) picks the model, whose contract the
    request is checked against; `variant` names it."""
    live = rt.experiments.live
    variant, model = live.pick(body.user_id) if live is not None else (DEFAULT_VARIANT, model)
    attribute = body.diversity.attribute if body.diversity else None
    contract_of(model).check_request(body.context, body.user_features, body.filter, attribute)
    request_id = request_id_var.get()
    query = query_of(body, request_id)
    result = await rec.recommend(model, query)
    loop.record(request_id, query, result, variant)
    if live is not None and live.shadow is not None:
        shadows.submit(*live.shadow, query, [item.item_id for item in result.items])
    answer = {
        "request_id": request_id,
        "user_id": result.user_id,
        "items": [vars(item) for item in result.items],
        "model_version": result.model_version,
        "collection": result.collection,
        "ranker": result.ranker,
        "cold_start": result.cold_start,
        "degraded": result.degraded,
        "fallback_reason": result.fallback_reason,
        "empty_reason": result.empty_reason,
        "failed_sources": result.failed_sources,
        "timings_ms": result.timings_ms,
        "variant": variant,
    }
    return Response(orjson.dumps(answer), media_type="application/json")
