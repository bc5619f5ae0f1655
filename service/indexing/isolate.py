"""Poison isolation: write a batch, and when the write is refused, find the refused items by
bisection so that every other item of the batch is still written.

A *refusal* is an error caused by the items themselves: a row that does not encode
(`EncodingError`, `InvalidInput`), a vector or attribute the index rejects (`InvalidRequest`),
or an item tower that cannot run on the row (`ModelRunError`). Anything else (the index or the
store away, a wrong collection, a bad configuration) is the batch's problem, not an item's,
and propagates so the whole batch is retried later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from service.bundle.onnx_model import ModelRunError
from service.index import IndexConfigError

T = TypeVar("T")
MAX_REASON_CHARS = 500


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` blames the items written (so retrying them as they are is pointless)."""
    if isinstance(exc, IndexConfigError):
        return False
    return isinstance(exc, ValueError | ModelRunError)


def reason(exc: BaseException) -> str:
    """A short, one-line reason for a refusal, as stored and shown to operators."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:MAX_REASON_CHARS]


def write_isolating(
    write: Callable[[Sequence[T]], None], items: Sequence[T]
) -> list[tuple[T, str]]:
    """``write(items)``; on a refusal, bisect and write the halves, down to single items.

    Returns the refused items with their reasons (every other item is written); raises what
    is not a refusal. ``write`` must be idempotent: a half may be written twice when a retry
    follows a transient error. With r refused items among n, about ``2 r log2(n)`` writes.
    """
    if not items:
        return []
    try:
        write(items)
        return []
    except Exception as exc:
        if not is_refusal(exc):
            raise
        if len(items) == 1:
            return [(items[0], reason(exc))]
    mid = len(items) // 2
    return write_isolating(write, items[:mid]) + write_isolating(write, items[mid:])
