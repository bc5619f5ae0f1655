"""The requests a quality run makes: each candidate-source mix at the served candidate count
and at 50, and the diversity knobs (MMR weight, cap per attribute value) on one mix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.online.domain import Diversity
from training.quality.replay import Arm

TWO_TOWER = "two_tower"
DEFAULT_MIXES: dict[str, dict[str, float]] = {
    TWO_TOWER: {"two_tower": 1.0},
    "two_tower+item_to_item": {"two_tower": 0.7, "item_to_item": 0.3},
    "all": {"two_tower": 0.4, "item_to_item": 0.3, "trending": 0.2, "fresh": 0.1},
}
CANDIDATE_CUT = 50  # Recall@50 of a candidate set of this size
DIVERSITY_K = 10


def retrieval_arms(mixes: Mapping[str, Mapping[str, float]], candidates: int) -> list[Arm]:
    """Per mix, ``k`` = candidates: the answer is every candidate in the ranker's order, so one
    request gives the candidate set and the final list (its head is what a smaller ``k``
    returns without diversity)."""
    arms = []
    for name, shares in mixes.items():
        for n in dict.fromkeys((candidates, CANDIDATE_CUT)):
            arms.append(Arm(f"{name}@{n}", shares, n, n, labels={"mix": name, "candidates": n}))
    return arms


def diversity_arms(
    shares: Mapping[str, float],
    candidates: int,
    mmr_weights: Sequence[float],
    caps: Sequence[int],
    attribute: str,
) -> list[Arm]:
    """The top ``DIVERSITY_K`` of ``candidates``: plain, then each MMR weight, then each cap."""
    k = DIVERSITY_K
    arms = [Arm("plain", shares, k, candidates, labels={"knob": "none"})]
    for w in mmr_weights:
        d = Diversity(mmr_weight=w)
        arms.append(Arm(f"mmr={w}", shares, k, candidates, d, labels={"knob": "mmr", "value": w}))
    for m in caps:
        d = Diversity(attribute=attribute, max_per_value=m)
        labels = {"knob": "cap", "value": m, "attribute": attribute}
        arms.append(Arm(f"cap={m}", shares, k, candidates, d, labels=labels))
    return arms
