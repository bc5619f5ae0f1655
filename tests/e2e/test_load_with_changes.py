"""Sixty seconds of load with changes against `recsys serve` (a real uvicorn, Milvus Lite,
SQLite), on loopback and bounded: recommendations at a steady open-loop rate while items are
upserted and deleted, events posted across many users and a model reloaded; then kill -9 with
items queued and a restart. Nothing accepted may be lost."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from service.bundle import read_manifest
from service.index import open_index
from service.loopback import free_port
from service.state import open_store
from tests.bodies import items_body
from tests.e2e.support import deploy
from tests.e2e.test_uvicorn import serve, stop, wait_ready

SECONDS, RATE, USERS = 60, 20, 50
TOPIC = "load_topic"


def escaped(text: str) -> str:
    """An id as one path segment (a slash in it too)."""
    return quote(text, safe="")


def item_id(n: int) -> str:
    return f"load item/{n} «é»"  # spaces, a slash, non-ASCII: any id goes end to end


@pytest.mark.slow
def test_a_minute_of_load_with_changes_loses_nothing(
    posts_bundle: Path, second_bundle: Path, posts_dir: Path, tmp_path: Path
):
    milvus, store_uri = str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'state.db'}"
    dep = deploy(posts_bundle, posts_dir, tmp_path, milvus, store_uri)
    deploy(second_bundle, posts_dir, tmp_path, milvus, store_uri)
    catalog = [f"p{n}" for n in range(1, 200)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root = {"RECSYS_BUNDLES_ROOT": str(posts_bundle.parent.parent)}  # both bundles inside
    proc = serve(dep, port, env=root)
    try:
        wait_ready(proc, url)
        load = subprocess.Popen(
            [sys.executable, "-m", "tests.loadgen", url, str(RATE), str(SECONDS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        with httpx.Client(base_url=url, timeout=10) as client:
            live, deleted, events, reload = changes(client, catalog, second_bundle)
            answers = [json.loads(line) for line in load.communicate(timeout=120)[0].splitlines()]
            wait_settled(client, live | deleted)
            served = client.get("/v1/models").json()
        queued = kill_with_items_queued(proc, url)
    finally:
        stop(proc)

    assert reload.status_code == 200, reload.text
    statuses = Counter(status for status, *_ in answers)
    assert len(answers) == SECONDS * RATE and set(statuses) <= {200, 503}, statuses
    took = [seconds for status, seconds, *_ in answers if status == 200]
    p99 = statistics.quantiles(took, n=100)[98]
    degraded = sum(bool(d) for _, _, d, _ in answers)
    print(f"\n{len(answers)} recommendations: {dict(statuses)}, {degraded} degraded")
    print(f"p99 {p99 * 1000:.0f} ms")
    print(f"{len(live)} items kept, {len(deleted)} deleted, {sum(events.values())} events")
    assert p99 < 2.0, p99  # the search and rank deadlines
    version = read_manifest(second_bundle).version
    assert version in str(served)
    restarted = serve(dep, port, env=root)
    try:
        wait_ready(restarted, url)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_settled(client, set(queued), timeout=30)
    finally:
        stop(restarted)
    index, store = open_index(milvus, timeout_s=30), open_store(store_uri)
    try:
        found = index.vectors(version, sorted(live | deleted | set(queued)))
        assert set(found) == live | set(queued), "an accepted item is missing or a deleted one back"
        for user, count in events.items():
            assert len(store.recent_events(user, 200)) == count, user
    finally:
        index.close()
        store.close()


def changes(
    client: httpx.Client, catalog: list[str], second_bundle: Path
) -> tuple[set[str], set[str], Counter, httpx.Response]:
    """Upserts, deletes, events and one reload halfway, paced over the run; what was accepted."""
    live: set[str] = set()
    deleted: set[str] = set()
    events: Counter = Counter()
    reload = None
    started, n = time.monotonic(), 0
    while (elapsed := time.monotonic() - started) < SECONDS:
        n += 1
        batch = [{"item_id": item_id(2 * n + i), "topic_id": TOPIC} for i in range(2)]
        r = client.put("/v1/items", json=items_body(batch))
        assert r.status_code == 202, r.text
        live |= {row["item_id"] for row in batch}
        if n % 4 == 0:
            gone = item_id(2 * (n - 2))
            assert client.delete(f"/v1/items/{quote(gone, safe='')}").status_code == 202
            live.discard(gone)
            deleted.add(gone)
        user = f"load user {n % USERS}"
        body = {"events": [{"item_id": catalog[(n + i) % len(catalog)]} for i in range(2)]}
        r = client.post(f"/v1/users/{quote(user, safe='')}/events", json=body)
        assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
        events[user] += 2
        if reload is None and elapsed > SECONDS / 2:
            reload = client.post(
                "/v1/admin/reload", json={"bundle": str(second_bundle), "force": True}
            )
        time.sleep(0.2)
    return live, deleted, events, reload


def wait_settled(client: httpx.Client, ids: set[str], timeout: float = 60) -> None:
    """Until every id's latest change is done: indexed, or deleted from the index."""
    deadline = time.monotonic() + timeout
    waiting = set(ids)
    while waiting:
        assert time.monotonic() < deadline, f"{len(waiting)} changes not done, e.g. {min(waiting)}"
        for item in sorted(waiting):
            status = client.get(f"/v1/items/{quote(item, safe='')}").json()
            if status["state"] in ("indexed", "deleted"):
                waiting.discard(item)
        time.sleep(0.2)


def kill_with_items_queued(proc: subprocess.Popen, url: str) -> list[str]:
    """Items accepted just before a kill -9: the restarted process must index them."""
    ids = [f"queued/{n}" for n in range(20)]
    rows = [{"item_id": i, "topic_id": TOPIC} for i in ids]
    r = httpx.put(f"{url}/v1/items", json=items_body(rows), timeout=10)
    assert r.status_code == 202, r.text
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return ids
