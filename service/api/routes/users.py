from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import require_api_key
from service.api.contract import contract_of
from service.api.deps import current_model, error_responses, feedback, recommender, runtime
from service.api.errors import ApiError
from service.api.paths import user_id_in_path
from service.api.schemas import EventsAccepted, EventsRequest, Profile, ProfileRequest
from service.feedback.events import weight_of
from service.feedback.loop import FeedbackLoop
from service.online.ports import ServableModel
from service.online.recommender import Recommender
from service.online.runtime import Runtime
from service.state import Event

router = APIRouter(tags=["users"], dependencies=[Depends(require_api_key)])
UserId = Annotated[str, Depends(user_id_in_path)]


@router.post(
    "/v1/users/{user_id}/events",
    response_model=EventsAccepted,
    summary="Record a user's reads/clicks; the next recommendation uses them",
    responses=error_responses(400, 401, 413, 422, 503),
)
def add_events(
    user_id: UserId,
    body: EventsRequest,
    rt: Annotated[Runtime, Depends(runtime)],
    loop: Annotated[FeedbackLoop, Depends(feedback)],
    rec: Annotated[Recommender, Depends(recommender)],
) -> EventsAccepted:
    """Events for items the served catalog does not hold are stored too (the item may arrive
    later) but named in the answer and counted in ``rec_events_unknown_items_total``. Each is
    attributed to the answer that showed its item (`service.feedback.attribution`)."""
    now = time.time()
    events = [
        Event(e.item_id, e.type, e.ts if e.ts is not None else now, weight_of(e.type, e.weight))
        for e in body.events
    ]
    rt.store.add_events(user_id, events)
    rec.trending.add(events)
    attributed = loop.attribute(user_id, events, [e.request_id for e in body.events])
    unknown = _unknown_items(rt, [e.item_id for e in events])
    if unknown:
        rt.metrics.unknown_item_events.inc(sum(e.item_id in unknown for e in events))
    return EventsAccepted(
        user_id=user_id, accepted=len(events), attributed=attributed, unknown_item_ids=unknown
    )


def _unknown_items(rt: Runtime, item_ids: list[str]) -> list[str]:
    """The ids, in first-seen order, that the served model's catalog does not hold."""
    model = rt.model
    if model is None:
        return []
    return list(dict.fromkeys(i for i in item_ids if i not in model.items))


@router.put(
    "/v1/users/{user_id}",
    response_model=Profile,
    summary="Replace a user's profile features",
    responses=error_responses(400, 401, 413, 422, 503),
)
def put_profile(
    user_id: UserId,
    body: ProfileRequest,
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServableModel, Depends(current_model)],
) -> Profile:
    contract_of(model).check("UserFeatures", body.features, "features")
    model.check_profile(body.features)
    rt.store.put_profile(user_id, body.features)
    return Profile(user_id=user_id, features=body.features)


@router.get(
    "/v1/users/{user_id}",
    response_model=Profile,
    summary="A user's stored profile features",
    responses=error_responses(401, 404, 422, 503),
)
def get_profile(user_id: UserId, rt: Annotated[Runtime, Depends(runtime)]) -> Profile:
    features = rt.store.get_profile(user_id)
    if features is None:
        raise ApiError(404, f"no profile for user {user_id!r}", "user_id")
    return Profile(user_id=user_id, features=features)
