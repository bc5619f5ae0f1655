"""The training half of the ``recsys`` command: ``data synth``, ``train``, ``compare`` and
``demo``, added to the service's command through the ``recsys.commands`` entry points
(pyproject.toml). TensorFlow is imported only when a command that needs it runs."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import console, fail
from training.models.ranker_config import RANKER_NAMES

DatasetOption = Annotated[
    str, typer.Option(help="Data set config name (posts, movielens-100k) or a .toml path.")
]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Folder with the data files (default: the config's).")
]
ConfigOption = Annotated[Path | None, typer.Option(help="TOML file of training settings.")]

data_app = typer.Typer(help="Data sets.", no_args_is_help=True)


def need_training() -> None:
    """Import TensorFlow quietly (`training.tf_logs`), or fail with the install command when
    the ``train`` extra is missing."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # one INFO line per graph pass
    try:
        from training.tf_logs import import_tensorflow

        import_tensorflow()
        import tf2onnx  # noqa: F401
    except ImportError as exc:
        fail(f"training needs the 'train' extra: pip install -e '.[train]' ({exc})", 2)


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
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing if OUT already holds the data set.")
    ] = False,
) -> None:
    """Generate the synthetic `posts` data set (seed-003 schema, with latent structure)."""
    from training.datasets.posts import FILES, SynthConfig, write

    if if_missing and all((out / name).is_file() for name in FILES):
        console.print(f"{out} already holds the data set: not generating it again")
        return

    cfg = SynthConfig(
        users=users,
        items=items,
        topics=topics,
        impressions_per_user=impressions_per_user,
        seed=seed,
    )
    console.print(f"wrote {out}: {write(cfg, out)}")


@data_app.command("export")
def data_export(
    store: Annotated[str, typer.Option(help="State store URI the service logged to.")],
    out: Annotated[Path, typer.Option(help="Folder for the data set (parquet + <name>.toml).")],
    since: Annotated[
        str | None,
        typer.Option(help="Only impressions from then on: unix seconds or an ISO date/time."),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="Bundle whose schema and ranker features the data set takes "
            "(default: RECSYS_BUNDLE)."
        ),
    ] = None,
) -> None:
    """Join the service's impressions with the events attributed to them into a data set
    that `recsys train --dataset OUT/<name>.toml` trains on; print the config's path."""
    from service.bundle import BundleError, load_bundle
    from service.feedback.export import export_dataset
    from service.settings import get_settings
    from service.state import StoreError, open_store

    bundle = bundle or get_settings().bundle
    if bundle is None:
        fail("--bundle (or RECSYS_BUNDLE) names the schema of the data set", 2)
    try:
        served = load_bundle(bundle)
        opened = open_store(store)
    except (BundleError, StoreError, ValueError) as exc:
        fail(str(exc))
    try:
        summary = export_dataset(
            opened,
            served.encoder.schema,
            served.manifest.models["ranker"].features,
            out,
            _since(since),
        )
    except StoreError as exc:
        fail(str(exc))
    finally:
        opened.close()
    console.print(
        f"{summary.impressions} impressions -> {summary.interactions} rows "
        f"({summary.positives} positive), {summary.users} users, {summary.items} items"
        + (f"; {summary.dropped} shown items no longer in the catalog" if summary.dropped else "")
    )
    typer.echo(summary.config)


def _since(value: str | None) -> float:
    from datetime import UTC, datetime

    if value is None:
        return 0.0
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since must be unix seconds or an ISO date/time, not {value!r}", 2)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def train(
    dataset: DatasetOption = "posts",
    data_dir: DataDirOption = None,
    out: Annotated[Path, typer.Option(help="Folder that receives bundles/<version>/.")] = Path(
        "bundles"
    ),
    config: ConfigOption = None,
    ranker: Annotated[
        str | None, typer.Option(help=f"Ranker to serve: {', '.join(RANKER_NAMES)}.")
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Cap every model's epochs (a quick run).")
    ] = None,
    link: Annotated[
        str | None,
        typer.Option(help="Also point OUT/LINK (a symlink, e.g. 'current') at the new bundle."),
    ] = None,
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing",
            help="With --link: train only if OUT/LINK does not exist yet (a job run on every "
            "start trains once; a new version only when asked).",
        ),
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="The bundle this one would replace (e.g. bundles/current): scored on the new "
            "bundle's test split and recorded, so a gated rollout can compare the two.",
        ),
    ] = None,
) -> None:
    """Train DSSM towers and a ranker, evaluate them, export ONNX and write a bundle; print
    its path on stdout (the progress goes to stderr)."""
    if ranker is not None and ranker not in RANKER_NAMES:
        fail(f"--ranker must be one of {', '.join(RANKER_NAMES)}, not {ranker!r}", 2)
    if if_missing and not link:
        fail("--if-missing needs --link (the link it looks for)", 2)
    if if_missing and (out / link).exists():
        console.print(f"{out / link} exists: not training (drop --if-missing for a new version)")
        typer.echo((out / link).resolve())
        return
    need_training()
    from training.compare import with_epoch_cap
    from training.config import TrainConfig
    from training.datasets import DatasetError
    from training.gate import BaselineError
    from training.pipeline import train_bundle

    overrides: dict = {}
    if ranker:
        overrides["ranker"] = {"name": ranker}
    if seed is not None:
        overrides["seed"] = seed
    try:
        cfg = (TrainConfig.from_toml(config) if config else TrainConfig()).updated(overrides)
    except ValueError as exc:
        fail(f"training settings: {exc}", 2)
    if epochs is not None:
        cfg = with_epoch_cap(cfg, epochs)
    try:
        path = train_bundle(dataset, data_dir, out, cfg, console.print, baseline)
    except (DatasetError, BaselineError) as exc:
        fail(str(exc))
    if link:
        _link(out, link, path)
    typer.echo(path)


def _link(out: Path, link: str, path: Path) -> None:
    staging = out / f".{link}.tmp"
    staging.unlink(missing_ok=True)
    staging.symlink_to(path.name)
    os.replace(staging, out / link)  # atomic: readers see the old or the new bundle


def compare(
    dataset: DatasetOption = "movielens-100k",
    data_dir: DataDirOption = None,
    out: Annotated[Path, typer.Option(help="Folder for the compare-<data set>.* report.")] = Path(
        "docs"
    ),
    config: ConfigOption = None,
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
    need_training()
    from training.compare import CompareSettings, with_epoch_cap
    from training.compare import compare as run_compare
    from training.config import TrainConfig
    from training.datasets import DatasetError

    try:
        settings = CompareSettings(
            seeds=tuple(int(s) for s in seeds.split(",") if s.strip()),
            rankers=tuple(r.strip() for r in rankers.split(",") if r.strip()),
            retrieval=retrieval,
        )
    except ValueError:
        fail(f"--seeds must be comma-separated integers, not {seeds!r}", 2)
    command = "recsys " + shlex.join(sys.argv[1:])
    try:
        cfg = TrainConfig.from_toml(config) if config else TrainConfig()
        if epochs is not None:
            cfg = with_epoch_cap(cfg, epochs)
        paths = run_compare(dataset, data_dir, out, cfg, settings, console.print, command)
    except (DatasetError, ValueError) as exc:
        fail(str(exc))
    for path in paths:
        typer.echo(path)


def demo(
    data_dir: Annotated[Path, typer.Option(help="Synthetic data folder.")] = Path("data/posts"),
    bundles: Annotated[Path, typer.Option(help="Bundles folder.")] = Path("bundles"),
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="API port (default: RECSYS_PORT, 8000).")
    ] = None,
    milvus_port: Annotated[
        int,
        typer.Option(min=1, max=65535, help="Port of the demo's Milvus Lite server (loopback)."),
    ] = 19530,
) -> None:
    """Data -> train -> index -> profiles -> serve on the embedded default (Milvus Lite, SQLite).
    Steps whose result exists are skipped, so a second run starts serving at once. The Lite file
    is served on 127.0.0.1:MILVUS_PORT while the demo runs, for `recsys index --uri ...`."""
    from service.settings import get_settings
    from service.wiring import is_lite_file

    settings = get_settings()
    port = port or settings.port
    lite = is_lite_file(settings.milvus_uri)
    _ports_free_or_exit(settings.host, port, milvus_port if lite else None)
    need_training()
    from service.bundle import BundleError
    from service.cli.serve import serve
    from service.index import IndexConfigError, VectorIndexError
    from service.index.lite_server import LiteServerError
    from service.indexing import IndexJobError, ReaderError
    from service.state import StoreError
    from training.demo import demo_milvus, example_requests, prepare

    failures = (BundleError, VectorIndexError, IndexJobError, ReaderError, StoreError)
    try:
        with demo_milvus(settings, milvus_port) as settings:
            try:
                bundle = prepare(settings, data_dir, bundles, console)
            except failures as exc:
                fail(str(exc))
            console.rule("[bold]step 5/5: serve the API")
            console.print("Once the log says ready, try:")
            typer.echo(example_requests(port, bundle, settings.milvus_uri))  # plain: pasteable
            serve(
                bundle=bundle,
                port=port,
                milvus_uri=settings.milvus_uri,
                store=None,
                host=None,
                workers=1,
            )
    except (LiteServerError, IndexConfigError) as exc:
        fail(f"Milvus Lite: {exc}")


def _ports_free_or_exit(host: str, api_port: int, milvus_port: int | None) -> None:
    """Fail before anything starts when the API's or the Lite server's port is taken."""
    from service.cli.common import port_problem

    busy = port_problem(host, api_port)
    if busy:
        fail(
            f"the API port is taken: {busy}. Is another `recsys demo` or `recsys serve` running? "
            f"Pick another port: make demo PORT=8001, recsys demo --port 8001 or RECSYS_PORT=8001.",
            2,
        )
    busy = milvus_port is not None and port_problem("127.0.0.1", milvus_port)
    if busy:
        fail(
            f"the Milvus Lite port is taken: {busy}. Is another demo or `recsys milvus-lite "
            "serve` running? Pick another: make demo MILVUS_PORT=19531 or --milvus-port 19531.",
            2,
        )
