"""The service the simulated users talk to: `recsys serve` in its own process on loopback,
on a Milvus Lite server the caller runs (so it can index a retrained bundle's collection
while the service serves), and the REST calls the loop makes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from service.loopback import free_port


class ServiceError(RuntimeError):
    """The service did not start, or answered a call of the loop with an error."""


@contextmanager
def running_service(
    bundle: Path, bundles_root: Path, workdir: Path, milvus_uri: str, store_uri: str
) -> Iterator[str]:
    """`recsys serve` of ``bundle`` until the block ends; yields its URL once ready."""
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_BUNDLES_ROOT": str(bundles_root),
        "RECSYS_IMPRESSIONS_FLUSH_S": "0.2",
        "RECSYS_SYNC_INTERVAL_S": "0.2",
        "RECSYS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "service", "serve", "--bundle", str(bundle)]
    command += ["--milvus-uri", milvus_uri, "--store", store_uri]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with (workdir / "service.log").open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process)
            yield url
        finally:
            process.terminate()  # SIGTERM: the impression buffer is written before exit
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Api:
    """The calls the loop makes, over one keep-alive connection."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def recommend(self, user: str, k: int, context: str) -> dict[str, Any]:
        body = {"user_id": user, "k": k, "context": {"client_type": context}}
        return self._ok(self.http.post("/v1/recommendations", json=body))

    def click(self, user: str, request_id: str, items: list[str]) -> None:
        events = [{"item_id": i, "type": "click", "request_id": request_id} for i in items]
        self._ok(self.http.post(f"/v1/users/{user}/events", json={"events": events}))

    def reload(self, bundle: Path, force: bool = False) -> tuple[int, dict[str, Any]]:
        """(status, body): 200 served, 409 refused by the gate (the body says why)."""
        body = {"bundle": str(bundle), "force": force}
        answer = self.http.post("/v1/admin/reload", json=body, timeout=300)
        if answer.status_code not in (200, 409):
            raise ServiceError(f"reload {bundle}: {answer.status_code} {answer.text}")
        return answer.status_code, answer.json()

    def experiment(self, name: str, variants: dict[str, Path]) -> None:
        body = {
            "name": name,
            "variants": [{"name": n, "bundle": str(b), "weight": 1} for n, b in variants.items()],
        }
        self._ok(self.http.put("/v1/admin/experiment", json=body, timeout=300))

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def _ok(answer: httpx.Response) -> dict[str, Any]:
        if answer.status_code >= 300:
            raise ServiceError(f"{answer.request.url.path}: {answer.status_code} {answer.text}")
        return answer.json()


def _wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"recsys serve exited with {process.returncode}; see service.log")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise ServiceError(f"recsys serve at {url} not ready after {timeout_s:.0f} s")
