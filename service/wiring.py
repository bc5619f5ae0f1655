"""Adapters built from settings: the one place that turns configuration into connections."""

from __future__ import annotations

from pathlib import Path

from service.index import MEMORY_URI, VectorIndex, open_index
from service.index.lite_files import is_server_uri
from service.settings import Settings
from service.state import StateStore, open_store


def is_lite_file(uri: str) -> bool:
    """A Milvus Lite database file (locked by one process): any URI but a server's or memory://,
    ``file://`` ones included."""
    return uri != MEMORY_URI and not is_server_uri(uri)


def index_from_settings(settings: Settings, uri: str | None = None) -> VectorIndex:
    uri = uri or settings.milvus_uri
    if uri == MEMORY_URI:
        return open_index(uri)
    if is_lite_file(uri):
        Path(uri.removeprefix("file://")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return open_index(
        uri,
        token=settings.milvus_token,
        timeout_s=settings.milvus_timeout_s,
        index=settings.milvus_index,
    )


def store_from_settings(settings: Settings, uri: str | None = None) -> StateStore:
    return open_store(
        uri or settings.store_uri,
        events_per_user=settings.events_per_user,
        timeout_s=settings.store_timeout_s,
        redis_prefix=settings.redis_prefix,
    )
