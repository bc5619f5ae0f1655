"""End-to-end fixtures: a trained bundle indexed into real Milvus Lite, a real SQLite store
with the catalog and user profiles, and the app driven over HTTP (httpx ASGI transport with
its lifespan, or a real uvicorn)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Deployment, deploy, serving


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def deployment(posts_bundle: Path, posts_dir: Path, tmp_path_factory) -> Deployment:
    workdir = tmp_path_factory.mktemp("deploy")
    return deploy(
        posts_bundle,
        posts_dir,
        workdir,
        str(workdir / "milvus.db"),
        f"sqlite:///{workdir / 'state.db'}",
    )


@pytest.fixture(scope="module")
async def client(deployment: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(deployment.settings()) as c:
        yield c


@pytest.fixture(scope="session")
def second_bundle(posts_bundle: Path, posts_dir: Path, tmp_path_factory) -> Path:
    """Another bundle (other seed, short training): a new version and a new collection,
    scored against ``posts_bundle`` for the rollout gate."""
    from tests.conftest import need_tensorflow

    need_tensorflow()
    from training.config import TrainConfig
    from training.pipeline import train_bundle

    cfg = TrainConfig.from_dict(
        {"seed": 11, "ranker": {"epochs": 2}, "dssm": {"epochs": 3}, "baselines": []}
    )
    out = tmp_path_factory.mktemp("second")
    return train_bundle("posts", posts_dir, out, cfg, lambda _m: None, baseline=posts_bundle)
