"""`recsys serve` as a user runs it: a real uvicorn on loopback, one and two workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.index.lite_server import LiteServer
from service.loopback import free_port
from tests.bodies import items_body
from tests.e2e.support import Deployment, deploy


def serve(
    dep: Deployment, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "RECSYS_LOG_LEVEL": "WARNING",
        "RECSYS_SYNC_INTERVAL_S": "0.2",
        **(env or {}),
    }
    command = [sys.executable, "-m", "service", "serve", "--bundle", str(dep.bundle)]
    command += ["--milvus-uri", dep.milvus_uri, "--store", dep.store_uri, "--port", str(port)]
    return subprocess.Popen(
        [*command, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready in time")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_one_worker_on_loopback(posts_bundle: Path, posts_dir: Path, tmp_path: Path):
    """Serves; then SIGTERM with a request in flight (its body still arriving), a stalled
    upload and a half-sent header: the request finishes, the stalled upload gets a 408 when
    its body deadline passes, and the process exits 0 well inside the drain bound."""
    dep = deploy(
        posts_bundle, posts_dir, tmp_path, str(tmp_path / "m.db"), f"sqlite:///{tmp_path}/s.db"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    timeouts = {"RECSYS_BODY_TIMEOUT_S": "3", "RECSYS_SHUTDOWN_TIMEOUT_S": "20"}
    proc = serve(dep, port, env=timeouts)
    try:
        wait_ready(proc, url)
        r = httpx.post(
            f"{url}/v1/recommendations",
            json={"user_id": "u42", "k": 10},
            headers={"X-Request-ID": "loopback-1"},
            timeout=10,
        )
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "loopback-1"
        assert len(r.json()["items"]) == 10
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 200
        body = b'{"user_id": "u42", "k": 5}'
        in_flight, stalled, half = (raw(port) for _ in range(3))
        in_flight.sendall(post_head(len(body)) + body[:10])
        stalled.sendall(post_head(len(body)) + body[:10])
        half.sendall(b"POST /v1/recommendations HTTP/1.1\r\nHost: recsys\r\n")
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.5)
        in_flight.sendall(body[10:])
        assert read_all(in_flight).startswith(b"HTTP/1.1 200")
        assert read_all(stalled).startswith(b"HTTP/1.1 408")
        assert read_all(half) == b""
        proc.wait(15)
        assert time.monotonic() - signalled < 10
    finally:
        stop(proc)
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr


def raw(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=15)


def post_head(length: int) -> bytes:
    return (
        b"POST /v1/recommendations HTTP/1.1\r\nHost: recsys\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_several_workers_refuse_a_lite_file(posts_bundle: Path, tmp_path: Path):
    command = [sys.executable, "-m", "service", "serve", "--bundle", str(posts_bundle)]
    command += ["--milvus-uri", str(tmp_path / "m.db"), "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "milvus-lite serve" in result.stderr


@pytest.mark.slow
def test_two_workers_through_the_lite_server(posts_bundle: Path, posts_dir: Path, tmp_path: Path):
    with LiteServer(tmp_path / "served.db", port=free_port()) as lite:
        dep = deploy(posts_bundle, posts_dir, tmp_path, lite.uri, f"sqlite:///{tmp_path}/s.db")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = serve(dep, port, "--workers", "2")
        try:
            wait_ready(proc, url)
            with httpx.Client(timeout=10) as client:
                for n in range(30):
                    r = client.post(f"{url}/v1/recommendations", json={"user_id": f"u{n}", "k": 5})
                    assert r.status_code == 200, r.text
                    assert not r.json()["degraded"]
                item = {"post_id": "w2_1", "topic_id": "w2_topic"}
                assert (
                    client.put(f"{url}/v1/items", json=items_body([item], "post_id")).status_code
                    == 202
                )
                deadline = time.monotonic() + 30
                while client.get(f"{url}/v1/items/w2_1").json()["state"] != "indexed":
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                body = {"user_id": "u1", "k": 3, "filter": {"topic_id": ["w2_topic"]}}
                for _ in range(6):  # whichever worker answers, it finds and ranks the item
                    got = client.post(f"{url}/v1/recommendations", json=body).json()["items"]
                    assert [i["item_id"] for i in got] == ["w2_1"]
        finally:
            stop(proc)
