"""One benchmark run: catalog -> floor -> prototype -> recsys (each under the same load) ->
goals, JSON and a latency-throughput chart under ``out``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from service.bench.ab import Comparison, server_ab
from service.bench.catalog import BenchCatalog, build_catalog
from service.bench.load import API_KEY, CpuMeter, LoadResult, closed_loop, open_loop, require_wrk
from service.bundle import load_bundle
from service.index import open_index
from service.index.lite_server import LiteServer
from service.loopback import free_port
from service.model import load_serving_model
from service.online import stages
from service.online.domain import Exclusions, RecommendationQuery
from service.state import open_store

P99_BUDGET_MS = 100.0


@dataclass(frozen=True)
class BenchConfig:
    bundle: Path
    items: int = 100_000
    users: int = 3000
    k: int = 20
    candidates: int = 200
    seconds: float = 5.0
    connections: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    rates: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5)  # x the prototype's max throughput
    workers: tuple[int, ...] = (1,)
    floor_requests: int = 300
    cache: Path = Path("bench-results/cache")
    seed: int = 0
    ab: Comparison | None = None  # only this comparison of two server settings (service.bench.ab)
    ab_rounds: int = 3


@dataclass
class ServerRun:
    name: str
    closed: list[LoadResult] = field(default_factory=list)
    open: list[LoadResult] = field(default_factory=list)

    def one_client(self) -> LoadResult:
        return next(r for r in self.closed if r.level == 1)

    def max_sustained(self) -> LoadResult | None:
        """The highest answered rate with p99 within budget and no errors (either mode)."""
        ok = [r for r in [*self.closed, *self.open] if r.errors == 0 and r.p99_ms <= P99_BUDGET_MS]
        return max(ok, key=lambda r: r.rate, default=None)


def run(config: BenchConfig, say: Callable[[str], None]) -> dict:
    require_wrk()
    bundle = load_bundle(config.bundle)
    workdir = config.cache / f"{bundle.version}-{config.items}-{config.users}-{config.seed}"
    say(f"catalog: {config.items} items, {config.users} users in {workdir}")
    catalog = build_catalog(bundle, config.items, config.users, workdir, config.seed)
    if config.ab is not None:
        result = _result(config, bundle.version, {}, [])
        return {**result, config.ab.name: server_ab(config, catalog, _server, say, config.ab)}
    floor = stage_floor(config, catalog)
    say(f"floor (stages called directly): p50 {floor['p50_ms']:.2f} ms, p99 {floor['p99_ms']:.2f}")
    prototype = ServerRun("prototype")
    with _server(_prototype_command(config, catalog), {}, catalog, 1) as (port, cpu):
        _drive(prototype, config, port, cpu, None, say)
    base_rate = prototype.max_sustained().rate if prototype.max_sustained() else 100.0
    runs = [prototype]
    for workers in config.workers:
        server = ServerRun(f"recsys-{workers}w")
        command = [sys.executable, "-m", "service", "serve", "--bundle", str(config.bundle)]
        auth_on = {"RECSYS_API_KEYS": json.dumps([API_KEY])}  # as deployed: auth and metrics on
        with _server(command, auth_on, catalog, workers) as (port, cpu):
            _drive(server, config, port, cpu, base_rate, say)
        runs.append(server)
    return _result(config, bundle.version, floor, runs)


def stage_floor(config: BenchConfig, catalog: BenchCatalog) -> dict:
    """The service's own stages called directly in one thread: no HTTP, no event loop."""
    index, store = open_index(catalog.milvus_uri, timeout_s=30), open_store(catalog.store_uri, 200)
    try:
        model = load_serving_model(config.bundle, index, store)
        times = []
        for n in range(config.floor_requests):
            user_id = catalog.user_ids[n % len(catalog.user_ids)]
            started = time.perf_counter()
            state = stages.load_user_state(store, user_id, 50)
            user = model.encode_users([stages.user_row(model.rules, state, {}, {})])
            exclusions = Exclusions.of(RecommendationQuery(user_id), state)
            found = stages.retrieve(
                index, model, model.embed_users(user)[0], config.candidates, None, exclusions
            )
            owners = np.zeros(len(found), np.int64)
            scores = model.score(user, owners, model.gather([c.item_id for c in found]))
            stages.top_k(scores, config.k)
            times.append(time.perf_counter() - started)
    finally:
        index.close()
        store.close()
    ms = np.asarray(times[10:]) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def _drive(
    server: ServerRun,
    config: BenchConfig,
    port: int,
    cpu: CpuMeter,
    base_rate: float | None,
    say: Callable[[str], None],
) -> None:
    url = f"http://127.0.0.1:{port}"
    closed_loop(url, 4, 2, config.users, config.k, config.candidates, cpu)  # warm-up
    for connections in config.connections:
        result = closed_loop(
            url, connections, config.seconds, config.users, config.k, config.candidates, cpu
        )
        server.closed.append(result)
        say(_line(server.name, result))
    base = base_rate or (server.max_sustained().rate if server.max_sustained() else 100.0)
    for share in config.rates:
        rate = round(base * share, 1)
        result = open_loop(
            "127.0.0.1", port, rate, config.seconds, config.users, config.k, config.candidates, cpu
        )
        server.open.append(result)
        say(_line(server.name, result))


def _line(name: str, r: LoadResult) -> str:
    level = f"{int(r.level)} conn" if r.mode == "closed" else f"{r.level:.0f}/s offered"
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_ms_per_request.items())
    return (
        f"{name:>14} {r.mode:>6} {level:>14}: {r.rate:7.1f} req/s  p50 {r.p50_ms:7.2f}  "
        f"p99 {r.p99_ms:7.2f} ms  errors {r.errors}  CPU ms/req: {cpu}"
    )


@contextmanager
def _server(
    command: list[str], env: dict[str, str], catalog: BenchCatalog, workers: int
) -> Iterator[tuple[int, CpuMeter]]:
    """Start ``command`` (a server on the catalog) and yield its port and CPU meter once it
    answers; with several workers, Milvus Lite is shared through its own server process."""
    port = free_port()
    env = {**os.environ, **env, "RECSYS_PORT": str(port), "RECSYS_WORKERS": str(workers)}
    env["RECSYS_STORE_URI"] = catalog.store_uri
    with _shared_lite(catalog, workers) as (milvus_uri, milvus_pid):
        env["RECSYS_MILVUS_URI"] = milvus_uri
        command = [c.replace("{MILVUS}", milvus_uri).replace("{PORT}", str(port)) for c in command]
        log = (catalog.workdir / "server.log").open("ab")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(f"http://127.0.0.1:{port}", process)
            yield port, CpuMeter(process.pid, milvus_pid)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@contextmanager
def _shared_lite(catalog: BenchCatalog, workers: int) -> Iterator[tuple[str, int | None]]:
    """The Milvus URI the server uses and, when shared through a server, that process's pid."""
    if workers == 1:
        yield catalog.milvus_uri, None
        return
    with LiteServer(Path(catalog.milvus_uri), port=free_port()) as lite:
        yield lite.uri, lite.pid


def _prototype_command(config: BenchConfig, catalog: BenchCatalog) -> list[str]:
    return [
        *(sys.executable, "-m", "service.bench.prototype", "--bundle", str(config.bundle)),
        *("--milvus-uri", "{MILVUS}", "--catalog", str(catalog.workdir), "--port", "{PORT}"),
    ]


def _wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        request = urllib.request.Request(
            f"{url}/v1/recommendations",
            data=b'{"user_id": "u0"}',
            headers={"content-type": "application/json", "x-api-key": API_KEY},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server at {url} not ready after {timeout_s:.0f} s")


def _result(config: BenchConfig, version: str, floor: dict, runs: list[ServerRun]) -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {
            "bundle_version": version,
            "items": config.items,
            "users": config.users,
            "k": config.k,
            "candidates": config.candidates,
            "seconds_per_level": config.seconds,
        },
        "floor": floor,
        "servers": {
            r.name: {
                "closed": [x.as_dict() for x in r.closed],
                "open": [x.as_dict() for x in r.open],
            }
            for r in runs
        },
        "goals": goals(runs[0], runs[1]) if len(runs) > 1 else {},
    }


def goals(prototype: ServerRun, recsys: ServerRun) -> dict:
    """The speed issue's goal lines, recsys against the prototype measured in the same run."""
    p1, r1 = prototype.one_client(), recsys.one_client()
    pmax, rmax = prototype.max_sustained(), recsys.max_sustained()
    return {
        "one_client_p50_ratio": r1.p50_ms / p1.p50_ms,
        "one_client_p99_ratio": r1.p99_ms / p1.p99_ms,
        "max_sustained_rate": {"prototype": pmax and pmax.rate, "recsys": rmax and rmax.rate},
        "max_sustained_ratio": (rmax.rate / pmax.rate) if pmax and rmax else None,
        "api_cpu_ms_per_request": {
            "prototype": pmax and pmax.cpu_ms_per_request["api"],
            "recsys": rmax and rmax.cpu_ms_per_request["api"],
        },
    }
