"""The app on the fakes behind a real uvicorn on loopback: what only real sockets show
(keep-alive after an error, overload, slow clients)."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from tests.live import live


def test_a_500_keeps_its_request_id_and_closes_the_connection_cleanly(make_app, model):
    """A client with a connection pool must not see the next, unrelated request fail."""
    with live(make_app()) as url, httpx.Client(base_url=url, timeout=10) as client:
        body = {"user_id": "known", "k": 3}
        assert client.post("/v1/recommendations", json=body).status_code == 200
        model.rank_error = TypeError("a programming error")
        r = client.post("/v1/recommendations", json=body, headers={"X-Request-ID": "bug-1"})
        assert r.status_code == 500
        assert r.json()["request_id"] == "bug-1" and r.headers["x-request-id"] == "bug-1"
        assert r.headers["connection"] == "close"
        model.rank_error = None
        for _ in range(3):  # the pool's next requests, on a fresh connection
            assert client.post("/v1/recommendations", json=body).status_code == 200


async def _open_loop(url: str, rate: float, seconds: float) -> list[tuple[int, float, dict]]:
    """``rate`` requests a second for ``seconds``, each sent on time whatever the others do:
    (status, seconds taken, body) per request."""
    results: list[tuple[int, float, dict]] = []
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:

        async def one() -> None:
            started = time.perf_counter()
            r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 3})
            results.append((r.status_code, time.perf_counter() - started, r.json()))
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1"

        tasks, start = [], time.perf_counter()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return results


def test_past_the_in_flight_bound_requests_are_shed_at_once(make_app, model):
    """Open loop at 4x the rate the ranker sustains (2 threads, 50 ms a request, so 40/s):
    accepted answers stay under the deadline and not degraded, the excess is a 503 with
    Retry-After. (Unshed, every answer waits in the ranker's queue until its deadline.)"""
    model.rank_delay_s = 0.05
    settings = {"batch_max": 1, "stage_threads": 2, "rank_deadline_ms": 1000}
    with live(make_app(**settings)) as url:
        sustained = asyncio.run(_open_loop(url, 10, 1.0))  # warm-up, well under capacity
        assert {s for s, _, _ in sustained} == {200}
        results = asyncio.run(_open_loop(url, 4 * 2 / model.rank_delay_s, 3.0))
        metrics = httpx.get(f"{url}/metrics").text
    accepted = [(took, body) for status, took, body in results if status == 200]
    shed = [took for status, took, _ in results if status == 503]
    assert {s for s, _, _ in results} <= {200, 503}
    assert len(shed) > len(results) / 2 and len(accepted) > 40
    p99 = statistics.quantiles([took for took, _ in accepted], n=100)[98]
    assert p99 < 1.0, p99  # under the ranker's deadline (unshed, answers wait past it)
    degraded = sum(body["degraded"] for _, body in accepted)
    assert degraded <= len(accepted) * 0.05, degraded
    assert f"rec_shed_total {float(len(shed))}" in metrics
