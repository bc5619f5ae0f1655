"""Unit-tier fixtures: a fake model over a real exact index and a real SQLite store (both in
this process, no network, no TensorFlow)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.index.exact import ExactIndex
from service.settings import Settings
from service.state import open_store
from tests.fakes import (
    FakeModel,
    Switchable,
    catalog,
    deploy,
    fake_loader,
    flaky_store,
    slow_index,
)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def items() -> dict[str, dict[str, Any]]:
    return catalog()


@pytest.fixture
def index() -> Switchable:
    return slow_index(ExactIndex())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Switchable]:
    flaky = flaky_store(open_store(f"sqlite:///{tmp_path / 'state.db'}", events_per_user=200))
    yield flaky
    flaky.close()


@pytest.fixture
def model(index: Switchable, store: Switchable, items) -> FakeModel:
    fake = FakeModel(index, items)
    deploy(fake, store, items)
    fake.items.sync(store)
    return fake


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the fakes (bundle ``fake_1``), with overrides."""

    def make(**overrides: Any) -> Settings:
        values = {
            "bundle": Path("fake_1"),
            "milvus_uri": "memory://",
            "store_uri": f"sqlite:///{tmp_path / 'state.db'}",
            "search_deadline_ms": 1000,
            "rank_deadline_ms": 1000,
            "sync_interval_s": 0.05,
            "index_poll_s": 0.01,
            "log_level": "WARNING",
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
def make_app(index, store, model, make_settings) -> Callable[..., FastAPI]:
    """``make_app(models=None, **settings)``: the app on the fakes (bundles ``fake_1``, served
    at start, and ``fake_2``; ``models`` adds more by folder name; ``app.loads``: bundles it
    loaded)."""
    second = FakeModel(index, {}, version="fake_2")

    def make(models=None, **overrides: Any) -> FastAPI:
        loads: list[str] = []
        bundles = {"fake_1": model, "fake_2": second, **(models or {})}
        app = create_app(
            make_settings(**overrides),
            adapters=lambda _settings: (index, store),
            load_model=fake_loader(bundles, loads),
        )
        app.loads = loads  # type: ignore[attr-defined]
        return app

    return make


@pytest.fixture
def serve(make_app):
    """``async with serve(**settings) as client``: the app on the fakes, over ASGI."""

    @asynccontextmanager
    async def running(models=None, **overrides) -> AsyncIterator[httpx.AsyncClient]:
        app = make_app(models, **overrides)
        loads = app.loads
        async with app.router.lifespan_context(app):
            # a client sees the 500 the app sends, not the exception behind it
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://recsys") as c:
                c.loads = loads  # type: ignore[attr-defined]
                yield c

    return running


@pytest.fixture
async def client(serve) -> AsyncIterator[httpx.AsyncClient]:
    async with serve() as c:
        yield c
