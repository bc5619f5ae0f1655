"""Model swaps under load, queued changes across restarts, a Redis store, Milvus going away,
and two serving processes sharing one catalog."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest

from service.index.lite_server import LiteServer
from service.loopback import free_port
from tests.bodies import items_body
from tests.e2e.support import Deployment, deploy, serving

pytestmark = pytest.mark.anyio


async def wait_indexed(client: httpx.AsyncClient, item_id: str, state: str = "indexed") -> float:
    started = time.monotonic()
    while (await client.get(f"/v1/items/{item_id}")).json()["state"] != state:
        assert time.monotonic() - started < 30, f"{item_id} not {state} within 30 s"
        await anyio.sleep(0.02)
    return time.monotonic() - started


async def test_reload_under_concurrent_requests_swaps_without_errors(
    deployment: Deployment, second_bundle: Path, posts_dir: Path, tmp_path: Path
):
    # the second bundle's collection, indexed into the same Lite file and catalog
    deploy(second_bundle, posts_dir, tmp_path, deployment.milvus_uri, deployment.store_uri)
    async with serving(deployment.settings()) as c:
        old = (await c.get("/v1/models")).json()["version"]
        failed = await c.post("/v1/admin/reload", json={"bundle": str(tmp_path / "missing")})
        assert failed.status_code == 409
        assert "still serving" in failed.json()["error"]["message"]
        assert (await c.get("/v1/models")).json()["version"] == old

        versions: list[str] = []
        statuses: list[int] = []

        async def load() -> None:
            for n in range(60):
                r = await c.post("/v1/recommendations", json={"user_id": f"u{n}", "k": 10})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    body = r.json()
                    assert body["collection"] == "items_" + body["model_version"]
                    assert not body["degraded"]
                    versions.append(body["model_version"])

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(load)
            await anyio.sleep(0.05)
            reloaded = await c.post(
                "/v1/admin/reload", json={"bundle": str(second_bundle), "force": True}
            )
        assert reloaded.status_code == 200, reloaded.text
        new = reloaded.json()["version"]
        assert new != old
        assert statuses == [200] * 240
        assert set(versions) <= {old, new}
        after = await c.post("/v1/recommendations", json={"user_id": "u1", "k": 5})
        assert after.json()["model_version"] == new
        assert (await c.get("/v1/models")).json()["last_reload_error"] is None
        # roll back for the other tests of this session
        back = await c.post(
            "/v1/admin/reload", json={"bundle": str(deployment.bundle), "force": True}
        )
        assert back.status_code == 200


async def test_a_queued_change_survives_a_restart(deployment: Deployment):
    async with serving(deployment.settings(index_worker=False)) as c:
        item = {"post_id": "durable_1", "topic_id": "durable_topic"}
        assert (await c.put("/v1/items", json=items_body([item], "post_id"))).status_code == 202
        assert (await c.get("/v1/items/durable_1")).json()["state"] == "queued"
    async with serving(deployment.settings()) as c:  # a new process, worker on
        await wait_indexed(c, "durable_1")
        body = {"user_id": "u1", "k": 5, "filter": {"topic_id": ["durable_topic"]}}
        got = (await c.post("/v1/recommendations", json=body)).json()["items"]
        assert [i["item_id"] for i in got] == ["durable_1"]
        await c.delete("/v1/items/durable_1")
        await wait_indexed(c, "durable_1", "deleted")


async def test_the_service_runs_on_redis(
    deployment: Deployment, posts_bundle: Path, posts_dir: Path, redis_url: str, tmp_path: Path
):
    milvus = str(tmp_path / "redis_run.db")
    redis_deploy = deploy(posts_bundle, posts_dir, tmp_path, milvus, redis_url)
    async with serving(redis_deploy.settings()) as c:
        before = (await c.post("/v1/recommendations", json={"user_id": "r1", "k": 10})).json()
        assert before["cold_start"] is True
        top = before["items"][0]["item_id"]
        await c.post("/v1/users/r1/events", json={"events": [{"item_id": top}]})
        after = (await c.post("/v1/recommendations", json={"user_id": "r1", "k": 10})).json()
        assert after["cold_start"] is False
        assert top not in [i["item_id"] for i in after["items"]]
        item = {"post_id": "redis_1", "topic_id": "redis_topic"}
        assert (await c.put("/v1/items", json=items_body([item], "post_id"))).status_code == 202
        await wait_indexed(c, "redis_1")
        body = {"user_id": "r1", "k": 5, "filter": {"topic_id": ["redis_topic"]}}
        got = (await c.post("/v1/recommendations", json=body)).json()["items"]
        assert [i["item_id"] for i in got] == ["redis_1"]


async def test_milvus_down_falls_back_within_the_deadline_and_recovers(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path
):
    with LiteServer(tmp_path / "served.db", port=free_port()) as server:
        dep = deploy(posts_bundle, posts_dir, tmp_path, server.uri, f"sqlite:///{tmp_path}/s.db")
        settings = dep.settings(search_deadline_ms=300, milvus_timeout_s=1.0)
        async with serving(settings) as c:
            body = {"user_id": "u9", "k": 10}
            healthy = (await c.post("/v1/recommendations", json=body)).json()
            assert healthy["degraded"] is False

            server.stop()
            started = time.monotonic()
            down = (await c.post("/v1/recommendations", json=body)).json()
            elapsed = time.monotonic() - started
            assert down["degraded"] is True
            assert down["fallback_reason"] in ("index_unavailable", "index_timeout")
            assert elapsed < 0.3 + 1.0, elapsed  # the search deadline plus the rest
            assert len(down["items"]) == 10
            assert {i["source"] for i in down["items"]} == {"popular"}
            assert all(i["retrieval_score"] is None for i in down["items"])
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and "unavailable" in ready.json()["checks"]["index"]

            server.start()
            deadline = time.monotonic() + 30
            while True:
                again = (await c.post("/v1/recommendations", json=body)).json()
                if not again["degraded"]:
                    break
                assert time.monotonic() < deadline, "no recovery within 30 s"
                await anyio.sleep(0.2)
            assert {i["source"] for i in again["items"]} == {"retrieval"}


async def test_the_service_starts_while_milvus_is_down_and_gets_ready_when_it_answers(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path
):
    with LiteServer(tmp_path / "served.db", port=free_port()) as server:
        dep = deploy(posts_bundle, posts_dir, tmp_path, server.uri, f"sqlite:///{tmp_path}/s.db")
        server.stop()
        settings = dep.settings(search_deadline_ms=300, milvus_timeout_s=1.0)
        async with serving(settings) as c:
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and "unavailable" in ready.json()["checks"]["index"]
            body = {"user_id": "u9", "k": 10}
            down = (await c.post("/v1/recommendations", json=body)).json()
            assert down["degraded"] and len(down["items"]) == 10
            assert {i["source"] for i in down["items"]} == {"popular"}

            server.start()
            deadline = time.monotonic() + 30
            while (await c.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "not ready within 30 s of Milvus answering"
                await anyio.sleep(0.2)
            again = (await c.post("/v1/recommendations", json=body)).json()
            assert not again["degraded"] and {i["source"] for i in again["items"]} == {"retrieval"}


async def test_two_processes_share_the_catalog_through_the_store(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path
):
    """Process A runs the indexing worker; process B (no worker) takes the PUT and ranks the
    new item once indexed, with its features from B's own item table."""
    with LiteServer(tmp_path / "shared.db", port=free_port()) as server:
        dep = deploy(posts_bundle, posts_dir, tmp_path, server.uri, f"sqlite:///{tmp_path}/s.db")
        async with serving(dep.settings()) as a, serving(dep.settings(index_worker=False)) as b:
            item = {"post_id": "shared_1", "topic_id": "shared_topic", "post_vec": [0.1] * 32}
            assert (await b.put("/v1/items", json=items_body([item], "post_id"))).status_code == 202
            await wait_indexed(b, "shared_1")
            body = {"user_id": "u2", "k": 5, "filter": {"topic_id": ["shared_topic"]}}
            for client in (a, b):
                got = (await client.post("/v1/recommendations", json=body)).json()["items"]
                assert [i["item_id"] for i in got] == ["shared_1"]
            assert "shared_1" in b.app.state.runtime.model.items


async def test_every_process_follows_a_reload_made_through_one_of_them(
    posts_bundle: Path, second_bundle: Path, posts_dir: Path, tmp_path: Path
):
    with LiteServer(tmp_path / "rollout.db", port=free_port()) as server:
        store_uri = f"sqlite:///{tmp_path}/s.db"
        dep = deploy(posts_bundle, posts_dir, tmp_path, server.uri, store_uri)
        deploy(second_bundle, posts_dir, tmp_path, server.uri, store_uri)
        async with serving(dep.settings()) as a, serving(dep.settings()) as b:
            old = (await b.get("/v1/models")).json()["version"]
            reloaded = await a.post(
                "/v1/admin/reload", json={"bundle": str(second_bundle), "force": True}
            )
            new = reloaded.json()["version"]
            assert new != old
            deadline = time.monotonic() + 20
            while (await b.get("/v1/models")).json()["version"] != new:
                assert time.monotonic() < deadline, "process b did not follow the rollout"
                await anyio.sleep(0.05)
        # a process that starts later with the same configuration joins the rollout
        async with serving(dep.settings()) as c:
            assert (await c.get("/v1/models")).json()["version"] == new
        # a new configuration (another RECSYS_BUNDLE) resets it
        async with serving(dep.settings(bundle=second_bundle)) as d:
            assert (await d.get("/v1/models")).json()["version"] == new
        async with serving(dep.settings()) as e:
            assert (await e.get("/v1/models")).json()["version"] == old
