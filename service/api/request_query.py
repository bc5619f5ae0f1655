"""A recommendation request body as the pipeline's query."""

from __future__ import annotations

import time

from service.api.schemas import RecommendationRequest
from service.feedback.events import weight_of
from service.online.domain import Diversity, RecommendationQuery
from service.state import Event


def query_of(body: RecommendationRequest) -> RecommendationQuery:
    """Session events without a time get the request's time (in their order)."""
    now = time.time()
    values = body.model_dump(exclude={"session_events", "diversity"})
    session = [
        Event(e.item_id, e.type, e.ts if e.ts is not None else now, weight_of(e.type, e.weight))
        for e in body.session_events
    ]
    diversity = Diversity(**body.diversity.model_dump()) if body.diversity else None
    return RecommendationQuery(**values, session_events=session, diversity=diversity)
