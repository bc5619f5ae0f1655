"""The ``recsys`` command line. Training commands import TensorFlow only when they run."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Recommendation system: data, training, bundles, indexing, serving.", no_args_is_help=True
)
data_app = typer.Typer(help="Data sets.", no_args_is_help=True)
bundle_app = typer.Typer(help="Model bundles.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(bundle_app, name="bundle")
console = Console(stderr=True)


def _need_training() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        import tensorflow  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as exc:
        console.print(f"[red]training needs the 'train' extra: pip install -e '.[train]' ({exc})")
        raise typer.Exit(2) from None


@data_app.command("synth")
def data_synth(
    out: Annotated[
        Path, typer.Option(help="Folder for users/items/interactions parquet files.")
    ] = Path("data/posts"),
    users: Annotated[int, typer.Option(min=10)] = 3000,
    items: Annotated[int, typer.Option(min=10)] = 1500,
    topics: Annotated[int, typer.Option(min=2)] = 20,
    impressions_per_user: Annotated[int, typer.Option(min=2)] = 40,
    seed: int = 7,
) -> None:
    """Generate the synthetic `posts` data set (seed-003 schema, with latent structure)."""
    from training.datasets.posts import SynthConfig, write

    cfg = SynthConfig(
        users=users,
        items=items,
        topics=topics,
        impressions_per_user=impressions_per_user,
        seed=seed,
    )
    counts = write(cfg, out)
    console.print(f"wrote {out}: {counts}")


@app.command("train")
def train(
    dataset: Annotated[
        str, typer.Option(help="Data set config name (posts, movielens-100k) or a .toml path.")
    ] = "posts",
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with the data files (default: the config's).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder that receives bundles/<version>/.")] = Path(
        "bundles"
    ),
    config: Annotated[Path | None, typer.Option(help="TOML file of training settings.")] = None,
    ranker: Annotated[str | None, typer.Option(help="Ranker to serve: lr, fm, deepfm.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Train DSSM towers and a ranker, evaluate them, export ONNX and write a bundle."""
    _need_training()
    from training.config import TrainConfig
    from training.datasets import DatasetError
    from training.pipeline import train_bundle

    overrides: dict = {}
    if ranker:
        overrides["ranker"] = {"name": ranker}
    if seed is not None:
        overrides["seed"] = seed
    cfg = TrainConfig.from_toml(config) if config else TrainConfig()
    cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides}) if overrides else cfg
    try:
        path = train_bundle(dataset, data_dir, out, cfg, report=console.print)
    except DatasetError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    typer.echo(path)


@bundle_app.command("inspect")
def bundle_inspect(path: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Verify a bundle (hashes, ONNX sessions, smoke inference) and show its manifest."""
    from service.bundle import BundleError, load_bundle

    try:
        bundle = load_bundle(path)
    except BundleError as exc:
        console.print(f"[red]invalid bundle: {exc}")
        raise typer.Exit(1) from None
    manifest = bundle.manifest
    parity = json.loads((path / "parity.json").read_text())
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
        role = name.removesuffix(".onnx")
        diff = parity.get(role, {}).get("max_abs_diff")
        table.add_row(name, digest[:16] + "…", "" if diff is None else f"{diff:.2e}")
    out.print(table)
    out.print_json(json.dumps(manifest.metrics))
    out.print("[green]verified: hashes match, sessions load, smoke inference passed")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app()
