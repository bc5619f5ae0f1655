"""`recsys milvus-lite serve`: share one Milvus Lite file between local processes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import fail
from service.index.lite_server import LiteServerError, serve

lite_app = typer.Typer(help="Milvus Lite helpers.", no_args_is_help=True)


@lite_app.command("serve")
def lite_serve(
    db: Annotated[Path, typer.Option(help="Milvus Lite database file.")] = Path("data/milvus.db"),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 19530,
    host: str = "127.0.0.1",
) -> None:
    """Serve one Milvus Lite file over gRPC so several local processes can share it."""
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        serve(db, port=port, host=host)
    except LiteServerError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.add_typer(lite_app, name="milvus-lite")
