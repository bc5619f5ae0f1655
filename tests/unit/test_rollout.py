"""Rollout safety on the fakes: a process that cannot load the active bundle is not ready and
never rewrites the shared rollout record; a rollback is an explicit admin reload."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import orjson
import pytest

from service.app import create_app
from service.online import runtime as runtime_module
from tests.fakes import FakeModel, fake_loader

pytestmark = pytest.mark.anyio


def record(store) -> dict:
    return orjson.loads(store.get_meta("rollout"))


def bundle(name: str) -> str:
    return str(Path(name).resolve())


class KeepOpen:
    """An adapter that outlives the app closing it: several processes' lifetimes in a test."""

    def __init__(self, target) -> None:
        self._target = target

    def __getattr__(self, name: str):
        return getattr(self._target, name)

    def close(self) -> None:
        pass


@pytest.fixture
def models(index, model) -> dict[str, FakeModel]:
    """What the loader can load; a test removes or adds bundles to break or fix them."""
    return {"fake_1": model, "fake_2": FakeModel(index, {}, version="fake_2")}


@pytest.fixture
def serve(index, store, models, make_settings):
    @asynccontextmanager
    async def running(**overrides) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(
            make_settings(**overrides),
            adapters=lambda _settings: (KeepOpen(index), KeepOpen(store)),
            load_model=fake_loader(models),
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://recsys") as c:
                yield c

    return running


async def test_a_process_that_cannot_load_the_active_bundle_is_not_ready_and_writes_nothing(
    serve, store, models
):
    async with serve() as a:  # the rollout moves to fake_2
        assert (
            await a.post("/v1/admin/reload", json={"bundle": "fake_2", "force": True})
        ).status_code == 200
    rollout = {"configured": bundle("fake_1"), "active": bundle("fake_2")}
    assert record(store) == rollout
    del models["fake_2"]  # the new process cannot load it (missing here, corrupt, ...)
    async with serve() as b:
        ready = await b.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["model"] == "not loaded"
        r = await b.post("/v1/recommendations", json={"user_id": "known", "k": 3})
        assert r.status_code == 503
        await anyio.sleep(0.3)  # several sync rounds: it must not fall back or rewrite
        assert record(store) == rollout
        # the rollback is an explicit admin action, and the record says so for everyone
        back = await b.post("/v1/admin/reload", json={"bundle": "fake_1", "force": True})
        assert back.status_code == 200 and back.json()["version"] == "fake_1"
        assert record(store) == {"configured": bundle("fake_1"), "active": bundle("fake_1")}
        assert (await b.get("/readyz")).status_code == 200


async def test_a_process_without_a_model_loads_the_active_bundle_once_it_can(
    serve, store, models, index, monkeypatch
):
    monkeypatch.setattr(runtime_module, "FOLLOW_RETRY_S", 0.1)
    store.put_meta(
        "rollout",
        orjson.dumps({"configured": bundle("fake_1"), "active": bundle("fake_3")}).decode(),
    )
    async with serve() as c:
        assert (await c.get("/readyz")).status_code == 503
        models["fake_3"] = FakeModel(index, {}, version="fake_3")  # e.g. the file is synced now
        started = time.monotonic()
        while (await c.get("/readyz")).status_code != 200:
            assert time.monotonic() - started < 5, "never loaded the active bundle"
            await anyio.sleep(0.05)
        assert (await c.get("/v1/models")).json()["version"] == "fake_3"
    assert record(store)["active"] == bundle("fake_3")


async def test_a_serving_process_that_cannot_follow_keeps_its_model_and_the_record(
    serve, store, models
):
    async with serve() as c:
        models.pop("fake_2")
        broken = {"configured": bundle("fake_1"), "active": bundle("fake_2")}
        store.put_meta("rollout", orjson.dumps(broken).decode())  # another process's reload
        await anyio.sleep(0.3)
        assert (await c.get("/v1/models")).json()["version"] == "fake_1"
        assert (await c.get("/readyz")).status_code == 200
        assert record(store) == broken


async def test_a_new_configuration_that_does_not_load_leaves_the_record_alone(serve, store, models):
    async with serve():
        pass
    before = record(store)
    with pytest.raises(Exception, match="not a fake bundle"):
        async with serve(bundle=Path("fake_9")):
            pass
    assert record(store) == before


async def test_a_loaded_model_is_out_of_the_cyclic_collectors_reach(serve, models):
    """A full collection over a large model's objects stalled requests for ~100 ms; a loaded
    model is frozen (`gc.freeze`), a reloaded one too."""
    try:
        assert any(o is models["fake_2"] for o in gc.get_objects())
        async with serve() as client:
            assert not any(o is models["fake_1"] for o in gc.get_objects())
            reload = await client.post("/v1/admin/reload", json={"bundle": "fake_2", "force": True})
            assert reload.status_code == 200
            assert not any(o is models["fake_2"] for o in gc.get_objects())
    finally:
        gc.unfreeze()
