"""The Milvus Lite server helper: start, refuse what cannot work, stop on signal, keep data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from service.index.lite_server import LiteServer, LiteServerError
from service.index.milvus import MilvusIndex
from service.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
ROWS = np.eye(4, dtype=np.float32)


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_started_server_accepts_clients_and_stop_frees_port_and_file(tmp_path):
    port = free_port()
    with LiteServer(tmp_path / "s.db", port=port) as server:
        assert server.uri == f"http://127.0.0.1:{port}" and server.running
        index = MilvusIndex(server.uri)
        index.ensure_collection("v1", 4, [])
        index.upsert("v1", ["a", "b", "c", "d"], ROWS, {})
        index.close()
    assert not accepts_connections(port)
    with LiteServer(tmp_path / "s.db", port=port) as again:
        index = MilvusIndex(again.uri)
        assert index.count("v1") == 4
        index.close()


def test_a_port_in_use_is_refused_with_its_number(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LiteServerError, match=str(port)):
            LiteServer(tmp_path / "s.db", port=port).start()


def test_acknowledged_writes_survive_a_killed_server(tmp_path):
    server = LiteServer(tmp_path / "k.db", port=free_port())
    server.start()
    index = MilvusIndex(server.uri)
    index.ensure_collection("v1", 4, [])
    index.upsert("v1", ["a", "b", "c", "d"], ROWS, {})
    index.delete("v1", ["d"])
    os.kill(server.pid, signal.SIGKILL)
    server.stop()
    with LiteServer(tmp_path / "k.db", port=server.port) as restarted:
        reader = MilvusIndex(restarted.uri)
        assert reader.count("v1") == 3
        reader.close()
    index.close()


def test_serve_blocks_until_sigterm_and_holds_the_file_meanwhile(tmp_path):
    db, port = tmp_path / "served.db", free_port()
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from service.index.lite_server import serve
        serve(Path({str(db)!r}), {port})
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        assert wait_until(lambda: accepts_connections(port), 20), "serve did not start"
        with pytest.raises(LiteServerError, match="in use by another process"):
            LiteServer(db, port=free_port()).start()
        index = MilvusIndex(f"http://127.0.0.1:{port}")
        index.ensure_collection("v1", 4, [])
        index.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not accepts_connections(port)
    finally:
        if process.poll() is None:
            process.kill()
    with LiteServer(db, port=free_port()) as after:
        index = MilvusIndex(after.uri)
        assert index.list_versions() == ["v1"]
        index.close()
