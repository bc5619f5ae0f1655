"""Milvus Lite's own gRPC server as a child process, so several local processes share one .db.

A Lite `.db` file is locked by the process that opens it. `serve` (the `recsys milvus-lite
serve` command) or `LiteServer` own the file instead, and every process (API workers, the
indexing job) connects to `http://127.0.0.1:<port>`. The file is written through: a killed
server loses no acknowledged write.

This launches the milvus-lite 2.5.1 binary the way `milvus_lite.server.Server` does (same
arguments, same `.<name>.lock` file, so embedded opens and servers exclude each other) but
without that class: its `stop()` and `__del__` unlink the lock file even when the lock
belongs to another process, so one failed open lets a third process open a file that is
still in use; and in address mode its `stop()` waits 2 s and kills (the binary ignores the
lock release it relies on). Here the lock file is never unlinked and stop sends SIGTERM.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

from service.index import lite_files

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 19530
STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.05


class LiteServerError(RuntimeError):
    """The Lite server could not start, or died."""


class LiteServer:
    """One Milvus Lite server process serving `db` on `host:port`; a context manager."""

    def __init__(
        self,
        db: Path | str,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.db = lite_files.lite_file_path(str(db))
        self.host, self.port = host, int(port)
        self.startup_timeout_s = startup_timeout_s
        self._lock: IO[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._reaper: weakref.finalize | None = None
        self._serving = False

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server and wait until it accepts connections; returns its URI."""
        if self._process is not None:
            raise LiteServerError(f"Lite server for {self.db} already started")
        self.db.parent.mkdir(parents=True, exist_ok=True)
        _check_port_free(self.host, self.port)
        lite_files.start_serving(self.db)
        self._serving = True
        try:
            self._lock = _lock_file(self.db)
            self._process = _launch(self.db, f"{self.host}:{self.port}")
            self._reaper = weakref.finalize(self, _terminate, self._process)
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise
        log.info("Milvus Lite serving %s at %s", self.db, self.uri)
        return self.uri

    def stop(self) -> None:
        process, self._process = self._process, None
        if self._reaper is not None:
            self._reaper.detach()
            self._reaper = None
        if process is not None:
            _terminate(process)
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()
        if self._serving:
            lite_files.stop_serving(self.db)
            self._serving = False

    def __enter__(self) -> LiteServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                code = self._process.returncode if self._process else None
                raise LiteServerError(
                    f"Milvus Lite for {self.db} exited while starting (code {code}); "
                    "run with LOG_LEVEL=INFO to see its log"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=POLL_INTERVAL_S):
                    return
            except OSError:
                time.sleep(POLL_INTERVAL_S)
        raise LiteServerError(
            f"Milvus Lite for {self.db} did not accept connections on {self.host}:{self.port} "
            f"within {self.startup_timeout_s:g}s"
        )


def serve(db: Path, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> None:
    """Serve `db` on `host:port` until SIGINT or SIGTERM (call from a main thread)."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LiteServer(db, port, host) as server:
            print(f"Milvus Lite serving {server.db} at {server.uri} (Ctrl+C stops)", flush=True)
            while not stopping.wait(0.5):
                if not server.running:
                    raise LiteServerError(f"Milvus Lite for {server.db} exited unexpectedly")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise LiteServerError(
                f"cannot serve Milvus Lite on {host}:{port}: {e.strerror}"
            ) from None


def _lock_file(db: Path) -> IO[str]:
    lock = open(lite_files.lock_path(db), "a")  # noqa: SIM115 (held until stop)
    try:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise LiteServerError(
            f"{db} is in use by another process (a Lite server, or a process that opened the "
            "file directly); stop it or connect to its server"
        ) from None
    return lock


def _launch(db: Path, address: str) -> subprocess.Popen[bytes]:
    from milvus_lite.server import BIN_PATH

    binary = Path(BIN_PATH) / "milvus"
    if not binary.exists():
        raise LiteServerError(f"{binary} not found; reinstall milvus-lite==2.5.1")
    env = os.environ.copy()
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [BIN_PATH, env.get("LD_LIBRARY_PATH")]))
    log_level = os.environ.get("LOG_LEVEL", "ERROR")
    return subprocess.Popen([str(binary), str(db), address, log_level], env=env, cwd=db.parent)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL; also run at interpreter exit for a server never stopped, since
    the Lite binary outlives its parent."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)
