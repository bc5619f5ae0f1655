"""A recommendation request body as the pipeline's query."""

from __future__ import annotations

import time
import zlib

from service.api.schemas import RecommendationRequest
from service.feedback.events import weight_of
from service.online.domain import Diversity, RecommendationQuery
from service.state import Event


def query_of(body: RecommendationRequest, request_id: str | None = None) -> RecommendationQuery:
    """Session events without a time get the request's time (in their order). The exploration
    draw is seeded by the request id: a retry with the same ``X-Request-ID`` gets the same
    answer, distinct requests get distinct draws."""
    now = time.time()
    values = body.model_dump(exclude={"session_events", "diversity"})
    session = [
        Event(e.item_id, e.type, e.ts if e.ts is not None else now, weight_of(e.type, e.weight))
        for e in body.session_events
    ]
    diversity = Diversity(**body.diversity.model_dump()) if body.diversity else None
    seed = zlib.crc32(request_id.encode()) if request_id is not None else None
    return RecommendationQuery(
        **values, session_events=session, diversity=diversity, exploration_seed=seed
    )
