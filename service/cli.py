"""The ``recsys`` command line. Training commands import TensorFlow only when they run."""

from __future__ import annotations

import dataclasses
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
index_app = typer.Typer(help="Index a bundle's items into the vector index.")
lite_app = typer.Typer(help="Milvus Lite helpers.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(bundle_app, name="bundle")
app.add_typer(index_app, name="index")
app.add_typer(lite_app, name="milvus-lite")
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


UriOption = Annotated[
    str | None,
    typer.Option("--uri", help="Milvus URI (default: RECSYS_MILVUS_URI or ./data/milvus.db)."),
]


def _load(bundle: Path):
    from service.bundle import BundleError, load_bundle

    try:
        return load_bundle(bundle)
    except BundleError as exc:
        console.print(f"[red]invalid bundle: {exc}")
        raise typer.Exit(1) from None


def _open_index(uri: str | None):
    from service.index import open_index
    from service.settings import get_settings

    settings = get_settings()
    uri = uri or settings.milvus_uri
    if uri == "memory://":
        return open_index(uri)
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    return open_index(
        uri,
        token=settings.milvus_token,
        timeout_s=settings.milvus_timeout_s,
        index=settings.milvus_index,
    )


@index_app.callback(invoke_without_command=True)
def index_items(
    ctx: typer.Context,
    bundle: Annotated[
        Path | None, typer.Option(help="Bundle folder whose item tower embeds.")
    ] = None,
    items: Annotated[
        Path | None, typer.Option(help="Items file: .parquet, .csv or .jsonl.")
    ] = None,
    uri: UriOption = None,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per batch.")] = 2048,
    shard: Annotated[
        str, typer.Option(help="i/N: index only shard i of N (stable by item id).")
    ] = "0/1",
    on_bad_rows: Annotated[
        str, typer.Option(help="fail: stop at the first bad row; skip: report and skip.")
    ] = "fail",
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint folder (resume after a crash).")
    ] = None,
) -> None:
    """Embed items with the bundle's item tower and upsert them into its collection."""
    if ctx.invoked_subcommand is not None:
        return
    if bundle is None or items is None:
        console.print("[red]--bundle and --items are required (or use a subcommand: status)")
        raise typer.Exit(2)
    try:
        i, n = (int(x) for x in shard.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        console.print(f"[red]--shard must be i/N with 0 <= i < N, not {shard!r}")
        raise typer.Exit(2) from None
    if on_bad_rows not in ("fail", "skip"):
        console.print("[red]--on-bad-rows must be fail or skip")
        raise typer.Exit(2)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from service.index import VectorIndexError
    from service.indexing import IndexJobError, ReaderError, run_index_job
    from service.settings import get_settings

    loaded = _load(bundle)
    index = _open_index(uri)
    columns = (
        TextColumn("indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} items/s"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("index", total=None, rate="-")

            def advance(rows: int) -> None:
                bar.advance(task, rows)
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, rate=f"{bar.tasks[0].completed / elapsed:,.0f}")

            report = run_index_job(
                loaded,
                index,
                items,
                checkpoint_dir or get_settings().index_checkpoint_dir,
                batch_size=batch,
                shard=i,
                shards=n,
                on_bad_rows=on_bad_rows,
                progress=advance,
            )
    except (IndexJobError, ReaderError, VectorIndexError) as exc:
        console.print(f"[red]indexing failed: {exc}")
        raise typer.Exit(1) from None
    finally:
        index.close()
    if report.bad_rows:
        console.print(f"[yellow]{report.bad_rows} bad rows skipped, e.g.: {report.bad_examples}")
    if report.resumed_batches:
        console.print(f"resumed after {report.resumed_batches} committed batches")
    rate = report.indexed / max(report.embed_seconds + report.upsert_seconds, 1e-9)
    console.print(
        f"{report.collection}: {report.indexed} upserted ({report.rows_read} rows read), "
        f"{report.final_count} in the collection; embed {report.embed_seconds:.1f}s, "
        f"upsert {report.upsert_seconds:.1f}s ({rate:,.0f} items/s)"
    )


@index_app.command("status")
def index_status(
    bundle: Annotated[Path, typer.Option(help="Bundle folder.")],
    uri: UriOption = None,
) -> None:
    """Show the bundle's collection: name, count, index type, metric."""
    from service.bundle import read_manifest
    from service.index import VectorIndexError

    manifest = read_manifest(bundle)
    index = _open_index(uri)
    try:
        described = index.describe(manifest.version)
        described["fields"] = [dataclasses.asdict(f) for f in described.get("fields", [])]
        typer.echo(json.dumps(described, indent=2, default=str))
    except VectorIndexError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    finally:
        index.close()


@lite_app.command("serve")
def lite_serve(
    db: Annotated[Path, typer.Option(help="Milvus Lite database file.")] = Path("data/milvus.db"),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 19530,
    host: str = "127.0.0.1",
) -> None:
    """Serve one Milvus Lite file over gRPC so several local processes can share it."""
    from service.index.lite_server import LiteServerError, serve

    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        serve(db, port=port, host=host)
    except LiteServerError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app()
