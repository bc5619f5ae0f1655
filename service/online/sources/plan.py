"""Which candidate sources a request uses and how many candidates each one owes (its quota)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.validation import InvalidInput

SOURCES = ("two_tower", "item_to_item", "trending", "fresh")
DEFAULT_PLAN = {"two_tower": 1.0}


@dataclass(frozen=True)
class SourcePlan:
    """Sources in the order they were named, each with its quota of the ``limit`` candidates
    (quotas add up to ``limit``)."""

    quotas: dict[str, int]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.quotas)

    @property
    def two_tower_only(self) -> bool:
        return self.names == ("two_tower",)


def check_shares(shares: Mapping[str, float], field: str = "sources") -> dict[str, float]:
    """Known source names with shares in (0, 1]; raises `InvalidInput` naming the source."""
    if not shares:
        raise InvalidInput("name at least one candidate source", field)
    for name, share in shares.items():
        if name not in SOURCES:
            raise InvalidInput(
                f"unknown candidate source {name!r} (known: {', '.join(SOURCES)})",
                f"{field}.{name}",
            )
        if not 0 < share <= 1:
            raise InvalidInput(f"share of {name} must be in (0, 1], got {share}", f"{field}.{name}")
    return dict(shares)


def plan(shares: Mapping[str, float], limit: int) -> SourcePlan:
    """Quotas proportional to the shares (largest remainders), so they add up to ``limit``."""
    total = sum(shares.values())
    exact = {name: limit * share / total for name, share in shares.items()}
    quotas = {name: int(q) for name, q in exact.items()}
    by_remainder = sorted(exact, key=lambda n: exact[n] - quotas[n], reverse=True)
    for name in by_remainder[: limit - sum(quotas.values())]:
        quotas[name] += 1
    return SourcePlan(quotas)
