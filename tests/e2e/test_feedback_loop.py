"""The feedback loop end to end: answers over HTTP are logged, events attributed, the app's
shutdown writes every impression, and `recsys data export` turns the real store into a data
set the training loader reads (and `recsys train` trains on)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from service.state import open_store
from tests.e2e.support import serving

pytestmark = pytest.mark.anyio
USERS = [f"u{n}" for n in range(12)]


def recsys(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


async def drive(client) -> dict:
    """Per user: one answer, a click naming it, a like of another shown item without a request
    id (attributed by the window), a hide; plus an event no answer showed."""
    expected = {"answers": 0, "positives": set(), "contexts": {}}
    for n, user in enumerate(USERS):
        device = ("ios", "android", "web")[n % 3]
        body = {"user_id": user, "k": 8, "context": {"client_type": device}}
        r = await client.post("/v1/recommendations", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        expected["answers"] += 1
        expected["contexts"][answer["request_id"]] = device
        shown = [i["item_id"] for i in answer["items"]]
        events = [
            {"item_id": shown[1], "type": "click", "request_id": answer["request_id"]},
            {"item_id": shown[4], "type": "like"},
            {"item_id": shown[6], "type": "hide"},
            {"item_id": "p1", "type": "read", "request_id": "not-a-served-request"},
        ]
        r = await client.post(f"/v1/users/{user}/events", json={"events": events})
        assert r.json()["attributed"] == 3, r.text
        expected["positives"] |= {
            (answer["request_id"], shown[1]),
            (answer["request_id"], shown[4]),
        }
    return expected


async def test_served_traffic_exports_to_a_data_set_the_trainer_loads(deployment, tmp_path):
    since = time.time()
    async with serving(deployment.settings(impressions_flush_s=5)) as client:
        expected = await drive(client)
        [online] = (await client.get("/v1/models")).json()["online"]
        assert (online["impressions"], online["items_shown"]) == (len(USERS), 8 * len(USERS))
        assert online["positives"] == 2 * len(USERS) and online["negatives"] == len(USERS)
        assert online["ctr"] == pytest.approx(2 / 8)
    # the writer flushes only every 5 s: the shutdown wrote every accepted impression
    store = open_store(deployment.store_uri)
    logged = list(store.impressions_since(since))
    store.close()
    assert len(logged) == expected["answers"]

    out = tmp_path / "traffic"
    since_arg = str(since)
    done = recsys(
        "data", "export", "--store", deployment.store_uri, "--out", str(out),
        "--since", since_arg, "--bundle", str(deployment.bundle),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = Path(done.stdout.strip().splitlines()[-1])
    assert config == out / "posts.toml"

    rows = pq.read_table(out / "interactions.parquet").to_pylist()
    assert len(rows) == 8 * len(USERS)
    labelled = {(r["request_id"], r["post_id"]) for r in rows if r["label"] == 1}
    assert labelled == expected["positives"]  # hides and unclicked items are negatives
    assert all(r["client_type"] == expected["contexts"][r["request_id"]] for r in rows)
    assert sorted({r["position"] for r in rows}) == list(range(1, 9))

    from training.datasets import load_dataset

    dataset = load_dataset(str(config))
    assert len(dataset.interactions) == len(rows)
    assert int(dataset.interactions["label"].sum()) == len(expected["positives"])
    assert set(dataset.interactions["split"]) <= {"train", "val", "test"}
    users = dataset.users.set_index("client_id")
    profiles = pq.read_table(deployment.users).to_pandas().set_index("client_id")
    assert list(users.loc["u3", "follow_topic_id"]) == list(profiles.loc["u3", "follow_topic_id"])
    assert len(dataset.items) == len(pq.read_table(deployment.items))
