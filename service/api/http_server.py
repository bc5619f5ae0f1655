"""How uvicorn serves the app, beyond its defaults: bounds on slow clients and on shutdown.

- Headers: uvicorn arms no timer while a request's headers arrive (its keep-alive timer only
  runs between requests, and any byte cancels it), so a client that sends half a header holds
  its connection forever. `HeaderDeadlineProtocol` closes a connection whose next request's
  headers are not complete ``RECSYS_HEADER_TIMEOUT_S`` after it opened or after its last
  answer.
- Bodies: `service.api.middleware` gives the whole body ``RECSYS_BODY_TIMEOUT_S`` (a 408).
- Shutdown: uvicorn drains requests in flight for at most ``RECSYS_SHUTDOWN_TIMEOUT_S``, then
  cancels what is left.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.settings import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's headers.

    uvicorn builds the protocol from a class, so the deadline is a class attribute: the app
    factory sets it (it runs in every worker process, `configure`)."""

    timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        waiting = bool(self.pipeline)  # a pipelined request has its headers already
        super().on_response_complete()
        if not waiting and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def configure(settings: Settings) -> None:
    HeaderDeadlineProtocol.timeout_s = settings.header_timeout_s


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The `uvicorn.Config` options `recsys serve` (and the tests' live server) use."""
    return {
        "http": HeaderDeadlineProtocol,
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
    }
