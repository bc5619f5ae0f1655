"""The feedback loop on a real SQLite store: the buffered impression writer's bounds, the
attribution rules, event types and negatives, and the loop over HTTP (fake model)."""

from __future__ import annotations

import time

import pytest

from service.feedback.attribution import attribute
from service.feedback.events import weight_of
from service.feedback.records import Impression, ShownItem
from service.feedback.writer import ImpressionWriter
from service.metrics import Metrics
from service.online.domain import Exclusions, RecommendationQuery, UserState
from service.state import Event, Retention

KEEP = Retention(1000, 3600)


def shown(request_id: str, user_id: str, ts: float, items=("a", "b", "c")) -> Impression:
    return Impression(
        request_id,
        ts,
        user_id,
        "v1",
        "default",
        tuple(ShownItem(i, n, 0.5, "retrieval") for n, i in enumerate(items, start=1)),
    )


def writer(store, metrics: Metrics, **bounds) -> ImpressionWriter:
    return ImpressionWriter(
        store, KEEP, metrics, **{"buffer": 100, "batch": 10, "flush_s": 30, **bounds}
    )


def test_the_writer_writes_in_the_background_and_everything_on_close(store):
    w = writer(store, Metrics(), flush_s=0.05)
    assert all(w.offer(shown(f"r{n}", "u1", time.time())) for n in range(25))
    deadline = time.monotonic() + 5
    while w.buffered and time.monotonic() < deadline:
        time.sleep(0.02)
    assert w.buffered == 0 and len(list(store.impressions_since(0))) == 25
    for n in range(25, 40):
        w.offer(shown(f"r{n}", "u1", time.time()))
    w.close()  # a clean shutdown loses nothing accepted
    assert [i.request_id for i in store.impressions_since(0)] == [f"r{n}" for n in range(40)]


def test_a_full_buffer_drops_new_impressions_and_counts_them(store):
    metrics = Metrics()
    w = writer(store, metrics, buffer=3)
    accepted = [w.offer(shown(f"r{n}", "u1", time.time())) for n in range(5)]
    assert accepted == [True, True, True, False, False]
    assert metrics.registry.get_sample_value("rec_impressions_dropped_total") == 2
    w.close()
    assert len(list(store.impressions_since(0))) == 3


def test_a_failing_store_keeps_the_batch_for_the_next_flush(store):
    metrics = Metrics()
    w = writer(store, metrics)
    w.offer(shown("r1", "u1", time.time()))
    store.down = True
    assert w.flush() == 0 and w.buffered == 1
    assert [i.request_id for i in w.unwritten("u1")] == ["r1"]  # attribution still finds it
    assert metrics.registry.get_sample_value("rec_impression_write_errors_total") == 1
    store.down = False
    assert w.flush() == 1 and w.buffered == 0
    w.close()


def test_an_event_is_attributed_to_the_latest_answer_that_showed_its_item(store):
    now = time.time()
    store.add_impressions(
        [shown("old", "u1", now - 100), shown("new", "u1", now - 10, items=("a", "x"))], KEEP
    )
    events = [Event("a", "click", now), Event("c", "click", now), Event("zz", "click", now)]
    found = attribute(store, "u1", events, [None, None, None], window_s=3600)
    assert [(f.item_id, f.request_id, f.position) for f in found] == [
        ("a", "new", 1),
        ("c", "old", 3),
    ]
    assert attribute(store, "u1", [Event("c", "click", now)], [None], window_s=50) == []
    assert attribute(store, "u2", [Event("a", "click", now)], [None], window_s=3600) == []


def test_an_event_naming_its_request_is_attributed_to_that_answer_only(store):
    now = time.time()
    store.add_impressions([shown("r1", "u1", now - 100), shown("r2", "u1", now - 10)], KEEP)
    [f] = attribute(store, "u1", [Event("b", "like", now, 2.0)], ["r1"], window_s=3600)
    assert (f.request_id, f.position, f.type, f.weight, f.positive) == ("r1", 2, "like", 2.0, True)
    assert attribute(store, "u2", [Event("b", "click", now)], ["r1"], window_s=3600) == []
    assert attribute(store, "u1", [Event("zz", "click", now)], ["r1"], window_s=3600) == []
    assert attribute(store, "u1", [Event("b", "click", now)], ["r1"], window_s=50) == []
    unwritten = [shown("r3", "u1", now - 1, items=("q",))]
    [f] = attribute(store, "u1", [Event("q", "hide", now)], ["r3"], 3600, unwritten)
    assert (f.request_id, f.positive) == ("r3", False)


def test_event_types_have_weights_and_negatives_weigh_nothing():
    assert [weight_of(t, None) for t in ("read", "click", "like", "purchase", "share")] == [
        1.0,
        1.0,
        2.0,
        5.0,
        1.0,
    ]
    assert weight_of("click", 3.0) == 3.0
    assert weight_of("hide", 3.0) == weight_of("dislike", None) == 0.0


def test_negative_events_are_excluded_even_without_exclude_seen_and_leave_the_history():
    events = [Event("a", "read", 1), Event("b", "hide", 2), Event("c", "dislike", 3)]
    state = UserState("u1", None, events)
    assert state.history == ["a"]
    kept_seen = Exclusions.of(RecommendationQuery("u1", exclude_seen=False), state)
    assert list(kept_seen.ordered) == ["c", "b"]
    assert list(Exclusions.of(RecommendationQuery("u1"), state).ordered) == ["c", "b", "a"]


@pytest.mark.anyio
async def test_the_loop_over_http_counts_impressions_positives_and_ctr(client, store):
    body = (await client.post("/v1/recommendations", json={"user_id": "u1", "k": 4})).json()
    [first, second, *_] = [i["item_id"] for i in body["items"]]
    events = [
        {"item_id": second, "type": "click", "request_id": body["request_id"]},
        {"item_id": second, "type": "like"},  # the same shown item again: not a second click
        {"item_id": first, "type": "hide"},
        {"item_id": "never_shown", "type": "click"},
    ]
    answer = (await client.post("/v1/users/u1/events", json={"events": events})).json()
    assert answer["accepted"] == 4 and answer["attributed"] == 3
    [online] = (await client.get("/v1/models")).json()["online"]
    assert online == {
        "model_version": "fake_1",
        "variant": "default",
        "impressions": 1,
        "items_shown": 4,
        "positives": 1,
        "negatives": 1,
        "ctr": 0.25,
        "mean_click_position": 2.0,
    }
    [variant] = (await client.get("/v1/experiments")).json()["variants"]
    assert (variant["name"], variant["model_version"], variant["online"]) == (
        "default",
        "fake_1",
        [online],
    )
    metrics = (await client.get("/metrics")).text
    assert 'rec_attributed_positives_total{model_version="fake_1",variant="default"} 1.0' in metrics
    assert "u1" not in metrics  # no user ids in labels
    again = (await client.post("/v1/recommendations", json={"user_id": "u1", "k": 40})).json()
    assert first not in [i["item_id"] for i in again["items"]]  # hidden: stays out


@pytest.mark.anyio
async def test_impressions_off_logs_and_counts_nothing(serve):
    async with serve(impressions=False, impressions_flush_s=0.01) as client:
        body = (await client.post("/v1/recommendations", json={"user_id": "u1", "k": 4})).json()
        assert (await client.get("/v1/models")).json()["online"] == []
        click = {"item_id": body["items"][0]["item_id"], "request_id": body["request_id"]}
        answer = (await client.post("/v1/users/u1/events", json={"events": [click]})).json()
        assert answer["attributed"] == 0


def test_a_store_failing_during_attribution_leaves_the_events_unattributed(store, make_settings):
    from service.feedback.loop import FeedbackLoop

    metrics = Metrics()
    loop = FeedbackLoop(store, make_settings(), metrics)
    store.down = True
    assert loop.attribute("u1", [Event("a", "click", time.time())], [None]) == 0
    assert metrics.registry.get_sample_value("rec_events_unattributed_total") == 1
    store.down = False
    loop.close()
