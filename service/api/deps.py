"""What routes take from the app: the runtime, the current model, the recommender.

Dependencies are ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in
a worker thread, a thread hop per dependency and request for a dictionary lookup."""

from __future__ import annotations

from fastapi import Request

from service.api.errors import CODES, ApiError
from service.api.schemas import ErrorResponse
from service.feedback.loop import FeedbackLoop
from service.online.ports import ServableModel
from service.online.recommender import Recommender
from service.online.runtime import Runtime
from service.online.shadow import Shadow


async def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def recommender(request: Request) -> Recommender:
    return request.app.state.recommender


async def feedback(request: Request) -> FeedbackLoop:
    return request.app.state.feedback


async def shadow(request: Request) -> Shadow:
    return request.app.state.shadow


async def current_model(request: Request) -> ServableModel:
    """The model this request is served with, from start to end (a reload swaps the runtime's
    reference, never this one)."""
    model = request.app.state.runtime.model
    if model is None:
        raise ApiError(503, "no model loaded yet")
    return model


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI entries for the error shape of the given statuses."""
    return {status: {"model": ErrorResponse, "description": CODES[status]} for status in statuses}
