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
