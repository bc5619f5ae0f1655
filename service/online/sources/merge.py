"""Merging the sources' candidates: each source first fills its quota with items no source
before it took, then the sources that have more fill what is left, in turn (a source that
failed or came up short leaves its share to the others). An item several sources found is
ranked once and lists them all."""

from __future__ import annotations

from collections.abc import Mapping

from service.online.domain import Candidates, Explanation, ReasonKind
from service.online.sources.found import Found
from service.online.sources.plan import SourcePlan

REASONS: dict[str, ReasonKind] = {
    "two_tower": "for_you",
    "item_to_item": "similar_to",
    "trending": "trending",
    "fresh": "fresh",
}


class _Merge:
    def __init__(self, plan: SourcePlan, found: Mapping[str, Found]) -> None:
        self.found = {name: found[name] for name in plan.names if name in found}
        self.cursor = dict.fromkeys(self.found, 0)
        self.taken: dict[str, str] = {}  # item -> the source that took it
        self.scores: dict[str, dict[str, float]] = {}
        self.seeds: dict[str, str] = {}
        for name, f in self.found.items():
            for n, item_id in enumerate(f.ids):
                self.scores.setdefault(item_id, {}).setdefault(name, f.scores[n])
                if f.similar_to is not None:
                    self.seeds.setdefault(item_id, f.similar_to[n])

    def take(self, name: str, n: int) -> int:
        """Up to ``n`` more of source ``name``'s items; returns how many it gave."""
        f, given = self.found[name], 0
        while given < n and self.cursor[name] < len(f):
            item_id = f.ids[self.cursor[name]]
            self.cursor[name] += 1
            if item_id not in self.taken:
                self.taken[item_id] = name
                given += 1
        return given

    def candidates(self) -> Candidates:
        ids = list(self.taken)
        explanations = [self._explain(item_id) for item_id in ids]
        scores = [self.scores[i][self.taken[i]] for i in ids]
        return Candidates(ids, scores, "retrieval", explanations)

    def _explain(self, item_id: str) -> Explanation:
        by = self.taken[item_id]
        scores = self.scores[item_id]
        return Explanation(REASONS[by], tuple(scores), dict(scores), self.seeds.get(item_id))


def merge(plan: SourcePlan, found: Mapping[str, Found], limit: int) -> Candidates:
    """Up to ``limit`` distinct candidates: quotas first, in plan order, then the fill."""
    m = _Merge(plan, found)
    for name in m.found:
        m.take(name, plan.quotas[name])
    while len(m.taken) < limit:
        gave = sum(m.take(name, 1) for name in m.found if len(m.taken) < limit)
        if not gave:
            break
    return m.candidates()
