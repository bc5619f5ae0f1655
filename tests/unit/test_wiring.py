"""Settings reach the adapters: the store timeout (SQLite too), and which URIs are Lite files."""

from __future__ import annotations

import sqlite3
import time

import pytest

from service.settings import Settings
from service.state import StoreError
from service.wiring import is_lite_file, store_from_settings


@pytest.mark.parametrize(
    ("uri", "lite"),
    [
        ("./data/milvus.db", True),
        ("file:///var/lib/recsys/milvus.db", True),
        ("http://127.0.0.1:19530", False),
        ("https://milvus.example:443", False),
        ("memory://", False),
    ],
)
def test_which_uris_are_lite_files(uri, lite):
    assert is_lite_file(uri) is lite


def test_the_store_timeout_bounds_a_wait_for_the_sqlite_write_lock(tmp_path):
    path = tmp_path / "state.db"
    settings = Settings(store_uri=f"sqlite:///{path}", store_timeout_s=0.3)
    store = store_from_settings(settings)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            store.put_profile("u1", {"a": 1})
        waited = time.monotonic() - started
        assert 0.25 <= waited < 1.5, waited
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.put_profile("u1", {"a": 1})  # free again
    assert store.get_profile("u1") == {"a": 1}
    store.close()
