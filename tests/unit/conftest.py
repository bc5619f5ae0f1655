"""Unit-tier fixtures: a fake model over a real exact index and a real SQLite store (both in
this process, no network, no TensorFlow)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.index.exact import ExactIndex
from service.settings import Settings
from service.state import open_store
from tests.fakes import FakeModel, Switchable, catalog, deploy, flaky_store, slow_index


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
