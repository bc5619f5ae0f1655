"""An A/B experiment on real bundles (real Milvus Lite, real ONNX) over HTTP: two bundles, each
with its own collection, split sticky by weight; each answer names its variant, the impression
log holds as many answers per variant as were served, and `recsys experiment report` counts
the same (and draws its chart)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from service.bundle import read_manifest
from service.online.experiment import assign
from service.state import open_store
from tests.e2e.support import deploy, serving
from tests.e2e.test_feedback_loop import recsys

pytestmark = pytest.mark.anyio
USERS = [f"u{n}" for n in range(60)]
WEIGHTS = (0.7, 0.3)


async def test_an_ab_split_is_sticky_and_its_report_matches_the_raw_counts(
    posts_bundle: Path, second_bundle: Path, posts_dir: Path, tmp_path: Path
):
    """Its own index and store: the experiment it starts must not reach other tests."""
    milvus, store_uri = str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'state.db'}"
    deployment = deploy(posts_bundle, posts_dir, tmp_path, milvus, store_uri)
    deploy(second_bundle, posts_dir, tmp_path, milvus, store_uri)
    versions = {
        "control": read_manifest(deployment.bundle).version,
        "treatment": read_manifest(second_bundle).version,
    }
    body = {
        "name": "e2e-ab",
        "variants": [
            {"name": "control", "bundle": str(deployment.bundle), "weight": WEIGHTS[0]},
            {"name": "treatment", "bundle": str(second_bundle), "weight": WEIGHTS[1]},
        ],
        "shadow": {"name": "shadow", "bundle": str(second_bundle)},
    }
    expected = {u: ("control", "treatment")[assign("e2e-ab", u, WEIGHTS)] for u in USERS}
    since = time.time()
    served: Counter[str] = Counter()
    clicks: Counter[str] = Counter()
    async with serving(deployment.settings(index_worker=False)) as c:
        r = await c.put("/v1/admin/experiment", json=body)
        assert r.status_code == 200, r.text
        for round_ in range(2):
            for n, user in enumerate(USERS):
                r = await c.post("/v1/recommendations", json={"user_id": user, "k": 5})
                assert r.status_code == 200, r.text
                answer = r.json()
                assert answer["variant"] == expected[user], "sticky: the hash decides"
                assert answer["model_version"] == versions[answer["variant"]]
                assert answer["collection"] == f"items_{versions[answer['variant']]}"
                served[answer["variant"]] += 1
                if round_ == 0 and n % 3 == 0:
                    click = {"item_id": answer["items"][0]["item_id"], "type": "click",
                             "request_id": answer["request_id"]}  # fmt: skip
                    r = await c.post(f"/v1/users/{user}/events", json={"events": [click]})
                    assert r.json()["attributed"] == 1
                    clicks[answer["variant"]] += 1
        assert 0.55 < served["control"] / sum(served.values()) < 0.85
        summary = (await c.get("/v1/experiments")).json()
        online = {v["name"]: v["online"][0] for v in summary["variants"]}
        assert {n: o["impressions"] for n, o in online.items()} == dict(served)
        assert summary["shadow"]["model_version"] == versions["treatment"]
    # the shutdown wrote every impression (and drained the shadow computations)
    assert summary["shadow"]["runs"] + summary["shadow"]["skipped"] <= 2 * len(USERS)
    store = open_store(deployment.store_uri)
    logged = Counter(i.variant for i in store.impressions_since(since))
    store.close()
    assert logged == served

    png = tmp_path / "report.png"
    done = recsys(
        "experiment", "report", "--store", deployment.store_uri, "--since", str(since),
        "--json", "--out", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {row["variant"]: row for row in json.loads(done.stdout)}
    assert list(rows) == ["control", "treatment"]
    for name in rows:
        assert rows[name]["impressions"] == served[name]
        assert rows[name]["items_shown"] == 5 * served[name]
        assert rows[name]["positives"] == clicks[name]
    assert rows["control"]["diff"] is None and rows["treatment"]["diff"] is not None
    assert png.stat().st_size > 5_000 and png.read_bytes()[:4] == b"\x89PNG"
