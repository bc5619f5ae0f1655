"""After the ranker: which candidates fill the top k when a request asks for diversity or
exploration (without either, the k best rank scores, as always).

- MMR (maximal marginal relevance) over item vectors: each next item maximizes
  ``w * relevance - (1 - w) * its highest cosine to the items already chosen``, relevance being
  the rank score scaled to [0, 1]; ``w`` 1 keeps the ranker's order, 0 only spreads.
- A cap per attribute value: at most ``m`` items per value of an item attribute (for a
  multi-valued attribute, per each of its values) in the top k; an item over the cap is left
  out, so the answer may hold fewer than k items when the candidates are too uniform.
- Exploration: the last ``slots`` places are sampled, by rank score, from the candidates below
  the top, and marked as such in the answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.online.domain import Diversity
from service.online.ports import Catalog

MMR_POOL_FACTOR = 5
MMR_POOL_MIN = 50


@dataclass(frozen=True)
class Pick:
    position: int  # in the candidates
    exploration: bool = False


def mmr_pool(scores: np.ndarray, k: int) -> np.ndarray:
    """The best-ranked positions MMR chooses among (its cost grows with pool x k)."""
    order = np.argsort(-scores, kind="stable")
    return order[: max(MMR_POOL_FACTOR * k, MMR_POOL_MIN)]


def mmr_order(
    pool: np.ndarray, scores: np.ndarray, vectors: np.ndarray, weight: float, k: int
) -> list[int]:
    """The first ``k`` of ``pool`` in MMR order; ``vectors`` are the pool's unit vectors (a
    zero row for an item without one: similar to nothing)."""
    relevance = scores[pool].astype(np.float64)
    spread = relevance.max() - relevance.min()
    relevance = (relevance - relevance.min()) / spread if spread > 0 else np.ones_like(relevance)
    nearest = np.full(len(pool), -np.inf)
    chosen: list[int] = []
    free = np.ones(len(pool), dtype=bool)
    for _ in range(min(k, len(pool))):
        penalty = np.where(np.isfinite(nearest), nearest, 0.0)
        gain = np.where(free, weight * relevance - (1 - weight) * penalty, -np.inf)
        best = int(np.argmax(gain))
        chosen.append(best)
        free[best] = False
        nearest = np.maximum(nearest, vectors @ vectors[best])
    return [int(pool[n]) for n in chosen]


def capped(
    order: Sequence[int],
    ids: Sequence[str],
    catalog: Catalog,
    attribute: str,
    max_per_value: int,
    k: int,
) -> list[int]:
    """The first ``k`` of ``order`` with at most ``max_per_value`` items per attribute value."""
    counts: Counter = Counter()
    kept: list[int] = []
    for position in order:
        values = _values(catalog.attributes(ids[position]), attribute)
        if any(counts[v] >= max_per_value for v in values):
            continue
        counts.update(values)
        kept.append(position)
        if len(kept) == k:
            break
    return kept


def _values(attributes: Mapping[str, object], attribute: str) -> list[object]:
    value = attributes.get(attribute)
    if value is None:
        return []
    return list(dict.fromkeys(value)) if isinstance(value, list | tuple) else [value]


def explore(top: list[int], scores: np.ndarray, slots: int, rng: np.random.Generator) -> list[Pick]:
    """``top`` with its last ``slots`` places given to candidates from outside it, sampled
    without replacement with probability proportional to their rank score."""
    taken = set(top)
    outside = np.array([p for p in range(len(scores)) if p not in taken], dtype=np.int64)
    slots = min(slots, len(top), len(outside))
    if slots == 0:
        return [Pick(p) for p in top]
    kept = top[: len(top) - slots]
    weights = np.clip(np.nan_to_num(scores[outside].astype(np.float64)), 1e-9, None)
    chosen = rng.choice(outside, size=slots, replace=False, p=weights / weights.sum())
    return [Pick(p) for p in kept] + [Pick(int(p), True) for p in chosen]


def needs_vectors(diversity: Diversity | None) -> bool:
    return diversity is not None and diversity.mmr_weight is not None
