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

DatasetOption = Annotated[
    str, typer.Option(help="Data set config name (posts, movielens-100k) or a .toml path.")
]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Folder with the data files (default: the config's).")
]
ConfigOption = Annotated[Path | None, typer.Option(help="TOML file of training settings.")]

data_app = typer.Typer(help="Data sets.", no_args_is_help=True)


def need_training() -> None:
    """Fail with the install command when the ``train`` extra is missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices
    try:
        import tensorflow  # noqa: F401
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
    console.print(f"wrote {out}: {write(cfg, out)}")


def train(
    dataset: DatasetOption = "posts",
    data_dir: DataDirOption = None,
    out: Annotated[Path, typer.Option(help="Folder that receives bundles/<version>/.")] = Path(
        "bundles"
    ),
    config: ConfigOption = None,
    ranker: Annotated[
        str | None, typer.Option(help="Ranker to serve: lr, fm, deepfm, widedeep, afm, nfm.")
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    link: Annotated[
        str | None,
        typer.Option(help="Also point OUT/LINK (a symlink, e.g. 'current') at the new bundle."),
    ] = None,
) -> None:
    """Train DSSM towers and a ranker, evaluate them, export ONNX and write a bundle."""
    need_training()
    from training.config import TrainConfig
    from training.datasets import DatasetError
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
    try:
        path = train_bundle(dataset, data_dir, out, cfg, report=console.print)
    except DatasetError as exc:
        fail(str(exc))
    if link:
        staging = out / f".{link}.tmp"
        staging.unlink(missing_ok=True)
        staging.symlink_to(path.name)
        os.replace(staging, out / link)  # atomic: readers see the old or the new bundle
    typer.echo(path)


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
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Data -> train -> index -> profiles -> serve on the embedded default (Milvus Lite file,
    SQLite). Steps whose result exists are skipped, so a second run starts serving at once."""
    need_training()
    from service.bundle import BundleError
    from service.cli.serve import serve
    from service.index import VectorIndexError
    from service.indexing import IndexJobError, ReaderError
    from service.settings import get_settings
    from service.state import StoreError
    from training.demo import example_requests, prepare

    try:
        bundle = prepare(get_settings(), data_dir, bundles, console)
    except (BundleError, VectorIndexError, IndexJobError, ReaderError, StoreError) as exc:
        fail(str(exc))
    console.rule("[bold]step 5/5: serve the API")
    console.print("Once the log says ready, try:")
    typer.echo(example_requests(port))  # plain stdout: no wrapping, ready to paste
    serve(bundle=bundle, port=port, milvus_uri=None, store=None, host=None, workers=1)
