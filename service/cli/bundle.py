"""`recsys bundle inspect`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.bundle.manifest import PARITY_FILE
from service.cli.common import bundle_or_exit

bundle_app = typer.Typer(help="Model bundles.", no_args_is_help=True)


@bundle_app.command("inspect")
def bundle_inspect(path: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Verify a bundle (hashes, ONNX sessions, smoke inference) and show its manifest."""
    manifest = bundle_or_exit(path).manifest
    parity = json.loads((path / PARITY_FILE).read_text())
    if as_json:
        typer.echo(
            json.dumps({"manifest": json.loads(manifest.to_json()), "parity": parity}, indent=2)
        )
        return
    out = Console()
    out.print(f"[bold]{manifest.version}[/] ({manifest.dataset}, created {manifest.created_at})")
    out.print(
        f"schema {manifest.schema_fingerprint[:16]}…, embedding dim {manifest.embedding_dim}, "
        f"opset {manifest.opset}, ranker {manifest.ranker}"
    )
    table = Table("file", "sha256", "parity max abs diff")
    for name, digest in manifest.files.items():
        diff = parity.get(name.removesuffix(".onnx"), {}).get("max_abs_diff")
        table.add_row(name, digest[:16] + "…", "" if diff is None else f"{diff:.2e}")
    out.print(table)
    out.print_json(json.dumps(manifest.metrics))
    out.print("[green]verified: hashes match, sessions load, smoke inference passed")


def register(app: typer.Typer) -> None:
    app.add_typer(bundle_app, name="bundle")
