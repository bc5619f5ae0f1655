"""`recsys demo`: from a fresh clone to a running service on the embedded default.

Each step says what it does and is skipped when its result is already there, so a second run
goes straight to serving: synthetic data -> trained bundle (DSSM + DeepFM, ONNX) -> items in
Milvus Lite + the catalog -> user profiles -> the API on :8000. It lives in `training` because
its first steps train; the rest is the service's own batch job, profile import and server.

The Milvus Lite file is served by a Lite server the demo owns (127.0.0.1:19530 by default) and
stops when it ends, so other processes — `recsys index`, `recsys index status`, a second
`recsys serve` — work beside the running demo through `--uri http://127.0.0.1:19530`.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rich.console import Console

from service.bundle import Bundle, BundleError, load_bundle, read_manifest
from service.index import VectorIndex
from service.index.lite_server import LiteServer
from service.indexing import run_index_job
from service.indexing.readers import read_rows
from service.profiles import import_profiles
from service.settings import Settings
from service.state import StateStore
from service.wiring import index_from_settings, is_lite_file, store_from_settings
from training.config import TrainConfig
from training.datasets.posts import SynthConfig, write
from training.pipeline import train_bundle

STEPS = 5
EXAMPLE_USER = "u42"
LITE_HOST = "127.0.0.1"


def _step(console: Console, n: int, title: str) -> Callable[[str], None]:
    console.rule(f"[bold]step {n}/{STEPS}: {title}")
    started = time.perf_counter()

    def done(message: str) -> None:
        console.print(f"[green]✓[/] {message} [dim]({time.perf_counter() - started:.1f}s)")

    return done


def latest_bundle(bundles_dir: Path, dataset: str) -> Path | None:
    """The newest bundle of ``dataset`` that verifies, if any."""
    candidates = sorted(bundles_dir.glob(f"{dataset}_*"), reverse=True)  # names sort by time
    for path in candidates:
        try:
            read_manifest(path)
            return path
        except BundleError:
            continue
    return None


@contextmanager
def demo_milvus(settings: Settings, lite_port: int) -> Iterator[Settings]:
    """The settings the demo runs with. A Lite file URI (the default) is served by a Lite
    server on ``127.0.0.1:lite_port`` for as long as the block runs, and the settings name that
    server; any other URI (a server the user runs) is used as it is."""
    if not is_lite_file(settings.milvus_uri):
        yield settings
        return
    server = LiteServer(settings.milvus_uri, port=lite_port, host=LITE_HOST)
    with _sigterm_unwinds(), server as lite:
        yield settings.model_copy(update={"milvus_uri": lite.uri})


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises SystemExit here instead of killing the process outright, so the Lite
    server (a child process that outlives its parent) is stopped. uvicorn restores this handler
    after its graceful shutdown and raises the signal again, which lands here."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def prepare(settings: Settings, data_dir: Path, bundles_dir: Path, console: Console) -> Path:
    """Steps 1-4; returns the bundle to serve."""
    done = _step(console, 1, f"synthetic data in {data_dir}")
    if (data_dir / "items.parquet").is_file():
        done("already there")
    else:
        done(f"generated {write(SynthConfig(), data_dir)}")

    done = _step(console, 2, "train DSSM + DeepFM, export the ONNX bundle")
    bundle_path = latest_bundle(bundles_dir, "posts")
    if bundle_path is not None:
        done(f"reusing {bundle_path}")
    else:
        bundle_path = train_bundle("posts", data_dir, bundles_dir, TrainConfig(), console.print)
        done(f"wrote {bundle_path}")
    bundle = load_bundle(bundle_path)

    index, store = index_from_settings(settings), store_from_settings(settings)
    try:
        done = _step(console, 3, f"index the items into {settings.milvus_uri}")
        done(_index(settings, bundle, data_dir / "items.parquet", index, store))
        done = _step(console, 4, f"user profiles into {settings.store_uri}")
        done(_profiles(bundle, data_dir / "users.parquet", store))
    finally:
        index.close()
        store.close()
    return bundle_path


def _index(
    settings: Settings, bundle: Bundle, items: Path, index: VectorIndex, store: StateStore
) -> str:
    schema = bundle.encoder.schema
    rows = read_rows(items, schema)
    first_id = str(next(iter(rows))[schema.item_key])
    expected = 1 + sum(1 for _ in rows)
    have = index.count(bundle.version) if bundle.version in index.list_versions() else 0
    if have >= expected and store.item_status(first_id) is not None:
        return f"{have} items already indexed in items_{bundle.version}"
    report = run_index_job(bundle, index, items, settings.index_checkpoint_dir, catalog=store)
    return f"{report.final_count} items in {report.collection}"


def _profiles(bundle: Bundle, users: Path, store: StateStore) -> str:
    if store.get_profile(EXAMPLE_USER) is not None:
        return "already there"
    schema = bundle.encoder.schema
    report = import_profiles(bundle, read_rows(users, schema, key=schema.user_key), store)
    skipped = f", {report.skipped} rows skipped: {report.examples}" if report.skipped else ""
    return f"{report.stored} profiles{skipped}"


def example_requests(port: int, bundle: Path, milvus_uri: str) -> str:
    """What to try once the API is ready: requests, and the commands that work beside it."""
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"user_id": EXAMPLE_USER, "k": 10})
    event = json.dumps({"events": [{"item_id": "p7", "type": "read"}]})
    lines = [
        f"curl -s -XPOST {base}/v1/recommendations -H 'content-type: application/json' \\",
        f"     -d '{body}'",
        f"curl -s -XPOST {base}/v1/users/{EXAMPLE_USER}/events "
        "-H 'content-type: application/json' \\",
        f"     -d '{event}'",
        f"open {base}/docs   # the OpenAPI reference",
    ]
    if not is_lite_file(milvus_uri):
        lines.append(f"recsys index status --bundle {bundle} --uri {milvus_uri}   # beside the API")
    return "\n".join(lines)
