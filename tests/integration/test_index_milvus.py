"""MilvusIndex beyond the shared contract: URIs and Lite files, locks, outages, foreign data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from service.index import (
    CollectionMismatch,
    CollectionNotFound,
    IndexConfigError,
    IndexUnavailable,
    ScalarField,
    open_index,
)
from service.index.exact import ExactIndex
from service.index.lite_server import LiteServer
from service.index.milvus import MilvusIndex
from service.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 1.0
MARGIN_S = 1.0
UNIT = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[LiteServer]:
    with LiteServer(tmp_path / "served.db", port=free_port()) as server:
        yield server


def test_open_index_picks_the_adapter_by_uri(tmp_path):
    assert isinstance(open_index("memory://"), ExactIndex)
    index = open_index(str(tmp_path / "m.db"), timeout_s=0.5)
    assert isinstance(index, MilvusIndex) and index.timeout_s == 0.5
    assert isinstance(open_index("http://127.0.0.1:1"), MilvusIndex)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("x" * 34 + ".db", "at most 36"),
        ("my index.db", "at most 36"),
        ("./data/milvus", "ending in .db"),
        ("ftp://host/x", "ending in .db"),
    ],
)
def test_lite_file_names_that_milvus_lite_refuses_fail_fast(uri, message):
    with pytest.raises(IndexConfigError, match=message):
        MilvusIndex(uri)


def test_hnsw_on_a_lite_file_is_a_configuration_error(tmp_path):
    with pytest.raises(IndexConfigError, match="HNSW"):
        MilvusIndex(str(tmp_path / "m.db"), index="hnsw")


def test_hnsw_on_a_lite_server_is_refused_before_creating_anything(served):
    index = MilvusIndex(served.uri, index="hnsw")
    try:
        with pytest.raises(IndexConfigError, match="HNSW"):
            index.ensure_collection("v1", 4, [])
        assert index.list_versions() == []
    finally:
        index.close()


def test_constructing_connects_to_nothing(tmp_path):
    MilvusIndex(str(tmp_path / "deep" / "m.db"))
    MilvusIndex(f"http://127.0.0.1:{free_port()}")
    assert not (tmp_path / "deep").exists()


def test_data_persists_in_the_file_across_close_and_reopen(tmp_path):
    path = str(tmp_path / ("d" * 60) / "persist-me.db")
    first = MilvusIndex(path)
    first.ensure_collection("v1", 4, [ScalarField("tag", "string")])
    first.upsert("v1", ["a", "b"], np.ones((2, 4), np.float32), {"tag": ["x", "y"]})
    first.close()
    second = MilvusIndex(path)
    try:
        assert second.list_versions() == ["v1"]
        assert second.count("v1") == 2
        assert [h.item_id for h in second.search("v1", np.ones(4), 5, {"tag": ["y"]})] == ["b"]
    finally:
        second.close()


def _open_in_subprocess(db: Path) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        from service.index import VectorIndexError
        from service.index.milvus import MilvusIndex
        try:
            MilvusIndex({str(db)!r}).list_versions()
            print("opened")
        except VectorIndexError as e:
            print(type(e).__name__, e)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_a_file_held_by_another_process_is_refused_and_stays_locked(served):
    first = _open_in_subprocess(served.db)
    assert first.stdout.startswith("IndexUnavailable"), first.stdout + first.stderr
    assert "milvus-lite serve" in first.stdout
    # milvus-lite's own failed open unlinks the holder's lock file; ours must not
    assert (served.db.parent / f".{served.db.name}.lock").exists()
    second = _open_in_subprocess(served.db)
    assert second.stdout.startswith("IndexUnavailable"), second.stdout + second.stderr


def test_a_file_this_process_serves_cannot_also_be_opened_embedded(served):
    with pytest.raises(IndexConfigError, match="serves"):
        MilvusIndex(str(served.db)).list_versions()


def test_refused_connection_raises_unavailable_naming_uri_and_timeout():
    uri = f"http://127.0.0.1:{free_port()}"
    index = MilvusIndex(uri, timeout_s=TIMEOUT_S)
    started = time.monotonic()
    with pytest.raises(IndexUnavailable) as error:
        index.search("v1", np.ones(4), 10)
    assert time.monotonic() - started < TIMEOUT_S + MARGIN_S
    assert uri in str(error.value) and f"timeout_s={TIMEOUT_S:g}" in str(error.value)


def test_silent_server_raises_unavailable_after_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        index = MilvusIndex(uri, timeout_s=TIMEOUT_S)
        started = time.monotonic()
        with pytest.raises(IndexUnavailable, match=uri):
            index.count("v1")
        assert TIMEOUT_S * 0.8 < time.monotonic() - started < TIMEOUT_S + MARGIN_S


def test_frozen_server_times_out_then_recovers(served):
    index = MilvusIndex(served.uri, timeout_s=TIMEOUT_S)
    index.ensure_collection("v1", 4, [])
    index.upsert("v1", ["a"], UNIT, {})
    assert served.pid is not None
    os.kill(served.pid, signal.SIGSTOP)
    try:
        for call in (
            lambda: index.search("v1", UNIT[0], 5),
            lambda: index.count("v1"),
            lambda: index.upsert("v1", ["b"], np.array([[1.0, 1.0, 0.0, 0.0]], np.float32), {}),
        ):
            started = time.monotonic()
            with pytest.raises(IndexUnavailable, match=served.uri):
                call()
            assert time.monotonic() - started < TIMEOUT_S + MARGIN_S
    finally:
        os.kill(served.pid, signal.SIGCONT)
    assert index.search("v1", UNIT[0], 5)[0].item_id == "a"
    index.close()


def test_stopped_server_is_unavailable_and_reconnects_after_restart(served):
    index = MilvusIndex(served.uri, timeout_s=TIMEOUT_S)
    index.ensure_collection("v1", 4, [])
    index.upsert("v1", ["a"], UNIT, {})
    served.stop()
    with pytest.raises(IndexUnavailable):
        index.count("v1")
    served.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert index.count("v1") == 1
            break
        except IndexUnavailable:
            assert time.monotonic() < deadline, "no reconnection within 10 s"
            time.sleep(0.2)
    index.close()


def _foreign_collection(uri: str, name: str, description: str) -> None:
    client = MilvusClient(uri=uri, timeout=5)
    schema = MilvusClient.create_schema(auto_id=False, description=description)
    schema.add_field("item_id", DataType.VARCHAR, is_primary=True, max_length=128)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection(name, schema=schema, timeout=5)
    client.close()


def test_collection_of_another_version_or_owner_is_a_mismatch(served):
    meta = {"recsys.vector_index": 1, "version": "v2", "dim": 4}
    _foreign_collection(served.uri, "items_v1", json.dumps(meta))
    _foreign_collection(served.uri, "items_v3", "made by hand")
    index = MilvusIndex(served.uri)
    try:
        with pytest.raises(CollectionMismatch, match="holds bundle version 'v2', not 'v1'"):
            index.ensure_collection("v1", 4, [])
        with pytest.raises(CollectionMismatch, match="not created by this service"):
            index.ensure_collection("v3", 4, [])
    finally:
        index.close()


def test_a_collection_dropped_by_another_client_is_reported_not_found(served):
    first, second = MilvusIndex(served.uri), MilvusIndex(served.uri)
    try:
        first.ensure_collection("v1", 4, [])
        first.upsert("v1", ["a"], UNIT, {})
        second.drop("v1")
        with pytest.raises(CollectionNotFound):
            first.search("v1", UNIT[0], 5)
        first.ensure_collection("v1", 4, [])
        assert first.count("v1") == 0
    finally:
        first.close()
        second.close()
