"""Quality figures of the recommender's answers: Recall / NDCG against held-out positives
(`training.evaluate.ranked_list_metrics`, the offline definitions), intra-list diversity and
which source each item came from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from service.online.domain import Recommendation, RecommendedItem
from training.evaluate import ranked_list_metrics

Order = Callable[[list[RecommendedItem]], list[RecommendedItem]]


def ranker_order(items: list[RecommendedItem]) -> list[RecommendedItem]:
    return items


def two_tower_order(items: list[RecommendedItem]) -> list[RecommendedItem]:
    """The two-tower search's own order (cosine), as if no ranker followed."""
    scores = [i.explanation.retrieval_scores.get("two_tower") for i in items]
    return [items[n] for n in np.argsort([-(s or -np.inf) for s in scores], kind="stable")]


def list_metrics(
    answers: Sequence[Recommendation],
    positives: Sequence[np.ndarray],
    row_of: Mapping[str, int],
    ks: Sequence[int],
    order: Order = ranker_order,
) -> dict[str, float]:
    """Recall@K, HitRate@K and NDCG@K of each answer's items in ``order``; ``positives[u]``
    are catalog rows, ``row_of`` maps an item id to its row."""
    ranked = [np.array([row_of[i.item_id] for i in order(a.items)], np.int64) for a in answers]
    return ranked_list_metrics(ranked, positives, ks)


def intra_list_diversity(
    answers: Sequence[Recommendation], vectors: Mapping[str, np.ndarray], k: int
) -> float:
    """Mean over answers of the mean pairwise cosine distance (1 - cos) of the first ``k``
    items' vectors (unit vectors: the item tower's, as stored in the index)."""
    values = []
    for a in answers:
        v = np.stack([vectors[i.item_id] for i in a.items[:k]])
        if len(v) < 2:
            continue
        sims = v @ v.T
        values.append(1.0 - float(sims[np.triu_indices(len(v), 1)].mean()))
    return round(float(np.mean(values)), 5) if values else 0.0


def distinct_values(
    answers: Sequence[Recommendation],
    attributes: Callable[[str], Mapping[str, Any]],
    name: str,
    k: int,
) -> float:
    """Mean number of distinct values of attribute ``name`` among the first ``k`` items."""
    counts = []
    for a in answers:
        seen: set[Any] = set()
        for item in a.items[:k]:
            value = attributes(item.item_id).get(name)
            seen.update(value if isinstance(value, list | tuple) else [value])
        counts.append(len(seen - {None}))
    return round(float(np.mean(counts)), 3) if counts else 0.0


def source_shares(answers: Sequence[Recommendation], k: int | None = None) -> dict[str, float]:
    """Share of the (first ``k``) items put among the candidates by each source."""
    counts = Counter(i.explanation.reason for a in answers for i in a.items[:k])
    total = sum(counts.values()) or 1
    return {reason: round(n / total, 4) for reason, n in sorted(counts.items())}


def failures(answers: Sequence[Recommendation]) -> dict[str, int]:
    """Answers per failed source or fallback: a measurement with any is not the path's own."""
    counts = Counter(name for a in answers for name in a.failed_sources)
    counts.update(a.fallback_reason for a in answers if a.fallback_reason)
    return dict(counts)
