"""Shared fixtures. Bundles are trained once per session on real (synthetic or MovieLens)
data; tests that need TensorFlow skip when the ``train`` extra is absent."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]
ML100K_DIR = ROOT.parent / "shared" / "data" / "ml-100k"


def need_tensorflow() -> None:
    pytest.importorskip("tensorflow", reason="needs the 'train' extra (TensorFlow)")
    pytest.importorskip("tf2onnx", reason="needs the 'train' extra (tf2onnx)")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    if not (ML100K_DIR / "ml-100k.inter").is_file():
        pytest.skip(f"MovieLens 100K is not at {ML100K_DIR} (licensed data, not in the project)")
    return ML100K_DIR


@pytest.fixture(scope="session")
def posts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic ``posts`` data set (what `recsys data synth` writes)."""
    from training.datasets.posts import SynthConfig, write

    out = tmp_path_factory.mktemp("posts")
    write(SynthConfig(), out)
    return out


@pytest.fixture(scope="session")
def posts_bundle(posts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained with the default settings on the default ``posts`` data."""
    need_tensorflow()
    from training.config import TrainConfig
    from training.pipeline import train_bundle

    return train_bundle(
        "posts",
        posts_dir,
        tmp_path_factory.mktemp("bundles"),
        TrainConfig(),
        report=lambda _msg: None,
    )


@contextlib.contextmanager
def redis_server(
    workdir: Path, *args: str, port: int | None = None
) -> Iterator[tuple[subprocess.Popen, int]]:
    """A real ``redis-server`` on loopback (a free port unless given), no persistence unless
    ``args`` (extra options: ``--requirepass``, ``--appendonly yes``, ...) say otherwise,
    stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    port = port or free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *options, "--dir", str(workdir), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` for the session."""
    with redis_server(tmp_path_factory.mktemp("redis")) as (_proc, port):
        yield f"redis://127.0.0.1:{port}/0"
