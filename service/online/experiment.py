"""An A/B experiment: named variants, each serving its own bundle (and so its own collection,
``items_<bundle version>``) to a share of the users, plus an optional shadow variant computed
beside the served one and never returned.

Assignment is a pure function of the experiment name and the user id (blake2b), so a user sees
the same variant on every call and in every process; a new experiment name reshuffles users.
The record lives in the state store (`EXPERIMENT_KEY`) as JSON; every process follows it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

EXPERIMENT_KEY = "experiment"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_VARIANTS = 8
RESERVED = frozenset({"default"})  # the variant name of traffic outside any experiment


class InvalidExperiment(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Variant:
    name: str
    bundle: str  # the bundle folder, resolved
    weight: float = 0.0  # share of traffic after normalization (0 for the shadow)


@dataclass(frozen=True)
class Experiment:
    """``variants[0]`` is the control the report compares the others with."""

    name: str
    variants: tuple[Variant, ...]
    shadow: Variant | None = None

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(v.weight for v in self.variants)

    def to_json(self) -> str:
        body = {
            "name": self.name,
            "variants": [vars(v) for v in self.variants],
            "shadow": vars(self.shadow) if self.shadow else None,
        }
        return orjson.dumps(body).decode()

    @classmethod
    def from_json(cls, raw: str) -> Experiment:
        b = orjson.loads(raw)
        shadow = Variant(**b["shadow"]) if b.get("shadow") else None
        return cls(b["name"], tuple(Variant(**v) for v in b["variants"]), shadow)


def checked(name: str, variants: Sequence[Variant], shadow: Variant | None) -> Experiment:
    """The experiment with its weights normalized to sum to 1, or InvalidExperiment naming the
    field: names like ``^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$``, unique, not ``default``; 1 to 8
    variants; weights finite, >= 0, at least one > 0 (50/50 and 0.5/0.5 are the same split)."""
    if not NAME.match(name):
        raise InvalidExperiment("name: letters, digits, '.', '_' or '-' (1-64)", "name")
    if not 1 <= len(variants) <= MAX_VARIANTS:
        raise InvalidExperiment(f"variants: 1 to {MAX_VARIANTS}", "variants")
    every = [*variants, *([shadow] if shadow else [])]
    for v in every:
        if not NAME.match(v.name) or v.name in RESERVED:
            raise InvalidExperiment(
                f"variant name {v.name!r}: letters, digits, '.', '_' or '-' (1-64), not 'default'",
                "variants",
            )
    if len({v.name for v in every}) != len(every):
        raise InvalidExperiment("variants: names must be unique (shadow included)", "variants")
    weights = [v.weight for v in variants]
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise InvalidExperiment("weights: finite, >= 0, and at least one above 0", "variants")
    total = sum(weights)
    normalized = tuple(Variant(v.name, v.bundle, v.weight / total) for v in variants)
    return Experiment(name, normalized, Variant(shadow.name, shadow.bundle) if shadow else None)


def bucket(experiment: str, user_id: str) -> float:
    """A stable point in [0, 1) for this user in this experiment (same in every process)."""
    digest = hashlib.blake2b(f"{experiment}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign(experiment: str, user_id: str, weights: Sequence[float]) -> int:
    """The index of the variant ``user_id`` is served by: its bucket mapped into the cumulative
    ``weights`` (which sum to 1)."""
    point, edge = bucket(experiment, user_id), 0.0
    for i, weight in enumerate(weights):
        edge += weight
        if point < edge:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)  # rounding: the last real variant


def overlap_at_k(served: Sequence[str], other: Sequence[str], k: int) -> float:
    """|top-k served ∩ top-k other| / k (1.0: the same k items, in any order)."""
    if k <= 0:
        return 1.0
    return len(set(served[:k]) & set(other[:k])) / k
