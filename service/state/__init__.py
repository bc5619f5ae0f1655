"""State that outlives a request, behind one port: SQLite (embedded) or Redis."""

from __future__ import annotations

from service.state.port import (
    ClaimedItem,
    Event,
    ItemChange,
    ItemStatus,
    StateStore,
    StoreError,
)


def open_store(uri: str, events_per_user: int, timeout_s: float = 2.0) -> StateStore:
    """``sqlite:///path/state.db`` (or a plain path) or ``redis://host:port/db``."""
    if uri.startswith(("redis://", "rediss://", "unix://")):
        from service.state.redis_store import RedisStore

        return RedisStore(uri, events_per_user=events_per_user, timeout_s=timeout_s)
    from service.state.sqlite_store import SqliteStore

    path = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else uri
    if "://" in path:
        raise ValueError(f"store URI {uri!r}: use sqlite:///path or redis://host:port/db")
    return SqliteStore(path, events_per_user=events_per_user)


__all__ = [
    "ClaimedItem",
    "Event",
    "ItemChange",
    "ItemStatus",
    "StateStore",
    "StoreError",
    "open_store",
]
