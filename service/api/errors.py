"""Errors as JSON with one stable shape, never a traceback:
``{"error": {"code", "message", "field"}, "request_id"}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from service.logs import request_id_var
from service.redact import public
from service.state import StoreError
from service.validation import InvalidInput

log = logging.getLogger(__name__)
RETRY_AFTER_S = 1  # a store outage: the client may retry a write after this long

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers
        self.code = code or CODES.get(status, "error")


def _writable(text: str | None) -> str | None:
    """``text`` fit for a client (`service.redact.public`: no credentials, no absolute paths),
    with what UTF-8 cannot hold (a lone surrogate echoed from the input) escaped, so the error
    itself can always be sent."""
    return None if text is None else public(text.encode("utf-8", "backslashreplace").decode())


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error = {"code": code or CODES.get(status, "error"), "message": message, "field": field}
    body = {
        "error": {k: _writable(v) for k, v in error.items()},
        "request_id": request_id_var.get(),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def unexpected_error_response() -> JSONResponse:
    """The 500 of an exception nothing handled (`service.api.middleware` sends it): the
    request id, no detail, and the connection closed after it."""
    return error_response(
        500,
        "internal error; see the service log for this request_id",
        headers={"Connection": "close"},
    )


def _field(loc: tuple) -> str:
    """A pydantic location as the rules in service/validation.py name fields: ``items[0].x``."""
    field = ""
    for part in loc:
        if part in ("body", "query", "path", "header"):
            continue
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    return field or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.field, exc.code, exc.headers)

    @app.exception_handler(InvalidInput)
    async def _invalid_input(_request: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(422, str(exc), exc.field)

    @app.exception_handler(StoreError)
    async def _store_down(_request: Request, exc: StoreError) -> JSONResponse:
        """The store is away or timed out: a 503 the client may retry, not a 500."""
        log.warning("store unavailable: %s", exc)
        return error_response(
            503,
            "the state store is unavailable; retry later",
            code="unavailable",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = _field(tuple(first.get("loc", ())))
        message = first.get("msg", "invalid value").removeprefix("Value error, ")
        if first.get("type") == "json_invalid":
            field, message = "body", "the body is not valid JSON"
        return error_response(422, f"{field}: {message}", field)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(exc.status_code, str(exc.detail), headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the routes of this path answer (Starlette's 405 names one route's only)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)
