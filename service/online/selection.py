"""The top k of the ranked candidates: the k best scores, or, when the request asks, the
diverse and explored selection of `service.online.diversity`."""

from __future__ import annotations

import logging

import numpy as np

from service.index import IndexUnavailable, VectorIndex
from service.online import diversity as div
from service.online.clock import StageClock, off_loop
from service.online.domain import Candidates, RecommendationQuery
from service.online.ports import ServableModel
from service.online.stages import top_k

log = logging.getLogger(__name__)


async def select(
    index: VectorIndex,
    model: ServableModel,
    candidates: Candidates,
    scores: np.ndarray,
    query: RecommendationQuery,
    clock: StageClock,
) -> list[div.Pick]:
    k, d = query.k, query.diversity
    if d is None and not query.exploration:
        return [div.Pick(p) for p in top_k(scores, k).tolist()]
    with clock.stage("diversity"):
        order: list[int] = np.argsort(-scores, kind="stable").tolist()
        capping = d is not None and d.attribute is not None and d.max_per_value is not None
        if d is not None and d.mmr_weight is not None:
            order = await _mmr(index, model, candidates, scores, d.mmr_weight, k, capping, order)
        if capping:
            assert d is not None and d.attribute is not None and d.max_per_value is not None
            order = div.capped(order, candidates.ids, model.items, d.attribute, d.max_per_value, k)
        rng = np.random.default_rng(query.exploration_seed)
        return div.explore(order[:k], scores, query.exploration, rng)


async def _mmr(
    index: VectorIndex,
    model: ServableModel,
    candidates: Candidates,
    scores: np.ndarray,
    weight: float,
    k: int,
    capping: bool,
    order: list[int],
) -> list[int]:
    """MMR's order of the best-ranked pool (all of it when a cap follows, so the cap has
    items to move up), then the rest by rank; rank order alone if the vectors are away."""
    pool = div.mmr_pool(scores, k)
    ids = [candidates.ids[p] for p in pool]
    try:
        found = await off_loop(lambda: index.vectors(model.version, ids))
    except IndexUnavailable as exc:
        log.warning("item vectors unavailable, no MMR: %s", exc)
        return order
    dim = len(next(iter(found.values()))) if found else 1
    vectors = np.stack([found.get(i, np.zeros(dim, np.float32)) for i in ids])
    head = div.mmr_order(pool, scores, vectors, weight, len(pool) if capping else k)
    chosen = set(head)
    return head + [p for p in order if p not in chosen]
