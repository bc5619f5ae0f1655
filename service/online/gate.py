"""The rollout gate: a reload that would serve a worse model is refused unless forced.

Training writes the figures (`recsys train --baseline`, `training/gate.py`): the candidate's
and the serving bundle's ranker AUC and Recall@50 on the same held-out data. Here they are
only compared: the candidate may be worse by at most the configured margins. A candidate
scored against another bundle than the one serving (or against none) has nothing to show
and is refused too; `force` overrides either refusal, and the decision says it was forced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["passed", "refused", "forced", "off"]
# the figures compared, under a bundle's metrics["gate"] (training/gate.py writes them)
GATE_METRICS = ("ranker_auc", "recall@50")


@dataclass(frozen=True)
class GateDecision:
    decision: Decision
    reason: str
    candidate: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    margins: dict[str, float] = field(default_factory=dict)
    baseline_version: str | None = None  # the bundle the candidate was scored against

    @property
    def refused(self) -> bool:
        return self.decision == "refused"


class RolloutRefused(RuntimeError):
    """The gate refused a reload; the previous model keeps serving."""

    def __init__(self, decision: GateDecision) -> None:
        super().__init__(f"rollout gate refused: {decision.reason}; force to serve it anyway")
        self.decision = decision


def decide(
    metrics: Mapping[str, Any],
    candidate_version: str,
    serving_version: str | None,
    margins: Mapping[str, float],
    force: bool = False,
    enabled: bool = True,
) -> GateDecision:
    """Compare a candidate's recorded gate figures with the serving bundle's.
    ``margins``: how much lower than the serving bundle's each figure may be."""
    if not enabled:
        return GateDecision("off", "the rollout gate is off (RECSYS_ROLLOUT_GATE=off)")
    if serving_version is None or serving_version == candidate_version:
        return GateDecision("passed", "no other bundle is serving: nothing to compare")
    gate = metrics.get("gate") or {}
    baseline = dict(gate.get("baseline") or {})
    scored_against = baseline.pop("version", None)
    candidate = dict(gate.get("candidate") or {})
    if scored_against != serving_version:
        reason = (
            f"the candidate was not scored against the serving bundle {serving_version} "
            f"(train it with --baseline <that bundle's folder>)"
        )
        return _refuse_unless(force, reason, candidate, baseline, margins, scored_against)
    worse = [
        f"{name} {candidate.get(name, float('nan')):.4f} < {value:.4f} - {margins[name]}"
        for name, value in baseline.items()
        if name in margins and not candidate.get(name, float("-inf")) >= value - margins[name]
    ]
    if worse:
        reason = f"worse than the serving bundle {serving_version}: {'; '.join(worse)}"
        return _refuse_unless(force, reason, candidate, baseline, margins, scored_against)
    reason = f"no worse than {serving_version}"
    return GateDecision("passed", reason, candidate, baseline, dict(margins), scored_against)


def _refuse_unless(
    force: bool,
    reason: str,
    candidate: dict[str, float],
    baseline: dict[str, Any],
    margins: Mapping[str, float],
    scored_against: str | None,
) -> GateDecision:
    decision: Decision = "forced" if force else "refused"
    return GateDecision(decision, reason, candidate, baseline, dict(margins), scored_against)
