"""Service benchmark: HTTP latency against the pipeline's own stage floor, ONNX session
options under concurrent load, and the time from `PUT /v1/items` to searchable.

    python -m tests.benchmarks.bench_service --bundle bundles/<version> --data-dir data/posts

Everything runs in one go on this machine, so the ratios compare like with like:
- floor: the stages called directly in one thread (user tower, Milvus search, gather, rank);
- service: `recsys serve` (real uvicorn, one worker) over loopback HTTP at several
  concurrency levels; latency p50/p99 and requests/s;
- ranker threads: the ranker on 200 rows from 4 Python threads at once, with 1 and 2
  intra-op threads per session (requests/s), to pick `RECSYS_ONNX_THREADS`;
- freshness: PUT one item, poll until the store says indexed and a filtered search finds it.
Milvus runs behind a Lite server (the service and this process both reach it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from service.bundle import load_bundle
from service.bundle.manifest import RANKER
from service.bundle.onnx_model import OnnxModel
from service.index import open_index
from service.index.lite_server import LiteServer
from service.model import load_serving_model
from service.online import stages
from service.online.domain import Exclusions, RecommendationQuery
from service.state import open_store
from tests.e2e.support import deploy
from tests.integration.index_support import free_port


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("data/posts"))
    parser.add_argument("--requests", type=int, default=400, help="per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--puts", type=int, default=20, help="PUT -> searchable samples")
    return parser.parse_args()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def stage_floor(args, bundle_path: Path, uri: str, store_uri: str) -> list[float]:
    """Seconds per request of the stages alone, one thread, no HTTP, no event loop."""
    index, store = open_index(uri, timeout_s=10), open_store(store_uri, 200)
    model = load_serving_model(bundle_path, index, store)
    times = []
    for n in range(args.requests):
        t0 = time.perf_counter()
        state = stages.load_user_state(store, f"u{n}", 50)
        user = model.encode_user(stages.user_row(model.rules, state, {}, {}))
        vector = model.embed_user(user)
        exclude = Exclusions.of(RecommendationQuery(f"u{n}"), state)
        cands = stages.retrieve(index, model, vector, args.candidates, None, exclude)
        scores = model.score(user, model.gather([c.item_id for c in cands]))
        stages.top_k(scores, args.k)
        times.append(time.perf_counter() - t0)
    index.close()
    store.close()
    return times


async def load(url: str, args, concurrency: int) -> tuple[list[float], float]:
    times: list[float] = []
    counter = iter(range(args.requests))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def user() -> None:
            for n in counter:
                body = {"user_id": f"u{n}", "k": args.k, "candidates": args.candidates}
                t0 = time.perf_counter()
                r = await client.post("/v1/recommendations", json=body)
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200 and not r.json()["degraded"], r.text

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        return times, args.requests / (time.perf_counter() - started)


def ranker_threads(bundle_path: Path, threads: int, calls: int = 300) -> float:
    """Requests/s of the ranker on 200 rows from 4 concurrent Python threads."""
    bundle = load_bundle(bundle_path)
    model = OnnxModel(bundle.path / bundle.manifest.models[RANKER].file, threads)
    arrays = bundle.encoder.encode({}, bundle.features(RANKER), 200)
    model.run(arrays)
    per_thread = calls // 4

    def work() -> None:
        for _ in range(per_thread):
            model.run(arrays)

    workers = [threading.Thread(target=work) for _ in range(4)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return 4 * per_thread / (time.perf_counter() - t0)


def freshness(url: str, samples: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(samples):
            topic = f"bench_topic_{n}"
            body = {"user_id": "u1", "k": 5, "filter": {"topic_id": [topic]}}
            t0 = time.perf_counter()
            client.put("/v1/items", json={"items": [{"post_id": f"bench_{n}", "topic_id": topic}]})
            while not client.post("/v1/recommendations", json=body).json()["items"]:
                time.sleep(0.005)
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    args = parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        LiteServer(Path(tmp) / "b.db", port=free_port()) as lite,
    ):
        work = Path(tmp)
        store_uri = f"sqlite:///{work / 'state.db'}"
        dep = deploy(args.bundle, args.data_dir, work, lite.uri, store_uri)
        floor = stage_floor(args, dep.bundle, lite.uri, store_uri)
        print(
            f"stage floor (direct calls): p50 {pct(floor, 50):.2f} ms, p99 {pct(floor, 99):.2f} ms"
        )

        port = free_port()
        env = {**os.environ, "RECSYS_LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "service", "serve", "--bundle", str(dep.bundle)]
        command += ["--milvus-uri", lite.uri, "--store", store_uri, "--port", str(port)]
        server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "service not ready"
                time.sleep(0.2)
            asyncio.run(load(url, args, 2))  # warm-up
            print("\nconcurrency  p50 ms  p99 ms   req/s  p50 / floor p50")
            for c in args.concurrency:
                times, rate = asyncio.run(load(url, args, c))
                ratio = pct(times, 50) / pct(floor, 50)
                p50, p99 = pct(times, 50), pct(times, 99)
                print(f"{c:>11}  {p50:6.2f}  {p99:6.2f}  {rate:6.0f}  {ratio:.2f}x")
            fresh = freshness(url, args.puts)
            print(
                f"\nPUT -> searchable: p50 {pct(fresh, 50):.0f} ms, max {pct(fresh, 100):.0f} ms "
                f"({args.puts} items, worker poll {env.get('RECSYS_INDEX_POLL_S', '0.1')} s)"
            )
        finally:
            server.terminate()
            server.wait(30)
    one, two = ranker_threads(args.bundle, 1), ranker_threads(args.bundle, 2)
    print(
        f"\nranker, 200 rows, 4 concurrent callers: 1 intra-op thread {one:.0f} calls/s, "
        f"2 threads {two:.0f} calls/s ({two / one:.2f}x)"
    )


if __name__ == "__main__":
    main()
