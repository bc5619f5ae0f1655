"""Item rows and events at the edges, on the real posts bundle: a required feature left out,
an optional one left out, deleting what never existed, events for unknown items."""

from __future__ import annotations

import re

import pytest

from tests.bodies import item_body, items_body

pytestmark = pytest.mark.anyio


def unknown_events_total(metrics_text: str) -> float:
    found = re.search(r"^rec_events_unknown_items_total (\S+)$", metrics_text, re.M)
    assert found, "rec_events_unknown_items_total is not exported"
    return float(found.group(1))


async def test_an_item_without_a_required_feature_is_a_422_naming_it(client):
    r = await client.put("/v1/items", json=item_body("no_topic_1"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "items[0].features.topic_id" and "required" in error["message"]
    assert (await client.get("/v1/items/no_topic_1")).status_code == 404  # nothing queued
    empty = {"post_id": "no_topic_2", "topic_id": ""}
    r = await client.put("/v1/items", json=items_body([empty], "post_id"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "items[0].features.topic_id"


async def test_an_item_without_its_optional_vector_is_accepted(client):
    r = await client.put("/v1/items", json=item_body("no_vec_1", topic_id="t3"))
    assert r.status_code == 202, r.text
    assert (await client.delete("/v1/items/no_vec_1")).status_code == 202


async def test_deleting_an_id_that_never_existed_is_a_404_and_leaves_no_record(client):
    r = await client.delete("/v1/items/never_existed_1")
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert (await client.get("/v1/items/never_existed_1")).status_code == 404


async def test_events_for_unknown_items_are_stored_named_and_counted(client):
    before = unknown_events_total((await client.get("/metrics")).text)
    events = [
        {"item_id": "p7", "type": "read"},
        {"item_id": "ghost_1", "type": "click"},
        {"item_id": "ghost_1", "type": "read"},
    ]
    r = await client.post("/v1/users/events_user_1/events", json={"events": events})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user_id": "events_user_1",
        "accepted": 3,
        "attributed": 0,  # nothing was recommended to this user yet
        "unknown_item_ids": ["ghost_1"],
    }
    after = unknown_events_total((await client.get("/metrics")).text)
    assert after - before == 2
    body = {"user_id": "events_user_1", "k": 10}
    got = (await client.post("/v1/recommendations", json=body)).json()["items"]
    assert "p7" not in [i["item_id"] for i in got]  # the known event is history: seen, excluded
