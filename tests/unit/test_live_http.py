"""The app on the fakes behind a real uvicorn on loopback: what only real sockets show
(keep-alive after an error, overload, slow clients)."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx

from service.api.http_server import uvicorn_options
from tests import loadgen
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


def rss_mib() -> float:
    """This process's resident memory (the server runs in it; the load comes from a child)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


def test_past_the_in_flight_bound_requests_are_shed_at_once(make_app, model):
    """Open loop at 4x the rate the ranker sustains (2 threads, 200 ms a request, so 10/s):
    accepted answers stay under the deadline and not degraded, the excess is a 503 with
    Retry-After, and memory and threads stay flat from one overloaded round to the next.
    (Unshed, every answer waits in the ranker's queue until its deadline.)"""
    model.rank_delay_s = 0.2
    settings = {"batch_max": 1, "stage_threads": 2, "rank_deadline_ms": 1000}
    overload = 4 * 2 / model.rank_delay_s
    with live(make_app(**settings)) as url:
        warm = loadgen.run(url, 3, 1.0)  # well under capacity: nothing shed
        assert {status for status, *_ in warm} == {200}
        first = loadgen.run(url, overload, 3.0)
        rss, threads = rss_mib(), threading.active_count()
        results = loadgen.run(url, overload, 3.0)
        grown, more_threads = rss_mib() - rss, threading.active_count() - threads
        metrics = httpx.get(f"{url}/metrics").text
    assert grown < 8 and more_threads <= 0, (grown, more_threads)
    accepted = [(took, degraded) for status, took, degraded, _ in results if status == 200]
    shed = [retry_after for status, _, _, retry_after in results if status == 503]
    assert {status for status, *_ in results} <= {200, 503}
    assert len(shed) > len(results) / 2 and len(accepted) > 15 and set(shed) == {"1"}
    p99 = statistics.quantiles([took for took, _ in accepted], n=100)[98]
    assert p99 < 1.0, p99  # under the ranker's deadline (unshed, answers wait past it)
    degraded = sum(d for _, d in accepted)
    assert degraded <= len(accepted) * 0.05, degraded
    shed_in_all = sum(status == 503 for status, *_ in first + results)
    assert f"rec_shed_total {float(shed_in_all)}" in metrics


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_slow_clients_cannot_hold_a_connection(make_app):
    """Half-sent headers: closed after RECSYS_HEADER_TIMEOUT_S; a stalled upload: a 408
    after RECSYS_BODY_TIMEOUT_S, connection closed."""
    app = make_app(header_timeout_s=0.5, body_timeout_s=0.5)
    with live(app, **uvicorn_options(app.state.settings)) as url:
        headers_only = _connect(url)
        headers_only.sendall(b"POST /v1/recommendations HTTP/1.1\r\nHost: recsys\r\n")
        upload = _connect(url)
        upload.sendall(
            b"POST /v1/recommendations HTTP/1.1\r\nHost: recsys\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user_id"'
        )
        started = time.monotonic()
        assert _read_all(headers_only) == b""
        answer = _read_all(upload)
        assert time.monotonic() - started < 3
        assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()
        assert b'"request_timeout"' in answer
        with httpx.Client(base_url=url) as client:  # a prompt client is served as before
            assert client.post("/v1/recommendations", json={"user_id": "known"}).status_code == 200
