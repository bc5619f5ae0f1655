"""Vocabularies: raw categorical values -> integer ids outside the model graph."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from service.features.schema import OOV_ID

FIRST_ID = 2  # 0 is padding, 1 is out-of-vocabulary


def token(value: Any) -> str:
    """The canonical string form of a raw value, identical in training and serving.

    Integral floats lose their ".0" so that 1995, 1995.0 and "1995" are one token.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # NumPy scalars
        return token(value.item())
    return str(value)


class Vocabulary:
    """Known tokens in id order; ids start at 2, unknown tokens map to 1."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens: list[str] = list(tokens)
        self._index = {tok: i + FIRST_ID for i, tok in enumerate(self.tokens)}
        if len(self._index) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def fit(cls, counts: Counter[str], min_count: int = 1) -> Vocabulary:
        """Most frequent first, ties by token, so a refit on the same data gives the same ids."""
        kept = [(tok, n) for tok, n in counts.items() if n >= min_count]
        kept.sort(key=lambda item: (-item[1], item[0]))
        return cls(tok for tok, _ in kept)

    def __len__(self) -> int:
        """Table size the model needs: known tokens plus padding and OOV."""
        return len(self.tokens) + FIRST_ID

    def __contains__(self, value: Any) -> bool:
        return token(value) in self._index

    def id(self, value: Any) -> int:
        return self._index.get(token(value), OOV_ID)

    def ids(self, values: Iterable[Any]) -> list[int]:
        index = self._index
        return [index.get(v if isinstance(v, str) else token(v), OOV_ID) for v in values]
