"""`recsys serve`: the REST API under uvicorn."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from service.api.http_server import uvicorn_options
from service.cli.common import fail, port_problem
from service.settings import Settings
from service.wiring import is_lite_file


def serve(
    bundle: Annotated[
        Path | None, typer.Option(help="Bundle to serve (default: RECSYS_BUNDLE).")
    ] = None,
    milvus_uri: Annotated[
        str | None, typer.Option(help="Vector index URI (default: RECSYS_MILVUS_URI).")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="State store URI (default: RECSYS_STORE_URI).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default: RECSYS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: RECSYS_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (default: RECSYS_WORKERS).")
    ] = None,
) -> None:
    """Serve the REST API (uvicorn). Options override the RECSYS_* settings."""
    overrides = {
        "RECSYS_BUNDLE": bundle,
        "RECSYS_MILVUS_URI": milvus_uri,
        "RECSYS_STORE_URI": store,
        "RECSYS_HOST": host,
        "RECSYS_PORT": port,
        "RECSYS_WORKERS": workers,
    }
    # Worker processes build their app from the environment: pass the options on through it.
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"invalid settings: {exc}", 2)
    if settings.bundle is None:
        fail("no bundle: pass --bundle or set RECSYS_BUNDLE", 2)
    if settings.workers > 1 and is_lite_file(settings.milvus_uri):
        fail(
            f"--workers {settings.workers} cannot share the Milvus Lite file "
            f"{settings.milvus_uri} (one process holds its lock). Serve it first with "
            f"`recsys milvus-lite serve --db {settings.milvus_uri} --port 19530` and pass "
            "--milvus-uri http://127.0.0.1:19530, or use a Milvus server.",
            2,
        )
    busy = port_problem(settings.host, settings.port)
    if busy:
        fail(f"{busy}: is another `recsys serve` or `recsys demo` running? Pick another --port.", 2)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,  # the middleware logs each request, with its id
        **uvicorn_options(settings),
    )


def _exit_cleanly(_signum: int, _frame: object) -> None:
    """After its graceful shutdown a single uvicorn server raises the signal it caught again,
    with the handler it found: the default one would end the process by SIGTERM (exit 143)
    after a clean drain. This one makes it exit 0, as the multi-worker supervisor does."""
    raise SystemExit(0)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
