"""Batching across requests changes nothing in the answers: concurrent requests served through
the batched stages (one Milvus search with nq > 1 and over-fetched exclusions, one ranker run
for all) get the same items in the same order, with the same scores, as each request served
alone through the unbatched stages, on a real bundle, Milvus Lite and SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from service.bundle import load_bundle
from service.index import open_index
from service.indexing import run_index_job
from service.metrics import Metrics
from service.model import load_serving_model
from service.online import stages
from service.online.domain import Exclusions, RecommendationQuery
from service.online.recommender import Recommender
from service.settings import Settings
from service.state import Event, open_store

USERS = 24


@pytest.fixture(scope="module")
def deployed(posts_bundle: Path, posts_dir: Path, tmp_path_factory):
    work = tmp_path_factory.mktemp("batched")
    index = open_index(str(work / "milvus.db"), timeout_s=30)
    store = open_store(f"sqlite:///{work / 's.db'}", events_per_user=50)
    run_index_job(
        load_bundle(posts_bundle), index, posts_dir / "items.parquet", work, catalog=store
    )
    for u in range(USERS):  # different histories: different exclusions per request
        store.add_events(f"u{u}", [Event(f"p{(u * 7 + j) % 300}", "read", j) for j in range(u)])
    model = load_serving_model(posts_bundle, index, store)
    yield model, index, store
    index.close()
    store.close()


def queries(model) -> list[RecommendationQuery]:
    topics = sorted({str(model.items.attributes(f"p{i}")["topic_id"]) for i in range(50)})
    out = []
    for u in range(USERS):
        shape = u % 3
        out.append(
            RecommendationQuery(
                f"u{u}",
                k=10,
                candidates=60,
                context={"client_type": ["ios", "android"][u % 2]},
                filter={"topic_id": topics[:3]} if shape == 1 else {},
                exclude_item_ids=["p1", "p2"] if shape == 2 else [],
            )
        )
    return out


def served_alone(model, index, store, query: RecommendationQuery) -> list[tuple[str, float]]:
    """Today's path, one request at a time: exclusions inside the search expression."""
    state = stages.load_user_state(store, query.user_id, 50)
    user = model.encode_users([stages.user_row(model.rules, state, query.context, {})])
    exclusions = Exclusions.of(query, state)
    found = stages.retrieve(
        index, model, model.embed_users(user)[0], query.candidates, query.filter, exclusions
    )
    ids = [c.item_id for c in found]
    scores = model.score(user, np.zeros(len(ids), np.int64), model.gather(ids))
    return [(ids[i], float(scores[i])) for i in stages.top_k(scores, query.k)]


async def serve_concurrently(recommender: Recommender, model, all_queries) -> list:
    await recommender.recommend(model, all_queries[0])  # a lone request: a batch of one
    return await asyncio.gather(*(recommender.recommend(model, q) for q in all_queries))


def test_concurrent_requests_are_batched_and_answered_as_if_alone(deployed):
    model, index, store = deployed
    metrics = Metrics()
    settings = Settings(search_deadline_ms=20_000, rank_deadline_ms=20_000, batch_window_ms=20)
    recommender = Recommender(index, store, settings, metrics)
    all_queries = queries(model)
    try:
        answers = asyncio.run(serve_concurrently(recommender, model, all_queries))
    finally:
        recommender.close()
    for query, answer in zip(all_queries, answers, strict=True):
        assert answer.fallback_reason is None
        expected = served_alone(model, index, store, query)
        assert [i.item_id for i in answer.items] == [i for i, _ in expected], query
        np.testing.assert_allclose([i.score for i in answer.items], [s for _, s in expected], 1e-5)
    for stage in ("user", "search", "rank"):
        calls = metrics.registry.get_sample_value("rec_batch_size_count", {"stage": stage})
        served = metrics.registry.get_sample_value("rec_batch_size_sum", {"stage": stage})
        assert served == USERS + 1 and calls < served, (stage, calls)  # batches of several
