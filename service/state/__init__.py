"""State that outlives a request, behind one port: SQLite (embedded) or Redis."""

from __future__ import annotations

from service.state.port import (
    DEFAULT_EVENTS_PER_USER,
    DEFAULT_REDIS_PREFIX,
    DEFAULT_TIMEOUT_S,
    ClaimedItem,
    Event,
    ItemChange,
    ItemStatus,
    Retention,
    StateStore,
    StoreError,
)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(
    uri: str,
    events_per_user: int = DEFAULT_EVENTS_PER_USER,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    redis_prefix: str = DEFAULT_REDIS_PREFIX,
) -> StateStore:
    """``sqlite:///path/state.db`` (or a plain path) or ``redis://host:port/db``; every call
    gives up after ``timeout_s`` (SQLite: waiting for another process's write lock)."""
    if uri.startswith(REDIS_SCHEMES):
        from service.state.redis_store import RedisStore

        return RedisStore(
            uri, prefix=redis_prefix, events_per_user=events_per_user, timeout_s=timeout_s
        )
    from service.state.sqlite_store import SqliteStore

    path = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else uri
    if "://" in path:
        raise ValueError(f"store URI {uri!r}: use sqlite:///path or redis://host:port/db")
    return SqliteStore(path, events_per_user=events_per_user, timeout_s=timeout_s)


__all__ = [
    "ClaimedItem",
    "Event",
    "ItemChange",
    "ItemStatus",
    "Retention",
    "StateStore",
    "StoreError",
    "open_store",
]
