"""Secrets and reload safety with the real parts: a password-protected redis-server that goes
away, a trained bundle truncated or tampered with on reload."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import anyio
import pytest

from service.bundle.manifest import MANIFEST_FILE
from tests.bodies import item_body
from tests.conftest import redis_server
from tests.e2e.support import Deployment, deploy, serving

pytestmark = pytest.mark.anyio


async def test_no_password_in_any_answer_or_log_line_after_a_redis_outage(
    posts_bundle: Path, posts_dir: Path, tmp_path: Path, capfd
):
    password = f"pw-{uuid.uuid4().hex}"
    with redis_server(tmp_path, "--requirepass", password) as (redis, port):
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        dep = deploy(posts_bundle, posts_dir, tmp_path, str(tmp_path / "m.db"), url)
        settings = dep.settings(log_level="INFO", store_timeout_s=0.5, sync_interval_s=0.05)
        answers: list[str] = []
        async with serving(settings) as c:
            assert (await c.get("/readyz")).status_code == 200
            redis.terminate()
            redis.wait(10)
            for _ in range(2):
                requests = [
                    c.get("/readyz"),
                    c.post("/v1/recommendations", json={"user_id": "u1", "k": 5}),
                    c.post("/v1/users/u1/events", json={"events": [{"item_id": "p1"}]}),
                    c.put("/v1/users/u1", json={"features": {"follow_topic_id": ["t1"]}}),
                    c.put("/v1/items", json=item_body("p1", topic_id="t1")),
                    c.get("/v1/items/p1"),
                    c.get("/v1/models"),
                ]
                for request in requests:
                    r = await request
                    assert r.status_code < 500 or r.status_code == 503, r.text
                    answers.append(f"{r.status_code} {dict(r.headers)} {r.text}")
            await anyio.sleep(0.5)  # the sync loop and the worker log their failures meanwhile
            ready = await c.get("/readyz")
            answers.append(ready.text)
        assert ready.status_code == 503 and "unavailable" in ready.json()["checks"]["store"]
        assert "redis://:***@127.0.0.1" in ready.text
    logs = capfd.readouterr()
    assert "redis://:***@" in logs.err, "the outage was not logged"
    assert password not in "\n".join(answers) + logs.err + logs.out


@pytest.fixture
def spare_bundle(deployment: Deployment, tmp_path_factory) -> Path:
    """A copy of the served bundle inside the bundles root, to break in each test."""
    root = deployment.bundle.parent.parent
    return Path(shutil.copytree(deployment.bundle, root / f"spare_{uuid.uuid4().hex[:6]}" / "b"))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def fake_metrics(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["metrics"]["ranker"] = {"auc": 0.999}
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("name", "breaks"),
    [
        ("ranker.onnx", truncate),
        ("item_tower.onnx", lambda p: p.write_bytes(b"\x00" + p.read_bytes()[1:])),
        (MANIFEST_FILE, truncate),
        (MANIFEST_FILE, fake_metrics),
    ],
)
async def test_a_truncated_or_tampered_bundle_is_a_409_and_the_old_model_serves(
    deployment: Deployment, spare_bundle: Path, name: str, breaks
):
    breaks(spare_bundle / name)
    async with serving(deployment.settings()) as c:
        before = (await c.get("/v1/models")).json()
        r = await c.post("/v1/admin/reload", json={"bundle": str(spare_bundle)})
        assert r.status_code == 409, r.text
        message = r.json()["error"]["message"]
        assert name in message and "still serving the previous model" in message
        assert str(spare_bundle.parent) not in r.text and "ONNXRuntimeError" not in r.text
        after = (await c.get("/v1/models")).json()
        assert after["version"] == before["version"] and after["metrics"] == before["metrics"]
        rec = await c.post("/v1/recommendations", json={"user_id": "u1", "k": 5})
        assert rec.status_code == 200 and rec.json()["model_version"] == before["version"]
