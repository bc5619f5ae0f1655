"""Item-to-item: neighbours of the user's most recent items by item vector.

The seeds' vectors come from the model's in-memory item table (the item tower on their
features; the index is asked only for a seed the table does not hold), then one batched
search finds every seed's neighbours (nq = seeds); a candidate near several seeds keeps its
best score and names that seed (`similar_to`), so a UI can say "because you read X".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.index import VectorIndex
from service.index.port import MAX_LIMIT
from service.online.domain import Exclusions
from service.online.ports import ServableModel
from service.online.sources.found import Found


def neighbours(
    index: VectorIndex,
    model: ServableModel,
    seeds: Sequence[str],
    limit: int,
    filters: Mapping[str, Sequence[Any]],
    exclusions: Exclusions,
) -> Found:
    """Up to ``limit`` items nearest to any seed, best first; no seed and no excluded item."""
    vectors = model.item_vectors(seeds)
    missing = [s for s in seeds if s not in vectors]
    if missing:
        vectors.update(index.vectors(model.version, missing))
    known = [s for s in seeds if s in vectors]
    if not known:
        return Found([], [], [])
    fetch = min(limit + len(exclusions) + len(known), MAX_LIMIT)
    found = index.search_many(
        model.version, np.stack([vectors[s] for s in known]), fetch, filters or None
    )
    best: dict[str, tuple[float, str]] = {}
    skip = set(known)
    for seed, hits in zip(known, found, strict=True):
        for item_id, score in zip(hits.ids, hits.scores, strict=True):
            if item_id in skip or item_id in exclusions:
                continue
            if item_id not in best or score > best[item_id][0]:
                best[item_id] = (score, seed)
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:limit]
    return Found(
        [i for i, _ in ranked], [s for _, (s, _) in ranked], [seed for _, (_, seed) in ranked]
    )
