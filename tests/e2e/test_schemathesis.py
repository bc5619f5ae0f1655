"""Schemathesis (every check, its four phases, stateful links) against a real uvicorn serving
a trained bundle on Milvus Lite, with API keys and without: 0 failures.

One check is off: `use_after_free`. `GET /v1/items/{item_id}` is the status of an item's
latest change, so after a `DELETE` it answers 200 with `deleted: true` (queued, then done
once indexed) by design; similar items of a deleted item are a 404 and that route is checked.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from tests.e2e.support import deploy
from tests.live import live

pytestmark = pytest.mark.slow
SIMILAR = "/v1/items/{item_id}/similar"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
KEYS = {"api_keys": ["user-key"], "admin_api_keys": ["admin-key"]}


@pytest.mark.parametrize("keys", [False, True], ids=["auth-off", "api-keys"])
def test_the_api_honours_its_openapi_document(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path, keys: bool
):
    if not SCHEMATHESIS.exists():
        pytest.skip("schemathesis is not installed (the dev extra has it)")
    dep = deploy(
        posts_bundle, posts_dir, tmp_path, str(tmp_path / "m.db"), f"sqlite:///{tmp_path}/s.db"
    )
    settings = dep.settings(log_level="ERROR", **(KEYS if keys else {}))
    with live(create_app(settings)) as url:
        command = [str(SCHEMATHESIS), "run", f"{url}/openapi.json", "--checks", "all"]
        command += ["--exclude-checks", "use_after_free", "--max-examples", "30"]
        command += ["--seed", "7", "--workers", "1", "--no-color", "--request-timeout", "10"]
        if keys:
            command += ["-H", "X-API-Key: admin-key"]
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:]
    assert "failures" not in run.stdout.splitlines()[-1], run.stdout[-3000:]


def test_a_request_line_past_the_server_limit_is_the_documented_400(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path
):
    """What schemathesis once found with 1000 long exclusions: uvicorn's own 400, which the
    similar-items route documents as plain text (the service never sees such a request)."""
    dep = deploy(
        posts_bundle, posts_dir, tmp_path, str(tmp_path / "m.db"), f"sqlite:///{tmp_path}/s.db"
    )
    with live(create_app(dep.settings(log_level="ERROR"))) as url:
        documented = httpx.get(f"{url}/openapi.json").json()["paths"][SIMILAR]["get"]["responses"]
        exclusions = "&".join(f"exclude_item_ids={'x' * 250}{i}" for i in range(300))
        too_long = _get(url, f"/v1/items/p1/similar?{exclusions}")
        fits = _get(url, f"/v1/items/p1/similar?{exclusions[:30_000]}")
    assert len(exclusions) > 65_536
    assert too_long.status == 400
    assert too_long.getheader("content-type").startswith("text/plain")
    assert list(documented["400"]["content"]) == ["text/plain"]
    assert fits.status in (200, 404)


def _get(url: str, target: str) -> http.client.HTTPResponse:
    """A GET of any length (httpx refuses URLs past 64 KiB itself)."""
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    connection.request("GET", target)
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer
