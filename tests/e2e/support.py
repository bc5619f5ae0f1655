"""Shared by the end-to-end tests and the service benchmark: deploy a bundle the way
`recsys index` + `recsys users import` do, and drive the app over httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from service.app import create_app
from service.bundle import load_bundle
from service.index import open_index
from service.indexing import run_index_job
from service.indexing.readers import read_rows
from service.profiles import import_profiles
from service.settings import Settings
from service.state import open_store


@dataclass(frozen=True)
class Deployment:
    bundle: Path
    milvus_uri: str
    store_uri: str
    items: Path
    users: Path
    workdir: Path

    def settings(self, **overrides: Any) -> Settings:
        values = {
            "bundle": self.bundle,
            # the test bundles live in sibling temp folders of one pytest base folder
            "bundles_root": self.bundle.parent.parent,
            "milvus_uri": self.milvus_uri,
            "store_uri": self.store_uri,
            "milvus_timeout_s": 5.0,
            "search_deadline_ms": 2000,
            "rank_deadline_ms": 2000,
            "sync_interval_s": 0.1,
            "index_poll_s": 0.02,
            "log_level": "WARNING",
            **overrides,
        }
        return Settings(**values)


def deploy(
    bundle_path: Path, data_dir: Path, workdir: Path, milvus_uri: str, store_uri: str
) -> Deployment:
    """What `recsys index` + `recsys users import` do: vectors into Milvus, catalog and
    profiles into the store."""
    bundle = load_bundle(bundle_path)
    index = open_index(milvus_uri, timeout_s=30)
    store = open_store(store_uri, events_per_user=200)
    items = data_dir / "items.parquet"
    run_index_job(bundle, index, items, workdir / "checkpoints", catalog=store)
    schema = bundle.encoder.schema
    users = read_rows(data_dir / "users.parquet", schema, key=schema.user_key)
    profiles = import_profiles(bundle, users, store)
    if profiles.skipped:
        raise RuntimeError(f"profiles refused: {profiles.examples}")
    index.close()
    store.close()
    return Deployment(
        bundle_path, milvus_uri, store_uri, items, data_dir / "users.parquet", workdir
    )


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (bundle load, background tasks) behind an httpx client."""
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://recsys") as client:
            client.app = app  # type: ignore[attr-defined]  # tests reach the runtime through it
            yield client
