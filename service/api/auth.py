"""API keys in ``X-API-Key``: any configured key for the API, an admin key for admin routes.

Keys are compared in constant time. With no key configured at all, auth is off (and the app
says so at start); admin routes then stay open too, otherwise they need an admin key. With
``admin_loopback_only`` admin routes also refuse any client that is not on loopback: behind a
published container port the host's requests arrive from the bridge's address.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

from service.api.errors import ApiError

HEADER = "X-API-Key"


def _matches(given: str, keys: list[str]) -> bool:
    found = False
    for key in keys:  # no early exit: the time does not depend on which key matched
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def _on_loopback(request: Request) -> bool:
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:  # not an IP address (a test client's name)
        return False


def _check(request: Request, admin: bool) -> None:
    settings = request.app.state.settings
    if admin and settings.admin_loopback_only and not _on_loopback(request):
        raise ApiError(
            403, "admin routes answer loopback clients only here (RECSYS_ADMIN_LOOPBACK_ONLY)"
        )
    if not (settings.api_keys or settings.admin_api_keys):
        return
    given = request.headers.get(HEADER)
    if not given:
        raise ApiError(401, f"missing {HEADER} header", HEADER)
    if admin and not _matches(given, settings.admin_api_keys):
        raise ApiError(403, "this route needs an admin key", HEADER)
    if not _matches(given, [*settings.api_keys, *settings.admin_api_keys]):
        raise ApiError(401, f"invalid {HEADER}", HEADER)


async def require_api_key(request: Request) -> None:
    """``async`` so FastAPI runs it on the loop, not in a worker thread (it never blocks)."""
    _check(request, admin=False)


async def require_admin_key(request: Request) -> None:
    _check(request, admin=True)
