"""Ids in URL paths: any id the id rule allows, `/` included, sent percent-encoded.

Starlette routes on the decoded path, where `/v1/items/sku%2F123` would be three segments
and match no route. When the raw path holds an encoded slash, `EncodedSlashes` gives the
router the path decoded segment by segment, each slash inside a segment standing in as
`ENCODED_SLASH` (a lone surrogate, which no decoded URL can contain); `user_id_in_path` and
`item_id_in_path` put the slash back and apply the id rule (a 422 naming the field).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from fastapi import Path
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import ApiError
from service.validation import ID_PATTERN, ID_RULE, MAX_ID_LENGTH, InvalidInput, check_id

ENCODED_SLASH = "\udcaf"
_DESCRIPTION = f"{ID_RULE}; percent-encoded in the path (`/` as `%2F`, a space as `%20`)"


class EncodedSlashes:
    """Pure-ASGI: route paths whose segments hold `%2F` by segment (see the module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") or b""
        if scope["type"] == "http" and b"%2f" in raw.lower():
            scope = dict(scope, path=route_path(raw))
        await self.app(scope, receive, send)


def route_path(raw: bytes) -> str:
    segments = raw.split(b"?", 1)[0].split(b"/")
    return "/".join(
        unquote_to_bytes(s).decode("utf-8", "replace").replace("/", ENCODED_SLASH) for s in segments
    )


def path_id(value: str, field: str) -> str:
    try:
        return check_id(value.replace(ENCODED_SLASH, "/"), field)
    except InvalidInput as exc:
        raise ApiError(422, str(exc), field) from None


def _path_id() -> Any:
    """The OpenAPI of a path id; documented, not enforced by pydantic (its length check
    cannot read `ENCODED_SLASH`): `path_id` enforces the rule."""
    return Path(
        description=_DESCRIPTION,
        json_schema_extra={"minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": ID_PATTERN},
    )


def user_id_in_path(user_id: Annotated[str, _path_id()]) -> str:
    return path_id(user_id, "user_id")


def item_id_in_path(item_id: Annotated[str, _path_id()]) -> str:
    return path_id(item_id, "item_id")
