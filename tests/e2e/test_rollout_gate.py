"""The rollout gate on real bundles: `--baseline` figures are the serving bundle's own test
figures (same data, same protocol, through its ONNX models), and a reload obeys them."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.bundle import read_manifest
from tests.e2e.support import Deployment, deploy, serving

pytestmark = pytest.mark.anyio


def test_the_baseline_is_scored_like_the_candidate(posts_bundle: Path, second_bundle: Path):
    serving_metrics = read_manifest(posts_bundle).metrics
    candidate = read_manifest(second_bundle).metrics
    gate = candidate["gate"]
    assert gate["baseline"]["version"] == read_manifest(posts_bundle).version
    # the same test split (a time cut) the baseline was evaluated on when it was trained
    assert gate["baseline"]["ranker_auc"] == pytest.approx(
        serving_metrics["ranker"]["auc"], abs=2e-3
    )
    assert gate["baseline"]["recall@50"] == pytest.approx(
        serving_metrics["retrieval"]["dssm"]["recall@50"], abs=2e-3
    )
    assert gate["candidate"] == {
        "ranker_auc": candidate["ranker"]["auc"],
        "recall@50": candidate["retrieval"]["dssm"]["recall@50"],
    }


async def test_a_reload_follows_the_gate(
    deployment: Deployment, second_bundle: Path, posts_dir: Path, tmp_path: Path
):
    deploy(second_bundle, posts_dir, tmp_path, deployment.milvus_uri, deployment.store_uri)
    gate = read_manifest(second_bundle).metrics["gate"]
    worse = any(
        gate["candidate"][name] < gate["baseline"][name] - 0.005 for name in gate["candidate"]
    )
    async with serving(deployment.settings(index_worker=False)) as c:
        r = await c.post("/v1/admin/reload", json={"bundle": str(second_bundle)})
        if worse:  # two ranker epochs against a fully trained bundle: expected
            assert r.status_code == 409 and r.json()["error"]["code"] == "rollout_refused"
            assert f"{gate['baseline']['ranker_auc']:.4f}" in r.json()["error"]["message"]
            r = await c.post("/v1/admin/reload", json={"bundle": str(second_bundle), "force": True})
        assert r.status_code == 200, r.text
        assert r.json()["gate"]["decision"] == ("forced" if worse else "passed")
        back = await c.post("/v1/admin/reload", json={"bundle": str(deployment.bundle)})
        assert back.status_code == 409, "the first bundle was never scored against the second"
        back = await c.post(
            "/v1/admin/reload", json={"bundle": str(deployment.bundle), "force": True}
        )
        assert back.status_code == 200 and back.json()["gate"]["decision"] == "forced"
