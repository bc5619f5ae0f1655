"""MilvusIndex on a real Milvus server: HNSW by default, recall and filters against exact.

The server is the PyPI `milvus` 2.3.5 package (an embedded standalone server, a test stand-in
for Milvus standalone/distributed; install with the `test-server` extra). Skipped when absent
or when it cannot start here. Its binaries are unpacked once into a cache folder
(`RECSYS_TEST_CACHE`, default ~/.cache/recsys-tests), which saves about 5 s per session.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.index import ScalarField
from service.index.exact import ExactIndex
from service.index.milvus import MilvusIndex
from tests.integration.index_support import clustered_unit_vectors, queries_near, recall

N, DIM, VERSION = 20_000, 64, "srv1"
FIELDS = [
    ScalarField("category", "string", max_length=32),
    ScalarField("available", "bool"),
    ScalarField("tags", "string_array", max_length=16, max_capacity=4),
]
INDEX_BUILD_TIMEOUT_S = 120
SERVER_START_TIMEOUT_S = 60
ETCD_PEER_PORT = 2380


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    milvus = pytest.importorskip(
        "milvus", reason="needs the embedded Milvus server: pip install 'milvus==2.3.5'"
    )
    if not port_is_free(ETCD_PEER_PORT):
        pytest.skip(f"port {ETCD_PEER_PORT} (embedded etcd) is busy: another Milvus is running")
    base = tmp_path_factory.mktemp("milvus-server")
    cache = Path(os.environ.get("RECSYS_TEST_CACHE", Path.home() / ".cache" / "recsys-tests"))
    binaries = cache / f"milvus-{milvus.__version__}-bin"
    binaries.mkdir(parents=True, exist_ok=True)
    (base / "bin").symlink_to(binaries, target_is_directory=True)
    server = milvus.MilvusServer(wait_for_started=False)
    server.set_base_dir(str(base))
    try:
        server.start()
        wait_until_healthy(server)
    except Exception as e:
        server.stop()
        pytest.skip(f"the embedded Milvus {milvus.__version__} server did not start: {e}")
    yield f"http://127.0.0.1:{server.listen_port}"
    server.stop()


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until_healthy(server: Any) -> None:
    """Poll /healthz; fail fast when the process dies (its own wait polls a dead one for 180 s)."""
    health = f"http://127.0.0.1:{server.webservice_port}/healthz"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.server_proc.poll() is not None:
            raise RuntimeError(f"exited with code {server.server_proc.returncode}; see its logs")
        try:
            with urllib.request.urlopen(health, timeout=1) as reply:
                if b"OK" in reply.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"not healthy within {SERVER_START_TIMEOUT_S}s")


def attributes(n: int) -> dict[str, list]:
    return {
        "category": [f'cat "{i % 5}"' for i in range(n)],
        "available": [i % 3 != 0 for i in range(n)],
        "tags": [[f"t\\{i % 7}", f"t\\{i % 11}"] for i in range(n)],
    }


def item_id(i: int) -> str:
    """Every other id is hostile (quotes, slash, space, `%`, Unicode): the server takes any id."""
    return f"item-{i}" if i % 2 else f"sku/{i} 'Müller' \"%41\""


@pytest.fixture(scope="module")
def populated(milvus_server_uri: str) -> Iterator[tuple[MilvusIndex, ExactIndex, np.ndarray]]:
    vectors, centres = clustered_unit_vectors(N, DIM, seed=11)
    ids = [item_id(i) for i in range(N)]
    server, exact = MilvusIndex(milvus_server_uri, timeout_s=5), ExactIndex()
    for index in (server, exact):
        index.ensure_collection(VERSION, DIM, FIELDS)
        index.upsert(VERSION, ids, vectors, attributes(N))
    server.flush(VERSION)
    deadline = time.monotonic() + INDEX_BUILD_TIMEOUT_S
    while server.describe(VERSION)["indexed_rows"] < N:
        assert time.monotonic() < deadline, "HNSW index not built in time"
        time.sleep(0.2)
    yield server, exact, queries_near(centres, 30, seed=12)
    server.drop(VERSION)
    server.close()


def test_auto_builds_hnsw_with_the_documented_parameters(populated):
    server, _, _ = populated
    info = server.describe(VERSION)
    assert not server.exact and not info["exact"]
    assert (info["backend"], info["index_type"], info["metric"]) == ("milvus", "HNSW", "IP")
    assert info["index_params"] == {"M": "16", "efConstruction": "200"}
    assert info["count"] == N


def test_hnsw_recall_at_100_against_exact(populated):
    server, exact, queries = populated
    recalls = [
        recall(server.search(VERSION, q, 100), exact.search(VERSION, q, 100)) for q in queries
    ]
    assert np.mean(recalls) >= 0.95, f"mean recall@100 {np.mean(recalls):.3f}"


@pytest.mark.parametrize(
    "filter",
    [
        {"category": ['cat "1"', 'cat "3"']},
        {"available": [False]},
        {"tags": ["t\\2", "t\\10"]},
        {"category": ['cat "0"'], "available": [True]},
    ],
)
def test_filtered_search_with_exclusions_matches_exact(populated, filter):
    server, exact, queries = populated
    for query in queries[:10]:
        excluded = [h.item_id for h in exact.search(VERSION, query, 20, filter=filter)[::2]]
        truth = exact.search(VERSION, query, 50, filter=filter, exclude_ids=excluded)
        found = server.search(VERSION, query, 50, filter=filter, exclude_ids=excluded)
        assert not {h.item_id for h in found} & set(excluded)
        assert recall(found, truth) >= 0.9


@pytest.mark.xfail(
    strict=True,
    reason="Milvus 2.3 HNSW loses recall when a filter passes ~3% of items, whatever the ef",
)
def test_hnsw_recall_under_a_restrictive_filter(populated):
    server, exact, queries = populated
    rare = {"category": ['cat "0"'], "available": [True], "tags": ["t\\4"]}
    recalls = [
        recall(
            server.search(VERSION, q, 50, filter=rare), exact.search(VERSION, q, 50, filter=rare)
        )
        for q in queries
    ]
    assert np.mean(recalls) >= 0.95, f"mean recall@50 {np.mean(recalls):.3f}"


def test_reupsert_and_delete_keep_the_count_exact(populated):
    server, exact, _ = populated
    vectors, _ = clustered_unit_vectors(10, DIM, seed=13)
    ids = [item_id(i) for i in range(10)]
    for index in (server, exact):
        index.upsert(VERSION, ids, vectors, attributes(10))
    assert server.count(VERSION) == N
    for index in (server, exact):
        index.delete(VERSION, ids[:4])
    assert server.count(VERSION) == exact.count(VERSION) == N - 4
    assert server.search(VERSION, vectors[5], 1)[0].item_id == item_id(5)
    assert server.search(VERSION, vectors[6], 1)[0].item_id == item_id(6)
