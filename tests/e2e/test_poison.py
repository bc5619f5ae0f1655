"""Poison isolation with the real parts: a trained bundle's item tower, Milvus Lite, and a
SQLite or Redis store. Changes the index or the item tower refuses, mixed into batches of
good items, never hold the good ones up: every good item is indexed within 2 s, and the
poison ends `failed` with its reason."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest

from service.state import open_store
from tests.e2e.support import deploy, serving

pytestmark = pytest.mark.anyio
DIM = 32  # post_vec in the posts schema

POISON = {
    "nan_vec": {"post_id": "nan_vec", "topic_id": "t1", "post_vec": [float("nan")] * DIM},
    "huge_vec": {"post_id": "huge_vec", "topic_id": "t1", "post_vec": [1e308] * DIM},
    "short_vec": {"post_id": "short_vec", "topic_id": "t1", "post_vec": [0.1] * 3},
    "long_topic": {"post_id": "long_topic", "topic_id": "x" * 300, "post_vec": [0.1] * DIM},
}


def good_item(n: int) -> tuple[str, dict]:
    return f"good_{n}", {
        "post_id": f"good_{n}",
        "topic_id": "isolated",
        "post_vec": [0.01 * n] * DIM,
    }


async def state_of(client: httpx.AsyncClient, item_id: str, state: str, within_s: float) -> dict:
    started = time.monotonic()
    while (body := (await client.get(f"/v1/items/{item_id}")).json())["state"] != state:
        assert time.monotonic() - started < within_s, (item_id, body)
        await anyio.sleep(0.02)
    return body


@pytest.fixture(params=["sqlite", "redis"])
def store_uri(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/3"


async def test_poison_is_isolated_and_good_items_are_indexed_within_2s(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path, store_uri: str
):
    dep = deploy(posts_bundle, posts_dir, tmp_path, str(tmp_path / "milvus.db"), store_uri)
    settings = dep.settings(index_max_attempts=2, index_retry_s=0.1, index_batch=64)
    rows = [good_item(n) for n in range(40)]
    for k, poison in enumerate(POISON.items()):
        rows.insert(9 * k + 3, poison)
    async with serving(settings) as client:
        writer = open_store(store_uri)  # rows a bug or another writer let into the queue
        try:
            writer.put_items(rows)
        finally:
            writer.close()
        started = time.monotonic()
        for item_id, _ in rows:
            if item_id not in POISON:
                await state_of(client, item_id, "indexed", within_s=2)
        assert time.monotonic() - started < 2
        reasons = {}
        for item_id in POISON:
            body = await state_of(client, item_id, "failed", within_s=3)
            assert body["attempts"] == 2, body
            reasons[item_id] = body["error"]
        assert "post_vec" in reasons["nan_vec"] and "post_vec" in reasons["short_vec"]
        assert "topic_id" in reasons["long_topic"]
        metrics = (await client.get("/metrics")).text
        assert f"rec_index_failed_items_total {float(len(POISON))}" in metrics
        runtime = client.app.state.runtime
        assert runtime.index.count(runtime.model.version) == 1500 + 40  # the catalog + good
