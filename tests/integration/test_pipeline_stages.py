"""Each online stage on its own, with a real trained bundle behind `ServingModel`, real ONNX
sessions, a real SQLite store and the exact index (the reference Milvus is compared against)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from service.index import open_index
from service.index.port import MAX_EXCLUSIONS
from service.indexing import run_index_job
from service.model import ItemTable, load_serving_model
from service.online import stages
from service.online.batched import SearchJob, SearchStage
from service.online.domain import Exclusions, RecommendationQuery, UserState
from service.online.sources.item_to_item import neighbours
from service.online.store_counts import StoreCounts
from service.state import Event, ItemChange, open_store


@pytest.fixture(scope="module")
def served(posts_bundle: Path, posts_dir: Path, tmp_path_factory):
    from service.bundle import load_bundle

    work = tmp_path_factory.mktemp("stages")
    index = open_index("memory://")
    store = open_store(f"sqlite:///{work / 's.db'}", events_per_user=50)
    run_index_job(
        load_bundle(posts_bundle), index, posts_dir / "items.parquet", work, catalog=store
    )
    model = load_serving_model(posts_bundle, index, store)
    yield model, index, store
    store.close()


def embed(model, row: dict) -> np.ndarray:
    return model.embed_users(model.encode_users([row]))[0]


def test_user_row_layers_profile_request_context_and_history(served):
    model, _, store = served
    store.put_profile("s1", {"follow_topic_id": ["t1"], "all_topic_fav_7": ["t1:1.0"]})
    store.add_events("s1", [Event("p1", "read", 1.0), Event("p2", "click", 2.0)])
    state = stages.load_user_state(store, "s1", 10)
    row = stages.user_row(model.rules, state, {"client_type": "ios"}, {"follow_topic_id": ["t9"]})
    assert row == {
        "follow_topic_id": ["t9"],  # the request overrides the stored profile
        "all_topic_fav_7": ["t1:1.0"],
        "client_type": "ios",
        "client_id": "s1",
        "read_post_id": ["p1", "p2"],  # oldest first, as in training
    }
    assert state.seen == ["p2", "p1"]


def test_cold_start_only_for_users_nobody_knows(served):
    model, _, _ = served
    nobody = UserState("never-seen", None, [])
    assert stages.is_cold_start(model, nobody)
    assert not stages.is_cold_start(model, UserState("u1", None, []))  # in the vocab
    assert not stages.is_cold_start(model, UserState("x", {"follow_topic_id": []}, []))


def test_history_moves_the_user_vector(served):
    model, _, _ = served
    base = {"client_id": "nobody-yet", "read_post_id": []}
    v0 = embed(model, base)
    v1 = embed(model, {**base, "read_post_id": ["p1", "p2", "p3"]})
    assert v0.shape == (model.bundle.manifest.embedding_dim,)
    assert np.isclose(np.linalg.norm(v0), 1.0, atol=1e-3)
    assert float(v0 @ v1) < 0.999
    np.testing.assert_array_equal(v0, embed(model, base))
    np.testing.assert_allclose(v0, model.bundle.embed_users({k: [v] for k, v in base.items()})[0])


def test_exclusions_keep_requested_first_and_cap_at_the_index_limit():
    seen = [Event(f"s{i}", "read", float(i)) for i in range(600)]  # s599 is the most recent
    requested = [f"r{i}" for i in range(600)]
    query = RecommendationQuery("u", exclude_item_ids=requested)
    exclusions = Exclusions.of(query, UserState("u", None, seen))
    ids = exclusions.for_index()
    assert len(ids) == MAX_EXCLUSIONS and len(exclusions) == 1200
    assert ids[:600] == requested and ids[600:] == [f"s{i}" for i in range(599, 199, -1)]
    assert "s0" in exclusions  # beyond what the index is given, still left out
    keep_seen = RecommendationQuery("u", exclude_item_ids=["a", "a"], exclude_seen=False)
    assert Exclusions.of(keep_seen, UserState("u", None, seen)).for_index() == ["a"]


def test_retrieve_matches_brute_force_and_honours_filters(served, posts_dir):
    model, index, _ = served
    vector = embed(model, {"client_id": "u1"})
    hits = stages.retrieve(index, model, vector, 50, None, Exclusions(("p1",)))
    items = pq.read_table(posts_dir / "items.parquet").to_pylist()
    vectors = model.bundle.embed_items(
        {f.name: [r.get(f.name) for r in items] for f in model.bundle.features("item_tower")},
        len(items),
    )
    order = [items[i]["post_id"] for i in np.argsort(-(vectors @ vector))]
    assert [h.item_id for h in hits] == [i for i in order if i != "p1"][:50]
    topic_of = {r["post_id"]: r["topic_id"] for r in items}
    filtered = stages.retrieve(index, model, vector, 20, {"topic_id": ["t2"]}, Exclusions(()))
    assert filtered and all(topic_of[h.item_id] == "t2" for h in filtered)


def test_popular_fallback_respects_catalog_filters_and_exclusions(served):
    model, _, store = served
    store.add_events("pop", [Event("p5", "read", 1.0, 50.0), Event("nope", "read", 1.0, 99.0)])
    none, counts = Exclusions(()), StoreCounts(store)
    got = [c.item_id for c in stages.popular(model, counts, 10, None, none)]
    assert got[0] == "p5" and "nope" not in got  # not in the catalog
    assert len(got) == 10
    assert "p5" not in [
        c.item_id for c in stages.popular(model, counts, 10, None, Exclusions(("p5",)))
    ]
    topic = model.items.attributes("p5")["topic_id"]
    only = stages.popular(model, counts, 5, {"topic_id": [topic]}, none)
    assert all(model.items.attributes(c.item_id)["topic_id"] == topic for c in only)
    assert {c.source for c in only} == {"popular"}


def test_ranker_scores_candidates_in_one_batch_and_top_k_is_stable(served):
    """The request row is encoded once and repeated beside the gathered item rows: the scores
    are the bundle's own on the full raw rows, and one batch scores as items one by one."""
    model, _, store = served
    row = {"client_id": "u1", "read_post_id": ["p1"], "client_type": "ios"}
    ids = ["p1", "p2", "unknown-item", "p3"]
    user = model.encode_users([row])
    scores = model.score(user, np.zeros(len(ids), np.int64), model.gather(ids))
    assert scores.shape == (4,) and ((scores > 0) & (scores < 1)).all()
    one_by_one = [model.score(user, np.zeros(1, np.int64), model.gather([i]))[0] for i in ids]
    np.testing.assert_allclose(scores, one_by_one, rtol=1e-5)
    catalog = {c.item_id: c.row for c in store.changes_since(0, 100_000)}
    item_names = [f.name for f in model.items.features]
    raw = {k: [v] * len(ids) for k, v in row.items()}
    raw |= {name: [catalog.get(i, {}).get(name) for i in ids] for name in item_names}
    np.testing.assert_allclose(scores, model.bundle.rank(raw), rtol=1e-5, atol=1e-6)
    assert list(stages.top_k(np.array([0.2, 0.9, 0.9, 0.1]), 3)) == [1, 2, 0]


def test_item_table_follows_the_change_feed(served):
    model, _, _ = served
    table = ItemTable(model.bundle.encoder, model.items.features, ["topic_id"])
    assert len(table) == 0
    unknown, known = table.gather(["p1"])
    assert not known[0]
    table.apply([ItemChange(1, "p1", {"post_id": "p1", "topic_id": "t1"})])
    table.apply([ItemChange(i, f"n{i}", {"post_id": f"n{i}"}) for i in range(2, 2000)])
    arrays, known = table.gather(["p1", "n1999", "zzz"])
    assert known.tolist() == [True, True, False]
    assert arrays["topic_id"][0] != unknown["topic_id"][0]
    assert table.matches("p1", {"topic_id": ["t1"]}) and not table.matches(
        "p1", {"topic_id": ["x"]}
    )
    table.apply([ItemChange(2000, "p1", None)])
    assert "p1" not in table and len(table) == 1998
    assert table.apply([ItemChange(5, "late", {})]) == 0  # older than the table: ignored


def test_item_table_sync_pages_through_the_store(served, tmp_path):
    model, _, _ = served
    store = open_store(f"sqlite:///{tmp_path / 'paged.db'}", events_per_user=5)
    store.put_items([(f"i{n}", {"post_id": f"i{n}"}) for n in range(25)])
    table = ItemTable(model.bundle.encoder, model.items.features)
    assert table.sync(store, page=10) == 25
    assert len(table) == 25 and table.seq == store.last_seq()
    store.close()


def test_item_vectors_from_the_item_table_are_the_indexed_ones(served):
    model, index, _ = served
    ids = model.items.item_ids()[:50]
    computed = model.item_vectors([*ids, "not-in-the-catalog"])
    indexed = index.vectors(model.version, ids)
    assert set(computed) == set(ids) == set(indexed)
    for item_id in ids:
        np.testing.assert_allclose(computed[item_id], indexed[item_id], rtol=1e-5, atol=1e-6)


def test_one_batched_search_gives_each_job_what_its_own_searches_give(served):
    """User vectors and item-to-item seeds of several requests in one index call: each job's
    candidates and neighbours equal those of `retrieve` and `neighbours` run on their own."""
    model, index, _ = served
    ids = model.items.item_ids()
    many = Exclusions(tuple(ids[100:400]))  # past the over-fetch: searched alone
    jobs = [
        SearchJob(model, embed(model, {"client_id": "u1"}), 30, {}, Exclusions(())),
        SearchJob(model, embed(model, {"client_id": "u2"}), 30, {}, Exclusions(ids[:3]), ids[3:8]),
        SearchJob(model, None, 20, {}, Exclusions(ids[8:10]), (ids[10], "not-in-the-catalog")),
        SearchJob(model, embed(model, {"client_id": "u3"}), 20, {}, many, ids[:2]),
    ]
    results = SearchStage(index)(jobs)
    for job, searched in zip(jobs, results, strict=True):
        if job.vector is None:
            assert searched.candidates is None
        else:
            alone = stages.retrieve(index, model, job.vector, job.limit, None, job.exclusions)
            assert searched.candidates.ids == alone.ids and len(alone.ids) == job.limit
            assert searched.candidates.scores == pytest.approx(alone.scores, abs=1e-6)
        if not job.seeds:
            assert searched.neighbours is None
            continue
        near = neighbours(index, model, job.seeds, job.limit, {}, job.exclusions)
        assert searched.neighbours.ids == near.ids and len(near.ids) == job.limit
        assert searched.neighbours.similar_to == near.similar_to


def test_the_rewritten_ranker_scores_every_row_as_the_exported_one(served):
    """Each request's user side once (`service.bundle.ranker_split`), same scores."""
    model, _, _ = served
    assert model.check_ranker_by_user()
    known = model._user_ids.tokens[:4]  # users the model knows: their sides differ
    rows = [{model.schema.user_key: user_id} for user_id in known]
    users = model.encode_users(rows)
    ids = model.items.item_ids()[:60]
    owners = np.repeat(np.arange(4), 15)
    items = model.gather(ids)
    once = model.score(users, owners, items)
    by_row = model._ranker.run(model._rows(users, owners, items)).reshape(-1)
    np.testing.assert_allclose(once, by_row, atol=1e-6)
    assert len(np.unique(np.round(once, 4))) > 30
