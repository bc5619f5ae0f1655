"""Early stopping on a validation score (higher is better), for the hand-written training
loops (the two towers, BPR); Keras rankers use Keras's own callback."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class EarlyStopping(Generic[T]):
    """Keeps the best score, its epoch and a snapshot taken then (the weights, say); says to
    stop after ``patience`` epochs without a better score."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -math.inf
        self.best_epoch = 0
        self.best_state: T | None = None
        self.epochs = 0
        self._waited = 0

    def update(self, score: float, snapshot: Callable[[], T]) -> bool:
        """Record one epoch's score (``snapshot()`` is taken only when it is the best so far);
        returns True when training should stop."""
        self.epochs += 1
        if score > self.best:
            self.best, self.best_epoch, self._waited = score, self.epochs, 0
            self.best_state = snapshot()
            return False
        self._waited += 1
        return self._waited >= self.patience

    def summary(self) -> dict[str, float]:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "val_score": float(self.best)}
