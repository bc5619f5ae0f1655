"""One pure-ASGI middleware for every request: request id (accepted from or echoed in
``X-Request-ID``), body size limit and deadline, Prometheus counts and latency by route
template, one JSON access-log line, and the 500 for any unexpected exception.

The 500 is sent here, inside the request's context (so it carries the request id), and not
re-raised: the exception reaching uvicorn would make it drop the keep-alive connection
(a client's pool then sees its next, unrelated request reset). The answer says
``Connection: close`` instead, so the client opens a new connection cleanly."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_response, unexpected_error_response
from service.logs import request_id_var
from service.metrics import Metrics

log = logging.getLogger("service.access")
log_errors = logging.getLogger("service.api.errors")
REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9_\-.:]{1,128}")
_ID_PREFIX = os.urandom(4).hex()  # unique per process; a counter makes each id unique in it
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes, without a uuid4 (an urandom call) per request."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


class BodyTooLarge(HTTPException):
    """Raised while the app reads a body past the limit; FastAPI turns it into our 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyTooSlow(HTTPException):
    """Raised when a body is not complete in time (a stalled upload must not hold the
    connection, or a shutdown, for as long as the client likes); our 408, connection closed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"request body not received within {seconds:g} s", {"Connection": "close"}
        )


class RequestMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, body_timeout_s: float
    ) -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = given if VALID_REQUEST_ID.fullmatch(given) else new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status, status_sent = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        received, body_done = 0, False
        body_deadline = asyncio.get_running_loop().time() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.body_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
                body_done = not message.get("more_body", False)
            return message

        try:
            declared = headers.get(b"content-length", b"0")
            if not declared.isdigit() or int(declared) > self.max_body_bytes:
                response = error_response(
                    413, f"request body larger than {self.max_body_bytes} bytes", "body"
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception as exc:
            if status_sent:
                raise  # the answer is under way: nothing better than uvicorn ending it
            log_errors.error("unhandled error", exc_info=exc)
            await unexpected_error_response()(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(seconds)
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "ms": round(seconds * 1000, 3),
                },
            )
            request_id_var.reset(token)
