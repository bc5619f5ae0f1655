"""`recsys rollout`: ask a running API to swap to another bundle (`POST /v1/admin/reload`).

The last step of train -> index -> reload. The API loads, verifies and warms the bundle,
checks its collection, then swaps; other serving processes follow through the store. Uses the
standard library's HTTP client, so it runs in the API image and the demo's install alike.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Annotated

import typer

from service.api.auth import HEADER
from service.cli.common import fail
from service.settings import get_settings

RELOAD_ROUTE = "/v1/admin/reload"


def reload_request(
    base_url: str, bundle: str, api_key: str | None, force: bool = False
) -> urllib.request.Request:
    """The reload call: a JSON body (the route refuses any other content type) and the key."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    if api_key:
        headers[HEADER] = api_key
    return urllib.request.Request(
        base_url.rstrip("/") + RELOAD_ROUTE,
        data=json.dumps({"bundle": bundle, "force": force}).encode(),
        headers=headers,
        method="POST",
    )


def rollout(
    bundle: Annotated[
        str, typer.Argument(help="Bundle folder as the API process sees it (its working dir).")
    ],
    url: Annotated[
        str | None,
        typer.Option(help="API base URL (default: http://127.0.0.1:RECSYS_PORT)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="Admin key (default: the first of RECSYS_ADMIN_API_KEYS, if any)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the swap (load, verify, warm).")
    ] = 120.0,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Serve it even if the rollout gate refuses (the answer says forced)."
        ),
    ] = False,
) -> None:
    """Swap the running API to BUNDLE (index its collection first) and print its answer."""
    settings = get_settings()
    base_url = url or f"http://127.0.0.1:{settings.port}"
    key = api_key or next(iter(settings.admin_api_keys), None)
    request = reload_request(base_url, bundle, key, force)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            typer.echo(json.dumps(json.load(answer), indent=2))
    except urllib.error.HTTPError as exc:
        fail(f"rollout refused ({exc.code}): {_error_message(exc)}")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        fail(f"cannot reach the API at {base_url}: {getattr(exc, 'reason', exc)}")


def _error_message(exc: urllib.error.HTTPError) -> str:
    body = exc.read().decode(errors="replace")
    try:
        return json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body[:500] or str(exc.reason)


def register(app: typer.Typer) -> None:
    app.command("rollout")(rollout)
