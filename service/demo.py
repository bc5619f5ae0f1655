"""`recsys demo`: from a fresh clone to a running service on the embedded default.

Each step says what it does and is skipped when its result is already there, so a second run
goes straight to serving: synthetic data -> trained bundle (DSSM + DeepFM, ONNX) -> items in
Milvus Lite + the catalog -> user profiles -> the API on :8000.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from service.bundle import BundleError, load_bundle, read_manifest
from service.settings import Settings

STEPS = 5
EXAMPLE_USER = "u42"


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


def prepare(settings: Settings, data_dir: Path, bundles_dir: Path, console: Console) -> Path:
    """Steps 1-4; returns the bundle to serve."""
    from service.indexing import run_index_job
    from service.indexing.readers import read_rows
    from service.online.model import profile_features
    from service.wiring import index_from_settings, store_from_settings

    done = _step(console, 1, f"synthetic data in {data_dir}")
    if (data_dir / "items.parquet").is_file():
        done("already there")
    else:
        from training.datasets.posts import SynthConfig, write

        done(f"generated {write(SynthConfig(), data_dir)}")

    done = _step(console, 2, "train DSSM + DeepFM, export the ONNX bundle")
    bundle_path = latest_bundle(bundles_dir, "posts")
    if bundle_path is not None:
        done(f"reusing {bundle_path}")
    else:
        from training.config import TrainConfig
        from training.pipeline import train_bundle

        bundle_path = train_bundle("posts", data_dir, bundles_dir, TrainConfig(), console.print)
        done(f"wrote {bundle_path}")
    bundle = load_bundle(bundle_path)

    done = _step(console, 3, f"index the items into {settings.milvus_uri}")
    index, store = index_from_settings(settings), store_from_settings(settings)
    try:
        items = data_dir / "items.parquet"
        expected = sum(1 for _ in read_rows(items, bundle.encoder.schema))
        have = 0
        if bundle.version in index.list_versions():
            have = index.count(bundle.version)
        if have >= expected and store.item_status(_first_id(items, bundle)) is not None:
            done(f"{have} items already indexed in items_{bundle.version}")
        else:
            report = run_index_job(
                bundle, index, items, settings.index_checkpoint_dir, catalog=store
            )
            done(f"{report.final_count} items in {report.collection}")

        done = _step(console, 4, f"user profiles into {settings.store_uri}")
        if store.get_profile(EXAMPLE_USER) is not None:
            done("already there")
        else:
            schema = bundle.encoder.schema
            names = [f.name for f in profile_features(schema)]
            count = 0
            for row in read_rows(data_dir / "users.parquet", schema, key=schema.user_key):
                store.put_profile(str(row[schema.user_key]), {n: row.get(n) for n in names})
                count += 1
            done(f"{count} profiles")
    finally:
        index.close()
        store.close()
    return bundle_path


def _first_id(items: Path, bundle) -> str:
    from service.indexing.readers import read_rows

    schema = bundle.encoder.schema
    return str(next(iter(read_rows(items, schema)))[schema.item_key])


def example_requests(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"user_id": EXAMPLE_USER, "k": 10})
    event = json.dumps({"events": [{"item_id": "p7", "type": "read"}]})
    return "\n".join(
        [
            f"curl -s -XPOST {base}/v1/recommendations -H 'content-type: application/json' \\",
            f"     -d '{body}'",
            f"curl -s -XPOST {base}/v1/users/{EXAMPLE_USER}/events "
            "-H 'content-type: application/json' \\",
            f"     -d '{event}'",
            f"open {base}/docs   # the OpenAPI reference",
        ]
    )
