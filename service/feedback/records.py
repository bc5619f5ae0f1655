"""What the feedback loop stores: an impression (one answered recommendation) and a feedback
record (one event attributed to an impression). Plain dataclasses with a compact JSON form,
the same in every store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

DEFAULT_VARIANT = "default"  # the only variant until experiments exist


@dataclass(frozen=True)
class ShownItem:
    item_id: str
    position: int  # 1 = first item of the answer
    score: float | None
    source: str


@dataclass(frozen=True)
class Impression:
    """One answered recommendation: who saw what, from which model and variant, and the user
    and context features it was computed from (``features``: the stored profile overridden by
    the request's user features, as served)."""

    request_id: str
    ts: float
    user_id: str
    model_version: str
    variant: str
    items: tuple[ShownItem, ...]
    context: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None

    def position_of(self, item_id: str) -> int | None:
        return next((s.position for s in self.items if s.item_id == item_id), None)

    def to_json(self) -> bytes:
        body = {
            "r": self.request_id,
            "t": self.ts,
            "u": self.user_id,
            "m": self.model_version,
            "v": self.variant,
            "i": [[s.item_id, s.score, s.source] for s in self.items],
            "c": self.context,
            "f": self.features,
            "x": self.fallback_reason,
        }
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Impression:
        b = orjson.loads(raw)
        items = tuple(
            ShownItem(item_id, n, score, source)
            for n, (item_id, score, source) in enumerate(b["i"], start=1)
        )
        return cls(b["r"], b["t"], b["u"], b["m"], b["v"], items, b["c"], b["f"], b["x"])


@dataclass(frozen=True)
class Feedback:
    """An event attributed to the impression that showed its item. ``first`` is set by the
    store: the first positive event for this (request, item) pair (what CTR counts)."""

    request_id: str
    user_id: str
    item_id: str
    type: str
    weight: float
    ts: float
    positive: bool
    position: int
    model_version: str
    variant: str
    first: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(
            [
                self.request_id,
                self.user_id,
                self.item_id,
                self.type,
                self.weight,
                self.ts,
                self.positive,
                self.position,
                self.model_version,
                self.variant,
                self.first,
            ]
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Feedback:
        return cls(*orjson.loads(raw))
