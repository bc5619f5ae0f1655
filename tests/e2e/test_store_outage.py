"""Redis killed under load, then back: recommendations degrade with a named reason, writes
answer 503 with Retry-After, the service recovers by itself, and every event it accepted is
in the store afterwards (Redis with an fsync'd append-only file, so an acknowledged write is
on disk, as a production Redis would be configured)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest

from service.state import open_store
from tests.conftest import redis_server
from tests.e2e.support import deploy, serving

pytestmark = pytest.mark.anyio
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")
USERS = [f"outage-u{n}" for n in range(8)]


async def test_redis_killed_under_load_degrades_refuses_writes_and_recovers(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path
):
    accepted: Counter = Counter()
    with redis_server(tmp_path, *DURABLE) as (redis, port):
        url = f"redis://127.0.0.1:{port}/0"
        dep = deploy(posts_bundle, posts_dir, tmp_path, str(tmp_path / "m.db"), url)
        async with serving(dep.settings(store_timeout_s=0.5, sync_interval_s=0.05)) as c:
            healthy = await load(c, accepted)
            assert set(healthy) == {("rec", 200, None), ("event", 200, None)}, healthy
            redis.kill()
            redis.wait(10)
            down = await load(c, accepted)
            assert set(down) == {("rec", 200, "store_unavailable"), ("event", 503, "1")}, down
            assert (await c.get("/readyz")).status_code == 503
            with redis_server(tmp_path, *DURABLE, port=port):
                await recovered(c)
                again = await load(c, accepted)
                assert set(again) == {("rec", 200, None), ("event", 200, None)}, again
    with redis_server(tmp_path, *DURABLE, port=port):  # what is on disk after a third start
        store = open_store(url)
        try:
            for user in USERS:
                assert len(store.recent_events(user, 200)) == accepted[user], user
        finally:
            store.close()


async def load(client: httpx.AsyncClient, accepted: Counter, rounds: int = 5) -> Counter:
    """Concurrent recommendations and event posts for every user; what each kind answered."""
    seen: Counter = Counter()

    async def recommend(user: str) -> None:
        r = await client.post("/v1/recommendations", json={"user_id": user, "k": 5})
        seen["rec", r.status_code, r.json().get("fallback_reason")] += 1

    async def post_event(user: str, n: int) -> None:
        body = {"events": [{"item_id": f"p{n + 1}"}]}
        r = await client.post(f"/v1/users/{user}/events", json=body)
        seen["event", r.status_code, r.headers.get("retry-after")] += 1
        if r.status_code == 200:
            accepted[user] += 1

    for n in range(rounds):
        async with anyio.create_task_group() as tasks:
            for user in USERS:
                tasks.start_soon(recommend, user)
                tasks.start_soon(post_event, user, n)
    return seen


async def recovered(client: httpx.AsyncClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (await client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "not ready within 30 s of Redis coming back"
        await anyio.sleep(0.1)
