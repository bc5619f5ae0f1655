"""Item-to-item: neighbours of the user's most recent items by item vector.

The seeds' vectors come from the model's in-memory item table (the item tower on their
features; the index is asked only for a seed the table does not hold). A recommendation
searches them in the batched search stage, in the same index call as the user vector
(`service.online.batched.SearchStage`); `neighbours` is the same search on its own (similar
items). A candidate near several seeds keeps its best score and names that seed
(`similar_to`), so a UI can say "because you read X".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.index import VectorIndex
from service.index.port import MAX_LIMIT, HitColumns
from service.online.domain import Exclusions
from service.online.ports import ServableModel
from service.online.sources.found import Found


def seed_vectors(
    index: VectorIndex, model: ServableModel, seeds: Sequence[str]
) -> dict[str, np.ndarray]:
    """The vectors of the seeds that have one, by id."""
    vectors = model.item_vectors(seeds)
    missing = [s for s in seeds if s not in vectors]
    if missing:
        vectors.update(index.vectors(model.version, missing))
    return vectors


def neighbours_fetch(limit: int, exclusions: Exclusions, seeds: int) -> int:
    """Hits to ask per seed: the seeds and the excluded items are dropped after the search."""
    return limit + len(exclusions) + seeds


def nearest(
    seeds: Sequence[str], found: Sequence[HitColumns], limit: int, exclusions: Exclusions
) -> Found:
    """Up to ``limit`` of the seeds' hits (``found``, one per seed), best first; no seed and
    no excluded item."""
    best: dict[str, tuple[float, str]] = {}
    skip = set(seeds)
    for seed, hits in zip(seeds, found, strict=True):
        for item_id, score in zip(hits.ids, hits.scores, strict=True):
            if item_id in skip or item_id in exclusions:
                continue
            if item_id not in best or score > best[item_id][0]:
                best[item_id] = (score, seed)
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:limit]
    return Found(
        [i for i, _ in ranked], [s for _, (s, _) in ranked], [seed for _, (_, seed) in ranked]
    )


def neighbours(
    index: VectorIndex,
    model: ServableModel,
    seeds: Sequence[str],
    limit: int,
    filters: Mapping[str, Sequence[Any]],
    exclusions: Exclusions,
) -> Found:
    """Up to ``limit`` items nearest to any seed, best first, in one index call (nq = seeds)."""
    vectors = seed_vectors(index, model, seeds)
    known = [s for s in seeds if s in vectors]
    if not known:
        return Found([], [], [])
    fetch = min(neighbours_fetch(limit, exclusions, len(known)), MAX_LIMIT)
    found = index.search_many(
        model.version, np.stack([vectors[s] for s in known]), fetch, filters or None
    )
    return nearest(known, found, limit, exclusions)
