"""Poison isolation in the indexing worker, on the fakes (a real exact index and a real
SQLite store): a change the index refuses never holds up the rest of its batch."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from service.index import IndexConfigError, IndexUnavailable, InvalidRequest
from service.indexing.isolate import write_isolating

pytestmark = pytest.mark.anyio

POISON = {
    "long_topic": {"item_id": "long_topic", "topic": "x" * 300, "quality": [0.0]},
    "control_char": {"item_id": "control_char", "topic": "a\x00b", "quality": [0.0]},
    "topic_list": {"item_id": "topic_list", "topic": ["t1"] * 60, "quality": [0.0]},
}


def test_bisection_writes_everything_but_the_refused_items():
    written: list[int] = []
    calls = 0

    def write(batch):
        nonlocal calls
        calls += 1
        if any(n % 50 == 7 for n in batch):
            raise InvalidRequest(f"refused one of {len(batch)}")
        written.extend(batch)

    refused = write_isolating(write, list(range(256)))
    assert [n for n, _ in refused] == [7, 57, 107, 157, 207]
    assert sorted(written) == [n for n in range(256) if n % 50 != 7]
    assert refused[0][1] == "refused one of 1"
    assert calls <= 2 * 5 * 8 + 1


@pytest.mark.parametrize("error", [IndexUnavailable("away"), IndexConfigError("bad uri")])
def test_a_problem_of_the_whole_batch_is_not_blamed_on_an_item(error):
    def write(batch):
        raise error

    with pytest.raises(type(error)):
        write_isolating(write, [1, 2, 3])


async def wait_state(client: httpx.AsyncClient, item_id: str, state: str, within_s: float) -> dict:
    started = time.monotonic()
    while (body := (await client.get(f"/v1/items/{item_id}")).json())["state"] != state:
        assert time.monotonic() - started < within_s, (item_id, body)
        await anyio.sleep(0.01)
    return body


async def test_poison_is_failed_with_its_reason_and_good_items_are_indexed(serve, store, index):
    good = {f"g{n}": {"item_id": f"g{n}", "topic": "t1", "quality": [1.0]} for n in range(20)}
    rows = list(good.items())
    for k, (item_id, row) in enumerate(POISON.items()):  # queued as another writer would
        rows.insert(5 * k + 2, (item_id, row))
    async with serve(index_max_attempts=2, index_retry_s=0.05) as client:
        store.put_items(rows)
        started = time.monotonic()
        for item_id in good:
            await wait_state(client, item_id, "indexed", within_s=2)
        good_done = time.monotonic() - started
        for item_id in POISON:
            body = await wait_state(client, item_id, "failed", within_s=2)
            assert body["attempts"] == 2 and "topic" in body["error"], body
        assert index.count("fake_1") == 40 + len(good)  # the catalog's 40 and the good ones
        metrics = (await client.get("/metrics")).text
        assert "rec_index_failed_items_total 3.0" in metrics
        assert "rec_index_refusals_total 6.0" in metrics
        assert store.pending_count() == 0
    assert good_done < 2


async def test_a_fixed_item_leaves_the_failed_state(serve, store):
    async with serve(index_max_attempts=1, index_retry_s=0) as client:
        store.put_items([("long_topic", POISON["long_topic"])])
        await wait_state(client, "long_topic", "failed", within_s=2)
        fixed = {"item_id": "long_topic", "features": {"topic": "t2", "quality": [0.0]}}
        assert (await client.put("/v1/items", json={"items": [fixed]})).status_code == 202
        body = await wait_state(client, "long_topic", "indexed", within_s=2)
        assert body["error"] is None and body["attempts"] == 0


async def test_changes_a_dead_process_claimed_are_indexed_after_one_short_lease(
    serve, store, make_settings
):
    """kill -9 after a claim: the next process takes the changes over once the (default)
    lease runs out, not half a minute later."""
    lease_s = make_settings().index_lease_s
    item = {"item_id": "orphan", "topic": "t1", "quality": [1.0]}
    store.put_items([("orphan", item)])
    assert [c.item_id for c in store.claim_pending(10, lease_s)] == ["orphan"]  # then dies
    started = time.monotonic()
    async with serve() as client:
        await wait_state(client, "orphan", "indexed", within_s=lease_s + 3)
    assert time.monotonic() - started >= lease_s - 0.5  # it waited for the lease, no sooner
    assert lease_s <= 10


async def test_a_write_slower_than_the_lease_keeps_its_claim(serve, store, model):
    """The heartbeat renews the lease while the worker writes: no other worker takes it."""
    slow_write, seen = model.write_items, []

    def write_items(upserts, deletes):
        time.sleep(0.6)
        seen.append(store.claim_pending(10, 0.2))  # another worker's try, mid-write
        slow_write(upserts, deletes)

    model.write_items = write_items
    store.put_items([("slow", {"item_id": "slow", "topic": "t1", "quality": [1.0]})])
    async with serve(index_lease_s=0.2) as client:
        await wait_state(client, "slow", "indexed", within_s=5)
    assert seen and all(claimed == [] for claimed in seen)
