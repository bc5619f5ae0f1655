"""The state store port: what outlives a request.

User profiles, recent events (capped per user), the item catalog and its indexing queue.
Two adapters: SQLite (embedded default, several processes on one machine) and Redis
(several machines). Both pass the same contract tests.

The indexing queue is the catalog itself: every change to an item (upsert or delete) gives it
a new change sequence number and marks it pending. A worker claims pending items under a
lease, indexes the item's *latest* state, and acknowledges the sequence number it indexed; a
change that arrived meanwhile keeps the item pending. So repeated updates coalesce, a crash
loses nothing (the lease expires and another worker takes the item), and a change is durable
once the call that queued it returns.

A change the index refuses (its row does not encode, or the index rejects the vector or an
attribute) is a *poison* change: `fail` puts it back after a delay, and after
``max_attempts`` refusals moves it out of the queue to ``failed`` with the reason, so it never
holds up the rest of the queue. `retry_failed` queues failed items again (after a fix); a
new change of the item starts over.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from service.feedback.records import Feedback, Impression

ItemState = Literal["queued", "indexed", "deleted", "failed"]
DEFAULT_EVENTS_PER_USER = 200
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_REDIS_PREFIX = "recsys:"


@dataclass(frozen=True)
class Retention:
    """How much of the feedback log (impressions, attributed events) a store keeps: at most
    ``max_rows`` of each, none older than ``max_age_s`` (trimmed as new rows are written)."""

    max_rows: int
    max_age_s: float


@dataclass(frozen=True)
class Event:
    item_id: str
    type: str
    ts: float
    weight: float = 1.0


@dataclass(frozen=True)
class ItemChange:
    """One item's latest state in the change feed: ``row`` is None once it is deleted."""

    seq: int
    item_id: str
    row: dict[str, Any] | None


@dataclass(frozen=True)
class ClaimedItem:
    """A pending item handed to one worker, with the sequence number it must acknowledge."""

    seq: int
    item_id: str
    row: dict[str, Any] | None

    @property
    def deleted(self) -> bool:
        return self.row is None


@dataclass(frozen=True)
class ItemStatus:
    item_id: str
    state: ItemState
    seq: int
    indexed_version: str | None
    updated_at: float
    error: str | None = None  # why the index refused the latest change (queued or failed)
    attempts: int = 0  # refusals of the latest change
    deleted: bool = False  # the latest change removes the item (queued or indexed)


class StoreError(RuntimeError):
    """The store cannot be reached or refused the operation."""


@runtime_checkable
class StateStore(Protocol):
    # users
    def put_profile(self, user_id: str, features: Mapping[str, Any]) -> None: ...

    def get_profile(self, user_id: str) -> dict[str, Any] | None: ...

    def add_events(self, user_id: str, events: Sequence[Event]) -> None:
        """Append events (oldest first) and keep only the user's most recent ones."""
        ...

    def recent_events(self, user_id: str, limit: int) -> list[Event]:
        """The user's most recent events, oldest first."""
        ...

    def popular_items(self, limit: int) -> list[tuple[str, float]]:
        """Items by summed event weight, most popular first (deleted items left out)."""
        ...

    # catalog + queue
    def put_items(
        self, rows: Sequence[tuple[str, Mapping[str, Any]]], indexed_version: str | None = None
    ) -> int:
        """Upsert items (id, raw row), queued for indexing; with ``indexed_version`` they are
        recorded as already indexed there (the batch job indexed them itself).
        Returns the last sequence number."""
        ...

    def delete_items(self, item_ids: Sequence[str]) -> int:
        """Tombstone items (and queue their removal from the index); unknown ids too."""
        ...

    def changes_since(self, seq: int, limit: int = 10_000) -> list[ItemChange]:
        """Items whose latest change is after ``seq``, in sequence order."""
        ...

    def last_seq(self) -> int: ...

    def item_status(self, item_id: str) -> ItemStatus | None: ...

    def claim_pending(self, limit: int, lease_s: float) -> list[ClaimedItem]:
        """Lease up to ``limit`` pending items nobody holds (or whose lease expired)."""
        ...

    def renew(self, claimed: Sequence[ClaimedItem], lease_s: float) -> None:
        """Extend the lease of the claimed changes still held (not expired, not changed since)
        to ``lease_s`` from now: a worker's heartbeat while it writes them. Leases name no
        owner: a late heartbeat may extend another worker's lease on the same change, which
        only delays it (indexing the latest row twice is harmless)."""
        ...

    def ack(self, claimed: Sequence[ClaimedItem], version: str) -> None:
        """Record that ``claimed`` are indexed in ``version``; items changed since stay pending."""
        ...

    def fail(self, item: ClaimedItem, reason: str, max_attempts: int, retry_in_s: float) -> bool:
        """Record that the index refused ``item``'s change: pending again after ``retry_in_s``,
        or ``failed`` (out of the queue, with ``reason``) at the ``max_attempts``-th refusal.
        A change that arrived since the claim is left alone. Returns True when now failed."""
        ...

    def failed_items(self, limit: int = 100) -> list[ItemStatus]:
        """Items whose latest change is ``failed``, oldest failure first."""
        ...

    def retry_failed(self, item_ids: Sequence[str] | None = None) -> int:
        """Queue failed items again (all, or those of ``item_ids``); returns how many."""
        ...

    def requeue_not_indexed_in(self, version: str) -> int:
        """Mark pending every item whose last indexing went to another version (model swap)."""
        ...

    def pending_count(self) -> int: ...

    # feedback log
    def add_impressions(self, impressions: Sequence[Impression], keep: Retention) -> None:
        """Append answered recommendations (one batch of the buffered writer) and trim the log
        to ``keep``."""
        ...

    def impression(self, request_id: str) -> Impression | None:
        """The latest impression with this request id, if the log still holds it."""
        ...

    def recent_impressions(self, user_id: str, since_ts: float, limit: int) -> list[Impression]:
        """The user's impressions at or after ``since_ts``, newest first (at most ``limit``)."""
        ...

    def impressions_since(self, since_ts: float) -> Iterator[Impression]:
        """Every impression the log holds at or after ``since_ts``, oldest first (paged)."""
        ...

    def add_feedback(self, records: Sequence[Feedback], keep: Retention) -> list[Feedback]:
        """Append attributed events; returns them with ``first`` set on each positive that is
        the first for its (request, item) pair."""
        ...

    def feedback_since(self, since_ts: float) -> Iterator[Feedback]:
        """Every attributed event the log holds at or after ``since_ts``, oldest first."""
        ...

    def put_meta(self, key: str, value: str) -> None:
        """A small shared record, e.g. the rollout (which bundle every process serves)."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def close(self) -> None: ...
