"""One contract, two real stores: SQLite on a temp file and a real redis-server."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from pathlib import Path

import pytest

from service.state import Event, StateStore, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path: Path) -> StateStore:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'state.db'}", events_per_user=5)
    else:
        from service.state.redis_store import RedisStore

        url = request.getfixturevalue("redis_url")
        s = RedisStore(url, prefix=f"t{uuid.uuid4().hex[:8]}:", events_per_user=5)
    yield s
    s.close()


def test_profiles_round_trip(store):
    assert store.get_profile("u1") is None
    store.put_profile("u1", {"client_type": "ios", "follow_topic_id": ["t1", "t2"]})
    store.put_profile("u1", {"client_type": "android"})
    assert store.get_profile("u1") == {"client_type": "android"}


def test_events_are_capped_per_user_and_counted_for_popularity(store):
    for i in range(8):
        store.add_events("u1", [Event(f"p{i}", "read", 100.0 + i)])
    store.add_events("u2", [Event("p7", "click", 200.0, 2.0)])
    recent = store.recent_events("u1", 100)
    assert [e.item_id for e in recent] == ["p3", "p4", "p5", "p6", "p7"]  # cap 5, oldest first
    assert [e.item_id for e in store.recent_events("u1", 2)] == ["p6", "p7"]
    assert store.recent_events("nobody", 10) == []
    assert store.popular_items(1) == [("p7", 3.0)]
    assert len(store.popular_items(100)) == 8  # the capped-away events still count


def test_changes_feed_keeps_the_latest_state_in_sequence_order(store):
    s1 = store.put_items([("a", {"topic_id": "t1"}), ("b", {"topic_id": "t2"})])
    s2 = store.put_items([("a", {"topic_id": "t3"})])
    s3 = store.delete_items(["b"])
    assert s1 < s2 < s3 == store.last_seq()
    changes = store.changes_since(0)
    assert [(c.item_id, c.row) for c in changes] == [("a", {"topic_id": "t3"}), ("b", None)]
    assert [c.item_id for c in store.changes_since(s2)] == ["b"]
    assert store.changes_since(s3) == []


def test_queue_claims_leases_and_acks_the_latest_change(store):
    store.put_items([("a", {"x": 1}), ("b", {"x": 2})])
    assert store.item_status("a").state == "queued"
    assert store.pending_count() == 2
    claimed = store.claim_pending(10, lease_s=30)
    assert [c.item_id for c in claimed] == ["a", "b"]
    assert store.claim_pending(10, lease_s=30) == []  # leased: nobody else takes them
    store.put_items([("b", {"x": 3})])  # changed while being indexed
    store.ack(claimed, "v1")
    assert store.item_status("a").state == "indexed"
    assert store.item_status("a").indexed_version == "v1"
    assert store.item_status("b").state == "queued"
    again = store.claim_pending(10, lease_s=30)
    assert [(c.item_id, c.row) for c in again] == [("b", {"x": 3})]
    store.ack(again, "v1")
    assert store.pending_count() == 0


def test_expired_lease_is_taken_again(store):
    store.put_items([("a", {"x": 1})])
    assert len(store.claim_pending(10, lease_s=0.2)) == 1
    time.sleep(0.3)
    assert [c.item_id for c in store.claim_pending(10, lease_s=30)] == ["a"]


def test_a_renewed_lease_is_kept_and_a_changed_item_is_not_renewed(store):
    store.put_items([("a", {"x": 1}), ("b", {"x": 1})])
    claimed = store.claim_pending(10, lease_s=0.3)
    store.put_items([("b", {"x": 2})])  # a change since the claim: free for anyone at once
    store.renew(claimed, lease_s=30)
    time.sleep(0.4)
    assert [c.item_id for c in store.claim_pending(10, lease_s=30)] == ["b"]


def test_delete_is_queued_then_reported_deleted(store):
    store.put_items([("a", {"x": 1})], indexed_version="v1")
    assert store.item_status("a").state == "indexed"
    store.delete_items(["a"])
    claimed = store.claim_pending(10, lease_s=30)
    assert claimed[0].deleted
    store.ack(claimed, "v1")
    assert store.item_status("a").state == "deleted"
    assert store.item_status("missing") is None


def test_model_swap_requeues_items_indexed_elsewhere(store):
    store.put_items([("a", {"x": 1}), ("b", {"x": 2})], indexed_version="v1")
    store.put_items([("c", {"x": 3})], indexed_version="v2")
    assert store.requeue_not_indexed_in("v2") == 2
    assert sorted(c.item_id for c in store.claim_pending(10, 30)) == ["a", "b"]


def test_a_refused_change_is_retried_then_failed_with_its_reason(store):
    store.put_items([("a", {"x": 1}), ("b", {"x": 2})])
    [a, b] = store.claim_pending(10, lease_s=30)
    store.ack([b], "v1")
    assert store.fail(a, "vector is NaN", max_attempts=2, retry_in_s=0.2) is False
    status = store.item_status("a")
    assert (status.state, status.error, status.attempts) == ("queued", "vector is NaN", 1)
    assert store.claim_pending(10, lease_s=30) == []  # not before retry_in_s
    time.sleep(0.3)
    [again] = store.claim_pending(10, lease_s=30)
    assert store.fail(again, "vector is NaN", max_attempts=2, retry_in_s=0.2) is True
    status = store.item_status("a")
    assert (status.state, status.error, status.attempts) == ("failed", "vector is NaN", 2)
    assert store.pending_count() == 0
    assert [s.item_id for s in store.failed_items()] == ["a"]
    assert store.item_status("b").state == "indexed"


def test_failed_items_are_retried_on_request_or_by_a_new_change(store):
    store.put_items([("a", {"x": 1}), ("b", {"x": 2}), ("c", {"x": 3})])
    for claimed in store.claim_pending(10, lease_s=30):
        assert store.fail(claimed, "refused", max_attempts=1, retry_in_s=0)
    assert store.retry_failed(["a", "missing"]) == 1
    assert store.item_status("a").state == "queued" and store.item_status("a").attempts == 0
    store.put_items([("b", {"x": 4})])  # a fix of the row starts over
    assert (store.item_status("b").state, store.item_status("b").error) == ("queued", None)
    assert [s.item_id for s in store.failed_items()] == ["c"]
    assert store.retry_failed() == 1
    assert store.failed_items() == []
    claimed = store.claim_pending(10, lease_s=30)
    assert sorted(c.item_id for c in claimed) == ["a", "b", "c"]
    store.ack(claimed, "v1")
    assert {store.item_status(i).state for i in "abc"} == {"indexed"}
    assert store.item_status("c").error is None


def test_a_change_made_after_the_claim_is_not_failed(store):
    store.put_items([("a", {"x": 1})])
    [claimed] = store.claim_pending(10, lease_s=30)
    store.put_items([("a", {"x": 2})])
    assert store.fail(claimed, "refused", max_attempts=1, retry_in_s=0) is False
    assert store.item_status("a").state == "queued"
    assert [c.row for c in store.claim_pending(10, lease_s=30)] == [{"x": 2}]


def test_a_model_swap_retries_failed_items(store):
    store.put_items([("a", {"x": 1})])
    [claimed] = store.claim_pending(10, lease_s=30)
    store.fail(claimed, "refused", max_attempts=1, retry_in_s=0)
    assert store.requeue_not_indexed_in("v2") == 1
    assert store.item_status("a").state == "queued" and store.failed_items() == []
    [again] = store.claim_pending(10, lease_s=30)
    assert store.fail(again, "refused", max_attempts=2, retry_in_s=0) is False  # attempts reset


def test_popular_items_leave_out_deleted_items(store):
    store.add_events("u", [Event("a", "read", 1.0), Event("a", "read", 2.0), Event("b", "read", 3)])
    store.put_items([("a", {}), ("b", {})], indexed_version="v1")
    store.delete_items(["a"])
    assert [i for i, _ in store.popular_items(5)] == ["b"]


def test_meta_records(store):
    assert store.get_meta("rollout") is None
    store.put_meta("rollout", "v2")
    store.put_meta("rollout", "v3")
    assert store.get_meta("rollout") == "v3"


def _writer(path: str, worker: int) -> None:
    store = open_store(f"sqlite:///{path}", events_per_user=5)
    for i in range(50):
        store.put_items([(f"w{worker}-{i}", {"i": i})])
    store.close()


def test_sqlite_is_safe_with_several_processes(tmp_path: Path):
    path = str(tmp_path / "shared.db")
    open_store(f"sqlite:///{path}", events_per_user=5).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = open_store(f"sqlite:///{path}", events_per_user=5)
    changes = store.changes_since(0)
    assert len(changes) == 150
    assert sorted(c.seq for c in changes) == list(range(1, 151))  # no sequence number reused
    store.close()


def test_unreachable_redis_fails_fast_with_a_store_error():
    from service.loopback import free_port
    from service.state import StoreError
    from service.state.redis_store import RedisStore

    started = time.monotonic()
    with pytest.raises(StoreError, match="redis store"):
        RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    assert time.monotonic() - started < 5


def test_the_redis_prefix_setting_keeps_deployments_apart(redis_url):
    from service.settings import Settings
    from service.wiring import store_from_settings

    blue, green = (
        store_from_settings(
            Settings(store_uri=redis_url, redis_prefix=f"{name}{uuid.uuid4().hex[:6]}:")
        )
        for name in ("blue", "green")
    )
    blue.put_profile("u1", {"colour": "blue"})
    blue.put_items([("a", {"x": 1})])
    assert green.get_profile("u1") is None and green.pending_count() == 0
    assert blue.get_profile("u1") == {"colour": "blue"} and blue.pending_count() == 1
    blue.close()
    green.close()


def test_a_store_written_before_failures_were_tracked_opens_and_works(tmp_path: Path):
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE items (item_id TEXT PRIMARY KEY, row TEXT, seq INTEGER NOT NULL, "
        "pending INTEGER NOT NULL, lease_until REAL NOT NULL DEFAULT 0, indexed_seq INTEGER "
        "NOT NULL DEFAULT 0, indexed_version TEXT, updated_at REAL NOT NULL)"
    )
    db.execute("INSERT INTO items VALUES ('a', '{}', 1, 1, 0, 0, NULL, 0)")
    db.commit()
    db.close()
    store = open_store(f"sqlite:///{path}")
    [claimed] = store.claim_pending(10, lease_s=30)
    assert store.fail(claimed, "refused", max_attempts=1, retry_in_s=0)
    assert store.item_status("a").state == "failed"
    store.close()


def _impression(request_id: str, user_id: str, ts: float, items=("a", "b")):
    from service.feedback.records import Impression, ShownItem

    shown = tuple(ShownItem(i, n, 0.5, "retrieval") for n, i in enumerate(items, start=1))
    return Impression(
        request_id, ts, user_id, "v1", "default", shown, {"client_type": "ios"}, {"f": [1]}
    )


def test_impressions_are_found_by_request_and_by_user_newest_first(store):
    from service.state import Retention

    keep = Retention(max_rows=100, max_age_s=3600)
    now = time.time()
    store.add_impressions(
        [_impression("r1", "u1", now - 30), _impression("r2", "u2", now - 20)], keep
    )
    store.add_impressions([_impression("r3", "u1", now - 10, items=("c",))], keep)
    found = store.impression("r1")
    assert found == _impression("r1", "u1", now - 30)  # every field round-trips
    assert found.position_of("b") == 2 and found.position_of("z") is None
    assert store.impression("missing") is None
    assert [i.request_id for i in store.recent_impressions("u1", now - 3600, 10)] == ["r3", "r1"]
    assert [i.request_id for i in store.recent_impressions("u1", now - 15, 10)] == ["r3"]
    assert [i.request_id for i in store.recent_impressions("u1", now - 3600, 1)] == ["r3"]
    assert [i.request_id for i in store.impressions_since(0)] == ["r1", "r2", "r3"]
    assert [i.request_id for i in store.impressions_since(now - 25)] == ["r2", "r3"]


def test_the_impression_log_keeps_at_most_its_row_count(store):
    from service.state import Retention

    now = time.time()
    for n in range(5):
        store.add_impressions([_impression(f"r{n}", "u1", now)], Retention(3, 3600))
    assert [i.request_id for i in store.impressions_since(0)] == ["r2", "r3", "r4"]
    assert store.impression("r0") is None


def test_the_impression_log_drops_rows_older_than_its_age(store):
    from service.state import Retention

    store.add_impressions([_impression("old", "u1", time.time())], Retention(100, 3600))
    time.sleep(1.1)
    store.add_impressions([_impression("new", "u1", time.time())], Retention(100, 1))
    assert [i.request_id for i in store.impressions_since(0)] == ["new"]


def test_feedback_marks_the_first_positive_of_each_request_and_item(store):
    from service.feedback.records import Feedback
    from service.state import Retention

    keep = Retention(100, 3600)

    def fb(item_id: str, kind: str, positive: bool, request_id: str = "r1") -> Feedback:
        return Feedback(request_id, "u1", item_id, kind, 1.0, 10.0, positive, 1, "v1", "default")

    first = store.add_feedback([fb("a", "click", True), fb("a", "like", True)], keep)
    assert [f.first for f in first] == [True, False]
    later = store.add_feedback(
        [fb("a", "click", True), fb("b", "hide", False), fb("a", "click", True, "r2")], keep
    )
    assert [f.first for f in later] == [False, False, True]
    assert [(f.item_id, f.type, f.first) for f in store.feedback_since(0)] == [
        ("a", "click", True),
        ("a", "like", False),
        ("a", "click", False),
        ("b", "hide", False),
        ("a", "click", True),
    ]
    assert list(store.feedback_since(time.time() + 60)) == []
