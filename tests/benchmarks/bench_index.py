"""Vector index benchmark: upsert throughput, search latency and recall against exact search.

    python -m tests.benchmarks.bench_index --items 100000 --dim 64
    python -m tests.benchmarks.bench_index --server-uri http://127.0.0.1:19530   # adds HNSW

Vectors are clustered unit vectors (structured like trained item embeddings). Latency is
measured one query at a time, ids and scores only, as the service asks; recall@k is the share
of exact top-k ids returned. Every backend indexes the same items in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.index import ScalarField, VectorIndex
from service.index.exact import ExactIndex
from service.index.milvus import MilvusIndex
from tests.integration.index_support import clustered_unit_vectors, queries_near, recall

VERSION = "bench"
FIELDS = [
    ScalarField("category", "string", max_length=32),
    ScalarField("year", "int"),
    ScalarField("genres", "string_array", max_length=16, max_capacity=4),
]


@dataclass
class Row:
    backend: str
    index_type: str
    upsert_per_s: float
    p50_ms: float
    p99_ms: float
    recall: float


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=200, help="timed searches per backend")
    parser.add_argument("--limit", type=int, default=200, help="N candidates per timed search")
    parser.add_argument("--recall-k", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=256)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--lite-index", nargs="+", default=["flat", "ivf_flat"])
    parser.add_argument("--fields", action="store_true", help="store 3 scalar fields too")
    parser.add_argument("--server-uri", help="a Milvus server to add (HNSW by default)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def attributes(n: int, with_fields: bool) -> dict[str, list]:
    if not with_fields:
        return {}
    return {
        "category": [f"c{i % 20}" for i in range(n)],
        "year": [1990 + i % 30 for i in range(n)],
        "genres": [[f"g{i % 7}", f"g{i % 5}"] for i in range(n)],
    }


def load(
    index: VectorIndex, ids: list[str], vectors: np.ndarray, attrs: dict, fields: list
) -> float:
    """Upsert everything in batches; returns items per second."""
    index.drop(VERSION)
    index.ensure_collection(VERSION, vectors.shape[1], fields)
    batch = 5_000
    started = time.perf_counter()
    for start in range(0, len(ids), batch):
        stop = start + batch
        index.upsert(
            VERSION,
            ids[start:stop],
            vectors[start:stop],
            {k: v[start:stop] for k, v in attrs.items()},
        )
    index.flush(VERSION)
    return len(ids) / (time.perf_counter() - started)


def wait_for_index(index: VectorIndex, n: int, timeout_s: float = 600) -> None:
    """A Milvus server builds its index after flush; Lite and exact search need no wait."""
    if index.describe(VERSION)["backend"] != "milvus":
        return
    deadline = time.monotonic() + timeout_s
    while index.describe(VERSION)["indexed_rows"] < n:
        if time.monotonic() > deadline:
            raise TimeoutError("index not built in time")
        time.sleep(0.5)


def latencies_ms(index: VectorIndex, queries: np.ndarray, limit: int) -> np.ndarray:
    for q in queries[:10]:
        index.search(VERSION, q, limit)
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(VERSION, q, limit)
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times)


def measure(
    name: str, index: VectorIndex, exact: ExactIndex, data: tuple, args: argparse.Namespace
) -> Row:
    ids, vectors, attrs, fields, queries = data
    rate = load(index, ids, vectors, attrs, fields)
    wait_for_index(index, len(ids))
    times = latencies_ms(index, queries, args.limit)
    recalls = [
        recall(index.search(VERSION, q, args.recall_k), exact.search(VERSION, q, args.recall_k))
        for q in queries
    ]
    info = index.describe(VERSION)
    return Row(
        name,
        str(info["index_type"]),
        rate,
        float(np.percentile(times, 50)),
        float(np.percentile(times, 99)),
        float(np.mean(recalls)),
    )


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    exact_p50 = rows[0].p50_ms
    print(
        f"\n{args.items:,} items x {args.dim} dims, {args.clusters} clusters, "
        f"{args.queries} queries, N={args.limit}, recall@{args.recall_k}"
        f"{', 3 scalar fields' if args.fields else ''}\n"
    )
    header = f"{'backend':<22}{'index':<12}{'upsert/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
    print(header + f"{'p50/exact':>11}{'recall':>8}")
    print("-" * (len(header) + 19))
    for r in rows:
        print(
            f"{r.backend:<22}{r.index_type:<12}{r.upsert_per_s:>11,.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.p50_ms / exact_p50:>11.2f}{r.recall:>8.3f}"
        )


def main() -> None:
    args = parse_args()
    vectors, centres = clustered_unit_vectors(
        args.items, args.dim, clusters=args.clusters, spread=args.spread, seed=args.seed
    )
    queries = queries_near(centres, args.queries, spread=args.spread, seed=args.seed + 1)
    ids = [f"item-{i}" for i in range(args.items)]
    fields = FIELDS if args.fields else []
    data = (ids, vectors, attributes(args.items, args.fields), fields, queries)
    exact = ExactIndex()
    rows = [measure("memory (exact)", exact, exact, data, args)]
    with tempfile.TemporaryDirectory() as tmp:
        for choice in args.lite_index:
            lite = MilvusIndex(str(Path(tmp) / f"bench_{choice}.db"), index=choice, timeout_s=30)
            try:
                rows.append(measure("milvus-lite file", lite, exact, data, args))
            finally:
                lite.close()
        if args.server_uri:
            server = MilvusIndex(args.server_uri, timeout_s=30)
            try:
                rows.append(measure("milvus server", server, exact, data, args))
                server.drop(VERSION)
            finally:
                server.close()
    print_table(rows, args)


if __name__ == "__main__":
    main()
