"""The operator's path as the README gives it, on a running `recsys demo`.

The demo runs as a user starts it (a subprocess in its own folder), on the session's trained
bundle and data so it starts serving at once. Beside it: `recsys index status` and a second
`recsys serve` through the demo's Milvus Lite server, and then every shell block the README
fences as ```` ```bash runnable ```` — in order, in one bash, as written, with two changes: the
README's ports (8000, 19530) become the free ones this demo got (and ``RECSYS_PORT`` names the
API's, as 8000 is the default), and ``curl`` fails on an HTTP error (``--fail-with-body``), so a
refused request fails the test instead of printing an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.cli.common import port_problem
from service.loopback import free_port
from tests.e2e.test_uvicorn import stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = re.compile(r"^```bash runnable\n(.*?)^```", re.M | re.S)
README_API_PORT, README_LITE_PORT = 8000, 19530
STRICT_CURL = 'curl() { command curl --fail-with-body "$@"; }\n'


def runnable_blocks(readme: str) -> list[str]:
    return RUNNABLE.findall(readme)


@dataclass
class Demo:
    workdir: Path
    api_port: int
    lite_port: int
    proc: subprocess.Popen
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def lite_uri(self) -> str:
        return f"http://127.0.0.1:{self.lite_port}"

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "service", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def user_env(api_port: int) -> dict[str, str]:
    """A shell like the user's: no RECSYS_* of the test run, the venv's `recsys` on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["RECSYS_PORT"] = str(api_port)
    env["RECSYS_LOG_LEVEL"] = "WARNING"
    return env


@pytest.fixture(scope="module")
def demo(posts_bundle: Path, posts_dir: Path, tmp_path_factory) -> Iterator[Demo]:
    """`recsys demo` in a folder that already holds its data and a bundle (steps 1-2 reuse
    them; it indexes, imports profiles and serves)."""
    workdir = tmp_path_factory.mktemp("demo")
    shutil.copytree(posts_dir, workdir / "data" / "posts")
    shutil.copytree(posts_bundle, workdir / "bundles" / posts_bundle.name)
    api_port, lite_port = free_port(), free_port()
    env = user_env(api_port)
    log = (workdir / "demo.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "demo", "--milvus-port", str(lite_port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Demo(workdir, api_port, lite_port, proc, env)
    try:
        _wait_ready(running)
        yield running
    finally:
        stop(proc)
        log.close()


def _wait_ready(demo: Demo) -> None:
    try:
        wait_ready(demo.proc, demo.url, timeout=240)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{(demo.workdir / 'demo.log').read_text()[-3000:]}") from None


def test_index_status_and_a_second_api_work_beside_the_demo(demo: Demo, posts_bundle: Path):
    bundle = f"bundles/{posts_bundle.name}"
    status = demo.run("index", "status", "--bundle", bundle, "--uri", demo.lite_uri)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["count"] == 1500

    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--bundle", bundle]
    command += ["--milvus-uri", demo.lite_uri, "--port", str(port)]
    second = subprocess.Popen(
        command, cwd=demo.workdir, env=demo.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_ready(second, f"http://127.0.0.1:{port}")
        body = {"user_id": "u42", "k": 5}
        got = httpx.post(f"http://127.0.0.1:{port}/v1/recommendations", json=body, timeout=10)
        assert got.status_code == 200 and not got.json()["degraded"], got.text
    finally:
        stop(second)


def test_a_refused_rollout_says_why_and_exits_non_zero(demo: Demo):
    refused = demo.run("rollout", "bundles/no_such_bundle")
    assert refused.returncode == 1
    assert "rollout refused (409)" in refused.stderr and "still serving" in refused.stderr


def test_the_readme_runnable_blocks_work_on_the_demo_as_written(demo: Demo, posts_bundle: Path):
    blocks = runnable_blocks((ROOT / "README.md").read_text())
    script = "set -euo pipefail\n" + STRICT_CURL + "\n".join(blocks)
    script = script.replace(f":{README_API_PORT}", f":{demo.api_port}")
    script = script.replace(f":{README_LITE_PORT}", f":{demo.lite_port}")
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=demo.workdir,
        env=demo.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    served = httpx.get(f"{demo.url}/v1/models", timeout=10).json()
    assert served["version"] != posts_bundle.name  # the walkthrough rolled out a new bundle
    assert (demo.workdir / "bundles" / served["version"]).is_dir()
    assert f'"version": "{served["version"]}"' in done.stdout  # what `recsys rollout` printed
    print(f"README runnable blocks: {time.monotonic() - started:.1f}s")


def test_stopping_the_demo_stops_its_lite_server(demo: Demo):
    assert port_problem("127.0.0.1", demo.lite_port) is not None  # served while the demo runs
    stop(demo.proc)
    assert demo.proc.returncode in (0, 143, -15), (demo.workdir / "demo.log").read_text()[-3000:]
    deadline = time.monotonic() + 10
    while port_problem("127.0.0.1", demo.lite_port) is not None:
        assert time.monotonic() < deadline, "the demo's Lite server outlived the demo"
        time.sleep(0.1)
    assert "Traceback" not in (demo.workdir / "demo.log").read_text()
