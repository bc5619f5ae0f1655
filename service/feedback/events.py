"""Event types and what they mean for the loop: positives carry a default weight (what they
add to popularity and how strongly they say "yes"); negatives say "not this", add nothing to
popularity and keep their item out of the user's later answers. Any other type is accepted
as a positive of weight 1, as before the loop existed."""

from __future__ import annotations

POSITIVE_WEIGHTS = {"read": 1.0, "click": 1.0, "like": 2.0, "purchase": 5.0}
NEGATIVE_TYPES = frozenset({"dislike", "hide"})


def is_negative(event_type: str) -> bool:
    return event_type in NEGATIVE_TYPES


def weight_of(event_type: str, given: float | None) -> float:
    """The weight stored with an event: 0 for a negative, else the given one or the type's."""
    if is_negative(event_type):
        return 0.0
    return given if given is not None else POSITIVE_WEIGHTS.get(event_type, 1.0)
