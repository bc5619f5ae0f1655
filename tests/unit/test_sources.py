"""Candidate sources over the fakes: quotas, merging, trending counts, the fill when a source
fails, explanations, session events, diversity and exploration."""

from __future__ import annotations

import numpy as np
import pytest

from service.metrics import Metrics
from service.online.domain import Diversity, RecommendationQuery
from service.online.recommender import Recommender
from service.online.sources.found import Found
from service.online.sources.merge import merge
from service.online.sources.plan import check_shares, plan
from service.online.sources.trending import TrendingCounter
from service.state import Event
from service.validation import InvalidInput

pytestmark = pytest.mark.anyio
ALL = {"two_tower": 0.4, "item_to_item": 0.3, "trending": 0.2, "fresh": 0.1}


@pytest.fixture
def recommend(index, store, model, make_settings):
    made: list[Recommender] = []

    async def run(user_id: str = "known", settings: dict | None = None, **query):
        made.append(Recommender(index, store, make_settings(**(settings or {})), Metrics()))
        return await made[-1].recommend(model, RecommendationQuery(user_id, **query))

    yield run
    for recommender in made:
        recommender.close()


def test_quotas_follow_the_shares_and_add_up_to_the_limit():
    quotas = plan({"two_tower": 0.5, "item_to_item": 0.3, "fresh": 0.2}, 7).quotas
    assert sum(quotas.values()) == 7 and list(quotas) == ["two_tower", "item_to_item", "fresh"]
    assert quotas == {"two_tower": 4, "item_to_item": 2, "fresh": 1}
    with pytest.raises(InvalidInput) as bad:
        check_shares({"two_tower": 0.5, "bogus": 0.5})
    assert bad.value.field == "sources.bogus"


def test_merge_takes_quotas_then_fills_from_the_others_and_lists_every_source():
    found = {
        "two_tower": Found(["a", "b", "c", "d"], [0.9, 0.8, 0.7, 0.6]),
        "item_to_item": Found(["b", "e"], [0.95, 0.5], ["s1", "s2"]),  # short: 2 of its 3
        # "trending" failed: no entry
    }
    merged = merge(plan({"two_tower": 0.4, "item_to_item": 0.3, "trending": 0.3}, 6), found, 6)
    assert merged.ids == ["a", "b", "e", "c", "d"]  # b once; c, d fill for the short ones
    b = merged.at(1).explanation
    assert b.reason == "for_you" and b.sources == ("two_tower", "item_to_item")
    assert b.retrieval_scores == {"two_tower": 0.8, "item_to_item": 0.95} and b.similar_to == "s1"
    e = merged.at(2).explanation
    assert e.reason == "similar_to" and e.similar_to == "s2" and merged.scores[2] == 0.5


def test_trending_ranks_by_decayed_weight_in_bounded_memory():
    now = [1000.0]
    counter = TrendingCounter(half_life_s=10, capacity=20, refresh_s=0, clock=lambda: now[0])
    counter.add([Event("old", "read", 1000.0, 4.0)])
    now[0] = 1030.0  # three half-lives: old is worth 0.5
    counter.add([Event("new", "read", 1030.0, 1.0)])
    top = dict(counter.top(2))
    assert list(top) == ["new", "old"] and top["old"] == pytest.approx(0.5)
    counter.add([Event(f"x{n}", "read", 1030.0, 2.0) for n in range(30)])
    assert len(counter) <= 20 and "new" not in dict(counter.top(20))
    now[0] = 1030.0 + 10 * 60  # far past the rescale point: still ranks and decays
    counter.add([Event("late", "read", now[0], 1.0)])
    assert counter.top(1)[0][0] == "late"


async def test_every_source_contributes_and_explains(recommend, store, model):
    store.add_events("known", [Event("i3", "read", 1.0), Event("i7", "read", 2.0)])
    store.add_events("other", [Event("i20", "read", 3.0, 5.0)])
    answer = await recommend(k=20, candidates=20, sources=ALL)
    reasons = {i.explanation.reason for i in answer.items}
    assert reasons == {"for_you", "similar_to", "trending", "fresh"}, reasons
    assert not answer.failed_sources and answer.fallback_reason is None
    assert len({i.item_id for i in answer.items}) == 20
    assert not {"i3", "i7"} & {i.item_id for i in answer.items}  # seen items stay out
    for item in answer.items:
        e = item.explanation
        assert e.reason in {"for_you", "similar_to", "trending", "fresh"}
        if e.reason == "similar_to":
            assert e.similar_to in {"i3", "i7"} and "item_to_item" in e.sources
    trending = [i for i in answer.items if i.explanation.reason == "trending"]
    assert trending[0].item_id == "i20"  # the store's counts while this process has none
    fresh = [i for i in answer.items if i.explanation.reason == "fresh"]
    newest = model.items.newest(len(model.items))
    assert fresh and all(i.item_id in newest[:10] for i in fresh)
    for item in fresh:  # newness: 1 for the newest catalog item, 1 / (1 + r) for the r-th
        r = newest.index(item.item_id)
        assert item.retrieval_score == item.explanation.retrieval_scores["fresh"] == 1 / (1 + r)
    for name in ("search", "source_item_to_item", "source_trending", "source_fresh", "merge"):
        assert name in answer.timings_ms


async def test_a_source_past_its_deadline_is_named_and_the_others_fill(recommend, index, store):
    store.add_events("known", [Event("i3", "read", 1.0)])
    index.delay_s = 0.2
    answer = await recommend(
        k=5,
        candidates=20,
        sources={"two_tower": 0.5, "item_to_item": 0.5},
        settings={"source_deadlines_ms": {"item_to_item": 20}},
    )
    assert answer.failed_sources == {"item_to_item": "timeout"}
    assert len(answer.items) == 5 and answer.fallback_reason is None
    assert {i.explanation.reason for i in answer.items} == {"for_you"}


async def test_two_tower_down_leaves_the_others_and_says_so(recommend, index, store):
    store.add_events("other", [Event(f"i{n}", "read", 3.0) for n in range(20, 30)])
    index.down = True
    answer = await recommend(k=5, candidates=10, sources={"two_tower": 0.5, "trending": 0.5})
    assert answer.failed_sources == {"two_tower": "unavailable"}
    assert answer.fallback_reason == "index_unavailable"
    assert [i.explanation.reason for i in answer.items] == ["trending"] * 5


async def test_the_default_is_the_two_tower_search_explained_as_for_you(recommend):
    answer = await recommend(k=5)
    assert answer.failed_sources == {} and "merge" not in answer.timings_ms
    for item in answer.items:
        assert item.explanation.reason == "for_you" and item.explanation.sources == ("two_tower",)
        assert item.explanation.retrieval_scores == {"two_tower": item.retrieval_score}


async def test_session_events_steer_exclude_and_are_not_stored(recommend, store):
    session = [Event("i5", "read", 10.0)]
    plain = await recommend(k=10, candidates=30)
    answer = await recommend(
        k=10, candidates=30, session_events=session, sources={"item_to_item": 1.0}
    )
    ids = [i.item_id for i in answer.items]
    assert "i5" not in ids and ids != [i.item_id for i in plain.items]
    assert {i.explanation.similar_to for i in answer.items} == {"i5"}
    assert store.recent_events("known", 10) == []
    with_vector = await recommend(k=10, candidates=30, session_events=session)
    assert [i.item_id for i in with_vector.items] != [i.item_id for i in plain.items]


async def test_a_cap_per_attribute_value_in_the_top_k(recommend, model):
    answer = await recommend(
        k=6, candidates=40, diversity=Diversity(attribute="topic", max_per_value=2)
    )
    topics = [model.items.attributes(i.item_id)["topic"] for i in answer.items]
    assert len(topics) == 6 and max(topics.count(t) for t in set(topics)) <= 2
    plain = await recommend(k=6, candidates=40)
    plain_topics = [model.items.attributes(i.item_id)["topic"] for i in plain.items]
    assert max(plain_topics.count(t) for t in set(plain_topics)) > 2  # the cap changed it


async def test_mmr_spreads_the_list_and_weight_one_keeps_the_rank_order(recommend, index, model):
    def spread(items):
        v = np.stack(list(index.vectors(model.version, [i.item_id for i in items]).values()))
        sims = v @ v.T
        return float(sims[np.triu_indices(len(v), 1)].mean())

    plain = await recommend(k=8, candidates=40)
    same = await recommend(k=8, candidates=40, diversity=Diversity(mmr_weight=1.0))
    spread_out = await recommend(k=8, candidates=40, diversity=Diversity(mmr_weight=0.3))
    assert [i.item_id for i in same.items] == [i.item_id for i in plain.items]
    assert spread(spread_out.items) < spread(plain.items)


async def test_exploration_slots_come_from_below_the_top_and_are_marked(recommend):
    plain = await recommend(k=5, candidates=40)
    answer = await recommend(k=5, candidates=40, exploration=2)
    top = [i.item_id for i in plain.items]
    assert [i.item_id for i in answer.items[:3]] == top[:3]
    explored = [i for i in answer.items if i.explanation.exploration]
    assert len(explored) == 2 and not {i.item_id for i in explored} & set(top[:3])


async def test_exploration_is_reproducible_from_its_seed(recommend):
    def explored(answer):
        return [i.item_id for i in answer.items if i.explanation.exploration]

    draws = [
        explored(await recommend(k=5, candidates=40, exploration=3, exploration_seed=seed))
        for seed in (7, 7, 8, 9, 10)
    ]
    assert draws[0] == draws[1]
    assert len({tuple(d) for d in draws[1:]}) > 1  # other seeds draw other items


async def test_the_store_counts_trending_falls_back_to_are_read_once_not_per_request(
    index, store, model, make_settings, monkeypatch
):
    store.add_events("other", [Event(f"i{n}", "read", 3.0) for n in range(20, 30)])
    reads = []
    counted = store.popular_items
    monkeypatch.setattr(store, "popular_items", lambda n: reads.append(n) or counted(n))
    recommender = Recommender(index, store, make_settings(), Metrics())
    try:
        for _ in range(3):
            answer = await recommender.recommend(
                model, RecommendationQuery("known", k=5, candidates=10, sources={"trending": 1.0})
            )
            assert [i.explanation.reason for i in answer.items] == ["trending"] * 5
    finally:
        recommender.close()
    assert len(reads) == 1


async def test_item_to_item_takes_seed_vectors_from_the_model_and_the_rest_from_the_index(
    recommend, store, model, index, monkeypatch
):
    store.add_events("known", [Event("i3", "read", 1.0), Event("i7", "read", 2.0)])
    asked: list[list[str]] = []
    lookup, held = index.vectors, model.item_vectors
    monkeypatch.setattr(index, "vectors", lambda v, ids: asked.append(list(ids)) or lookup(v, ids))
    answer = await recommend(k=5, candidates=10, sources={"item_to_item": 1.0})
    assert asked == [] and {i.explanation.similar_to for i in answer.items} <= {"i3", "i7"}

    monkeypatch.setattr(model, "item_vectors", lambda ids: held([i for i in ids if i != "i3"]))
    answer = await recommend(k=10, candidates=20, sources={"item_to_item": 1.0})
    assert asked == [["i3"]]  # only the seed the model does not hold
    assert {i.explanation.similar_to for i in answer.items} == {"i3", "i7"}


async def test_two_tower_and_item_to_item_share_one_index_call(
    recommend, store, index, monkeypatch
):
    store.add_events("known", [Event("i3", "read", 1.0), Event("i7", "read", 2.0)])
    calls: list[int] = []
    search_many = index.search_many
    monkeypatch.setattr(
        index,
        "search_many",
        lambda version, vectors, *rest: (
            calls.append(len(vectors)) or search_many(version, vectors, *rest)
        ),
    )
    answer = await recommend(k=10, candidates=20, sources={"two_tower": 0.5, "item_to_item": 0.5})
    assert calls == [3]  # the user vector and the two seeds
    assert {i.explanation.reason for i in answer.items} == {"for_you", "similar_to"}
    assert not answer.failed_sources
