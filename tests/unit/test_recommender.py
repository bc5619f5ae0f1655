"""The recommender over the fakes: every fallback reason, deadlines, exclusions, cold start,
filters and the errors that must not be served as a fallback."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from service.metrics import Metrics
from service.online.domain import RecommendationQuery
from service.online.ports import RankerError
from service.online.recommender import Recommender
from service.state import Event
from service.validation import InvalidInput

pytestmark = pytest.mark.anyio


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def recommend(index, store, model, make_settings, metrics):
    """``await recommend(user_id, **query)`` with settings overridable per test."""

    made: list[Recommender] = []

    async def run(user_id: str = "known", settings: dict | None = None, **query):
        made.append(Recommender(index, store, make_settings(**(settings or {})), metrics))
        return await made[-1].recommend(model, RecommendationQuery(user_id, **query))

    yield run
    for recommender in made:
        recommender.close()


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_ranked_by_the_ranker_not_by_retrieval(recommend, model):
    answer = await recommend(k=10, candidates=40)
    scores = [i.score for i in answer.items]
    assert len(answer.items) == 10 and scores == sorted(scores, reverse=True)
    assert answer.fallback_reason is None and not answer.degraded
    assert {i.source for i in answer.items} == {"retrieval"}
    retrieval = [i.retrieval_score for i in answer.items]
    assert retrieval != sorted(retrieval, reverse=True)  # the ranker reordered the candidates
    ids = [i.item_id for i in answer.items]
    user = model.encode_users([{"user_id": "known"}])
    expected = model.score(user, np.zeros(len(ids), np.int64), model.gather(ids))
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert {"user_state", "user_tower", "search", "gather", "rank", "total"} <= set(
        answer.timings_ms
    )
    assert answer.model_version == "fake_1" and answer.collection == "items_fake_1"


async def test_store_unavailable_serves_a_context_only_user(recommend, store, metrics):
    store.down = True
    answer = await recommend("someone", k=5)
    assert answer.fallback_reason == "store_unavailable" and answer.degraded
    assert len(answer.items) == 5 and {i.source for i in answer.items} == {"retrieval"}
    assert counted(metrics, "rec_fallbacks_total", reason="store_unavailable") == 1


async def test_index_unavailable_serves_popular_items_ranked(recommend, index, model, metrics):
    index.down = True
    answer = await recommend(k=5, filter={"topic": ["t2"]})
    assert answer.fallback_reason == "index_unavailable"
    assert {i.source for i in answer.items} == {"popular"}
    assert all(i.retrieval_score is None and i.score is not None for i in answer.items)
    assert all(model.items.attributes(i.item_id)["topic"] == "t2" for i in answer.items)
    assert counted(metrics, "rec_fallbacks_total", reason="index_unavailable") == 1


async def test_search_past_its_deadline_falls_back_in_time(recommend, index):
    index.delay_s = 0.5
    started = time.monotonic()
    answer = await recommend(k=5, settings={"search_deadline_ms": 50})
    assert time.monotonic() - started < 0.4
    assert answer.fallback_reason == "index_timeout"
    assert {i.source for i in answer.items} == {"popular"}


async def test_ranker_failure_serves_retrieval_order(recommend, model, metrics):
    model.rank_error = RankerError("ranker.onnx: boom")
    answer = await recommend(k=8)
    assert answer.fallback_reason == "ranker_failed"
    retrieval = [i.retrieval_score for i in answer.items]
    assert len(retrieval) == 8 and retrieval == sorted(retrieval, reverse=True)
    assert all(i.score == i.retrieval_score for i in answer.items)
    assert counted(metrics, "rec_fallbacks_total", reason="ranker_failed") == 1


async def test_ranker_past_its_deadline_serves_retrieval_order(recommend, model):
    model.rank_delay_s = 0.5
    started = time.monotonic()
    answer = await recommend(k=8, settings={"rank_deadline_ms": 50})
    assert time.monotonic() - started < 0.4
    assert answer.fallback_reason == "ranker_timeout"
    assert [i.score for i in answer.items] == [i.retrieval_score for i in answer.items]


async def test_a_bug_in_the_ranker_is_not_served_as_a_fallback(recommend, model):
    model.rank_error = TypeError("a programming error")
    with pytest.raises(TypeError):
        await recommend(k=5)


async def test_the_reason_given_is_the_one_that_changed_the_answer_most(
    recommend, store, index, model, metrics
):
    store.down, index.down = True, True
    model.rank_error = RankerError("boom")
    answer = await recommend(k=5)
    assert answer.fallback_reason == "index_unavailable"
    assert {i.source for i in answer.items} == {"popular"}  # the bundle's popular items
    for reason in ("store_unavailable", "index_unavailable", "ranker_failed"):
        assert counted(metrics, "rec_fallbacks_total", reason=reason) == 1, reason


async def test_excluded_and_seen_items_never_come_back(recommend, store, items):
    ids = list(items)
    store.add_events("reader", [Event(i, "read", float(n)) for n, i in enumerate(ids[:10])])
    answer = await recommend("reader", k=40, candidates=40, exclude_item_ids=ids[10:15])
    got = {i.item_id for i in answer.items}
    assert len(got) == 25 and not got & set(ids[:15])
    shown = await recommend("reader", k=40, candidates=40, exclude_seen=False)
    assert set(ids[:10]) <= {i.item_id for i in shown.items}


async def test_exclusions_past_the_index_limit_are_still_left_out(recommend, store, items):
    """1000 ids go to the index; the user's seen items after them are dropped afterwards."""
    ids = list(items)
    store.add_events("busy", [Event(i, "read", float(n)) for n, i in enumerate(ids[:5])])
    padding = [f"gone{n}" for n in range(1000)]
    answer = await recommend("busy", k=40, candidates=40, exclude_item_ids=padding)
    assert not {i.item_id for i in answer.items} & set(ids[:5])
    assert len(answer.items) == 35


async def test_popular_fallback_honours_exclusions(recommend, index, items):
    index.down = True
    excluded = list(items)[-5:]  # the fake's popular list starts with these
    answer = await recommend(k=10, exclude_item_ids=excluded)
    assert not {i.item_id for i in answer.items} & set(excluded)
    assert len(answer.items) == 10


async def test_cold_start_until_anything_is_known(recommend, store, metrics):
    assert (await recommend("stranger", k=3)).cold_start is True
    assert (await recommend("known", k=3)).cold_start is False  # the towers know the id
    store.put_profile("profiled", {"age_band": "old"})
    assert (await recommend("profiled", k=3)).cold_start is False
    store.add_events("stranger", [Event("i1", "read", 1.0)])
    assert (await recommend("stranger", k=3)).cold_start is False
    assert counted(metrics, "rec_cold_starts_total") == 1


async def test_recent_events_move_the_user_vector(recommend, store, items):
    before = await recommend("newcomer", k=5, candidates=5)
    topic_ids = [i for i, row in items.items() if row["topic"] == "t1"]
    store.add_events("newcomer", [Event(i, "read", 1.0) for i in topic_ids[:5]])
    after = await recommend("newcomer", k=5, candidates=5)
    assert [i.item_id for i in before.items] != [i.item_id for i in after.items]


async def test_filters_apply_to_retrieval(recommend, model):
    answer = await recommend(k=20, filter={"topic": ["t0", "t3"]})
    assert answer.items and all(
        model.items.attributes(i.item_id)["topic"] in ("t0", "t3") for i in answer.items
    )
    assert (await recommend(k=5, filter={"topic": ["no-such-topic"]})).items == []


async def test_an_empty_answer_says_why_and_keeps_every_timing(recommend, items):
    full = await recommend(k=5)
    assert full.items and full.empty_reason is None
    nothing = await recommend(k=5, filter={"topic": ["no-such-topic"]})
    assert nothing.items == [] and nothing.empty_reason == "filter_matched_nothing"
    assert set(nothing.timings_ms) >= set(full.timings_ms) - {"catalog_sync"}
    excluded = await recommend("stranger", k=5, exclude_item_ids=list(items))
    assert excluded.items == [] and excluded.empty_reason == "all_excluded"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"context": {"colour": "red"}}, "context.colour"),
        ({"user_features": {"user_id": "x"}}, "user_features.user_id"),
        ({"user_features": {"recent": ["i1"]}}, "user_features.recent"),
        ({"filter": {"quality": [1]}}, "filter.quality"),
        ({"user_features": {"favs": ["t1:abc"]}}, "user_features.favs"),
        ({"user_features": {"favs": ["t1:inf"]}}, "user_features.favs"),
        ({"filter": {"topic": [3]}}, "filter"),
    ],
)
async def test_what_the_model_cannot_take_is_invalid_input(recommend, query, field):
    with pytest.raises(InvalidInput) as caught:
        await recommend(k=5, **query)
    assert caught.value.field == field


async def test_a_bad_row_fails_only_its_own_request_in_a_batch(index, store, model, make_settings):
    """Concurrent requests share the user stage's batch; a row that does not encode is that
    request's 422 and the others are served."""
    recommender = Recommender(index, store, make_settings(batch_window_ms=20), Metrics())
    bad = RecommendationQuery("known", k=3, user_features={"favs": ["t1:abc"]})
    try:
        good_first = await recommender.recommend(model, RecommendationQuery("known", k=3))
        answers = await asyncio.gather(
            *(recommender.recommend(model, RecommendationQuery(f"u{n}", k=3)) for n in range(6)),
            recommender.recommend(model, bad),
            return_exceptions=True,
        )
    finally:
        recommender.close()
    assert isinstance(answers[-1], InvalidInput) and answers[-1].field == "user_features.favs"
    assert all(len(a.items) == 3 and not a.degraded for a in [good_first, *answers[:-1]])


async def test_an_item_added_elsewhere_is_ranked_with_its_features(recommend, model, store):
    """Another process indexed an item this model's catalog has not seen yet: the ranker syncs
    the catalog in the request instead of ranking the item as unknown."""
    row = {"item_id": "late", "topic": "late_topic", "quality": [2.0]}
    model.write_items([("late", row)], [])
    store.put_items([("late", row)], indexed_version=model.version)
    assert "late" not in model.items
    answer = await recommend(k=5, filter={"topic": ["late_topic"]})
    assert [i.item_id for i in answer.items] == ["late"]
    assert "catalog_sync" in answer.timings_ms and "late" in model.items


async def test_a_stored_profile_that_no_longer_encodes_is_served_without_it(
    recommend, store, metrics
):
    """Bad input persisted (or a schema change) must not make every request of the user a 500."""
    store.put_profile("known", {"favs": ["t1:1e39"], "age_band": "young"})
    answer = await recommend("known", k=5)
    assert answer.fallback_reason == "profile_unencodable" and answer.degraded
    assert len(answer.items) == 5 and {i.source for i in answer.items} == {"retrieval"}
    assert counted(metrics, "rec_fallbacks_total", reason="profile_unencodable") == 1


async def test_a_request_value_that_does_not_encode_is_still_the_request_s_fault(recommend, store):
    store.put_profile("known", {"favs": ["t1:1e39"]})
    with pytest.raises(InvalidInput):
        await recommend("known", k=5, user_features={"favs": ["t2:nan"]})
