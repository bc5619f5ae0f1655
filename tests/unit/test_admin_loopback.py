"""`RECSYS_ADMIN_LOOPBACK_ONLY`: behind a published port (the compose stack) the admin routes
refuse clients that are not on loopback; the other routes do not care where a client is."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest

from service.app import create_app
from tests.fakes import FakeModel, fake_loader

pytestmark = pytest.mark.anyio
KEYS = {"api_keys": ["user-key"], "admin_api_keys": ["admin-key"]}


@pytest.fixture
def client_from(index, store, model, make_settings):
    @asynccontextmanager
    async def running(address: str, **overrides):
        second = FakeModel(index, {}, version="fake_2")
        app = create_app(
            make_settings(**KEYS, **overrides),
            adapters=lambda _settings: (index, store),
            load_model=fake_loader({"fake_1": model, "fake_2": second}, []),
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(address, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://recsys") as c:
                yield c

    return running


async def reload(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "/v1/admin/reload",
        json={"bundle": "fake_2", "force": True},
        headers={"X-API-Key": "admin-key"},
    )


async def test_a_remote_client_is_refused_with_loopback_only(client_from):
    async with client_from("172.18.0.1", admin_loopback_only=True) as c:
        r = await reload(c)
        assert r.status_code == 403, r.text
        assert "RECSYS_ADMIN_LOOPBACK_ONLY" in r.json()["error"]["message"]
        models = await c.get("/v1/models", headers={"X-API-Key": "user-key"})
        assert models.status_code == 200 and models.json()["version"] == "fake_1"


async def test_a_loopback_client_reloads_with_loopback_only(client_from):
    async with client_from("127.0.0.1", admin_loopback_only=True) as c:
        r = await reload(c)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == "fake_2"


async def test_without_the_setting_a_remote_admin_reloads(client_from):
    async with client_from("172.18.0.1") as c:
        assert (await reload(c)).status_code == 200
