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
users_app = typer.Typer(help="User profiles in the state store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(bundle_app, name="bundle")
app.add_typer(index_app, name="index")
app.add_typer(lite_app, name="milvus-lite")
app.add_typer(users_app, name="users")
console = Console(stderr=True)


def _need_training() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices
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
    link: Annotated[
        str | None,
        typer.Option(help="Also point OUT/LINK (a symlink, e.g. 'current') at the new bundle."),
    ] = None,
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
    if link:
        staging = out / f".{link}.tmp"
        staging.unlink(missing_ok=True)
        staging.symlink_to(path.name)
        os.replace(staging, out / link)  # atomic: readers see the old or the new bundle
    typer.echo(path)


@app.command("compare")
def compare(
    dataset: Annotated[
        str, typer.Option(help="Data set config name (posts, movielens-100k) or a .toml path.")
    ] = "movielens-100k",
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with the data files (default: the config's).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the compare-<data set>.* report.")] = Path(
        "docs"
    ),
    config: Annotated[Path | None, typer.Option(help="TOML file of training settings.")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (split + init).")] = "1,2,3",
    rankers: Annotated[
        str, typer.Option(help="Comma-separated rankers; empty for retrieval only.")
    ] = "lr,fm,deepfm,widedeep,afm,nfm",
    retrieval: Annotated[
        bool, typer.Option(help="Also compare DSSM with BPR and popularity.")
    ] = True,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Cap every model's epochs (a quick smoke run).")
    ] = None,
) -> None:
    """Train every ranker (and DSSM vs BPR vs popularity) on one protocol and several seeds;
    write a Markdown + JSON + PNG report."""
    import shlex
    import sys

    _need_training()
    from training.compare import CompareSettings, with_epoch_cap
    from training.compare import compare as run_compare
    from training.config import TrainConfig
    from training.datasets import DatasetError

    cfg = TrainConfig.from_toml(config) if config else TrainConfig()
    if epochs is not None:
        cfg = with_epoch_cap(cfg, epochs)
    try:
        settings = CompareSettings(
            seeds=tuple(int(s) for s in seeds.split(",") if s.strip()),
            rankers=tuple(r.strip() for r in rankers.split(",") if r.strip()),
            retrieval=retrieval,
        )
    except ValueError:
        console.print(f"[red]--seeds must be comma-separated integers, not {seeds!r}")
        raise typer.Exit(2) from None
    command = "recsys " + shlex.join(sys.argv[1:])
    try:
        paths = run_compare(dataset, data_dir, out, cfg, settings, console.print, command)
    except (DatasetError, ValueError) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    for path in paths:
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
    from service.settings import get_settings
    from service.wiring import index_from_settings

    return index_from_settings(get_settings(), uri)


def _open_store(uri: str | None):
    from service.settings import get_settings
    from service.state import StoreError
    from service.wiring import store_from_settings

    if uri == "none":
        return None
    try:
        return store_from_settings(get_settings(), uri)
    except (StoreError, ValueError) as exc:
        console.print(f"[red]state store: {exc}")
        raise typer.Exit(1) from None


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
    store: Annotated[
        str | None,
        typer.Option(
            help="State store that receives the item catalog (default: RECSYS_STORE_URI); "
            "'none' indexes vectors only."
        ),
    ] = None,
) -> None:
    """Embed items with the bundle's item tower, upsert them into its collection and record
    them in the service's item catalog."""
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
    from service.state import StoreError

    loaded = _load(bundle)
    catalog = _open_store(store)
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
                catalog=catalog,
            )
    except (IndexJobError, ReaderError, VectorIndexError, StoreError) as exc:
        console.print(f"[red]indexing failed: {exc}")
        raise typer.Exit(1) from None
    finally:
        index.close()
        if catalog is not None:
            catalog.close()
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


@users_app.command("import")
def users_import(
    bundle: Annotated[Path, typer.Option(help="Bundle whose schema names the profile features.")],
    file: Annotated[Path, typer.Option(help="Users file: .parquet, .csv or .jsonl.")],
    store: Annotated[
        str | None, typer.Option(help="State store URI (default: RECSYS_STORE_URI).")
    ] = None,
) -> None:
    """Store each user's profile features (the schema's user features) for the service."""
    from service.indexing import ReaderError
    from service.indexing.readers import read_rows
    from service.online.model import profile_features
    from service.state import StoreError

    schema = _load(bundle).encoder.schema
    names = [f.name for f in profile_features(schema)]
    catalog = _open_store(store)
    count = 0
    try:
        for row in read_rows(file, schema, key=schema.user_key):
            features = {n: row[n] for n in names if row.get(n) is not None}
            catalog.put_profile(str(row[schema.user_key]), features)
            count += 1
    except (ReaderError, StoreError) as exc:
        console.print(f"[red]import failed after {count} users: {exc}")
        raise typer.Exit(1) from None
    finally:
        catalog.close()
    console.print(f"{count} user profiles stored ({', '.join(names)})")


@app.command("serve")
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
    import uvicorn
    from pydantic import ValidationError

    from service.settings import Settings
    from service.wiring import is_lite_file

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
        console.print(f"[red]invalid settings: {exc}")
        raise typer.Exit(2) from None
    if settings.bundle is None:
        console.print("[red]no bundle: pass --bundle or set RECSYS_BUNDLE")
        raise typer.Exit(2)
    if settings.workers > 1 and is_lite_file(settings.milvus_uri):
        console.print(
            f"[red]--workers {settings.workers} cannot share the Milvus Lite file "
            f"{settings.milvus_uri} (one process holds its lock). Serve it first with "
            f"`recsys milvus-lite serve --db {settings.milvus_uri} --port 19530` and pass "
            "--milvus-uri http://127.0.0.1:19530, or use a Milvus server."
        )
        raise typer.Exit(2)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
    )


@app.command("demo")
def demo(
    data_dir: Annotated[Path, typer.Option(help="Synthetic data folder.")] = Path("data/posts"),
    bundles: Annotated[Path, typer.Option(help="Bundles folder.")] = Path("bundles"),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Data -> train -> index -> profiles -> serve on the embedded default (Milvus Lite file,
    SQLite). Steps whose result exists are skipped, so a second run starts serving at once."""
    _need_training()
    from service.bundle import BundleError
    from service.demo import example_requests, prepare
    from service.index import VectorIndexError
    from service.indexing import IndexJobError, ReaderError
    from service.settings import get_settings
    from service.state import StoreError

    try:
        bundle = prepare(get_settings(), data_dir, bundles, console)
    except (BundleError, VectorIndexError, IndexJobError, ReaderError, StoreError) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    console.rule("[bold]step 5/5: serve the API")
    console.print("Once the log says ready, try:")
    typer.echo(example_requests(port))  # plain stdout: no wrapping, ready to paste
    serve(bundle=bundle, port=port, milvus_uri=None, store=None, host=None, workers=1)


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
