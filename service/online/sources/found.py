"""What one candidate source returns, and the picks every non-vector source shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.online.domain import Exclusions
from service.online.ports import ServableModel


@dataclass(frozen=True)
class Found:
    """A source's candidates, best first: ids, their scores in that source, and (item-to-item)
    the user's item each one is nearest to."""

    ids: list[str]
    scores: list[float]
    similar_to: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def servable(
    model: ServableModel,
    ranked: Iterable[tuple[str, float]],
    limit: int,
    filters: Mapping[str, Sequence[Any]],
    exclusions: Exclusions,
    scan: int,
) -> Found:
    """The first ``limit`` of ``ranked`` that are in the catalog, pass the filters and are not
    excluded; at most ``scan`` looked at (a narrow filter must not walk the whole catalog)."""
    ids: list[str] = []
    scores: list[float] = []
    for looked, (item_id, score) in enumerate(ranked):
        if len(ids) == limit or looked == scan:
            break
        if item_id in exclusions or item_id not in model.items:
            continue
        if filters and not model.items.matches(item_id, filters):
            continue
        ids.append(item_id)
        scores.append(score)
    return Found(ids, scores)
