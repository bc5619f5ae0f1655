"""What every command shares: the console, failing with a message, and adapters from options
(defaults from the RECSYS_* settings)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from service.bundle import Bundle, BundleError, load_bundle
from service.index import VectorIndex
from service.settings import get_settings
from service.state import StateStore, StoreError
from service.wiring import index_from_settings, store_from_settings

console = Console(stderr=True)

UriOption = Annotated[
    str | None,
    typer.Option("--uri", help="Milvus URI (default: RECSYS_MILVUS_URI or ./data/milvus.db)."),
]
StoreOption = Annotated[
    str | None, typer.Option(help="State store URI (default: RECSYS_STORE_URI).")
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` in red on stderr (no markup: it may hold brackets) and exit."""
    console.print(message, style="red", markup=False, highlight=False)
    raise typer.Exit(code)


def bundle_or_exit(path: Path) -> Bundle:
    try:
        return load_bundle(path)
    except BundleError as exc:
        fail(f"invalid bundle: {exc}")


def index_from(uri: str | None) -> VectorIndex:
    return index_from_settings(get_settings(), uri)


def store_from(uri: str | None) -> StateStore:
    try:
        return store_from_settings(get_settings(), uri)
    except (StoreError, ValueError) as exc:
        fail(f"state store: {exc}")


def port_problem(host: str, port: int) -> str | None:
    """Why nothing could listen on ``host:port`` now (in use, not an address of this machine),
    or None. Checked before a command starts work, so a busy port fails fast instead of after
    loading a model; ``SO_REUSEADDR`` as uvicorn and Milvus Lite bind, so a socket in TIME_WAIT
    does not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"{host}:{port} cannot be listened on ({exc.strerror or exc})"
    return None
