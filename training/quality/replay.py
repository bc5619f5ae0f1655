"""Held-out users sent through the real recommender, as the API would send them.

Each evaluated user is asked with the context of their last training interaction and with
every training and validation positive excluded (the offline protocol's exclusions; the
pipeline alone would exclude only the last ``RECSYS_HISTORY_LENGTH`` events)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from service.online.domain import Diversity, Recommendation, RecommendationQuery
from service.online.ports import ServableModel
from service.online.recommender import Recommender

CONCURRENCY = 16  # requests in flight: what lets the stages batch, as under real traffic


@dataclass(frozen=True)
class EvalUser:
    user_id: str
    context: dict[str, Any]
    exclude: list[str]


@dataclass(frozen=True)
class Arm:
    """One way of asking: candidate sources with their shares, ``k`` of ``candidates``, and
    the diversity and exploration settings of the request."""

    name: str
    sources: Mapping[str, float]
    k: int
    candidates: int
    diversity: Diversity | None = None
    exploration: int = 0
    labels: dict[str, Any] = field(default_factory=dict)  # the knob this arm turns, for reports

    def query(self, user: EvalUser, seed: int) -> RecommendationQuery:
        return RecommendationQuery(
            user.user_id,
            k=self.k,
            candidates=self.candidates,
            context=user.context,
            exclude_item_ids=user.exclude,
            sources=dict(self.sources),
            diversity=self.diversity,
            exploration=self.exploration,
            exploration_seed=seed,
        )


async def _replay(
    recommender: Recommender, model: ServableModel, arm: Arm, users: Sequence[EvalUser]
) -> list[Recommendation]:
    answers: list[Recommendation | None] = [None] * len(users)
    limiter = anyio.CapacityLimiter(CONCURRENCY)

    async def one(n: int) -> None:
        async with limiter:
            answers[n] = await recommender.recommend(model, arm.query(users[n], n))

    async with anyio.create_task_group() as tasks:
        for n in range(len(users)):
            tasks.start_soon(one, n)
    return [a for a in answers if a is not None]


def replay(
    recommender: Recommender, model: ServableModel, arm: Arm, users: Sequence[EvalUser]
) -> list[Recommendation]:
    """Every user's answer to ``arm``, in the order of ``users``."""
    return anyio.run(_replay, recommender, model, arm, users)
