"""`recsys compare` end to end on a tiny budget: a real subprocess, real training, real
ONNX export and timing, and the three report files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import need_tensorflow
from training.datasets.posts import SynthConfig, write


def recsys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=600
    )


def test_compare_writes_markdown_json_and_png(tmp_path: Path) -> None:
    need_tensorflow()
    data = tmp_path / "posts"
    write(SynthConfig(users=300, items=120, impressions_per_user=20), data)
    out = tmp_path / "docs"
    run = recsys(
        "compare",
        *("--dataset", "posts", "--data-dir", str(data), "--out", str(out)),
        *("--seeds", "3", "--rankers", "lr,widedeep", "--epochs", "1"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == [str(out / f"compare-posts.{e}") for e in ("json", "md", "png")]

    doc = json.loads((out / "compare-posts.json").read_text())
    assert doc["seeds"] == [3] and doc["split"]["method"] == "time"
    ranking = doc["ranking"]["summary"]
    assert list(ranking) == ["lr", "widedeep"]
    for name, metrics in ranking.items():
        assert len(metrics["auc"]["values"]) == 1, name
        assert 0.0 < metrics["auc"]["mean"] < 1.0 and metrics["logloss"]["mean"] > 0
        assert metrics["parity_max_abs_diff"] <= 1e-4
        assert metrics["onnx_ms_p50"]["mean"] > 0 and metrics["epochs"]["values"] == [1]
    assert doc["rankers"]["lr"]["learning_rate"] == 1e-2  # the per-ranker override is recorded
    retrieval = doc["retrieval"]["summary"]
    assert list(retrieval) == ["dssm", "bpr", "popularity"]
    assert all(0 <= m["recall@10"]["mean"] <= 1 for m in retrieval.values())
    assert retrieval["dssm"]["recall@10_minus_bpr"]["values"]  # paired with BPR by seed

    markdown = (out / "compare-posts.md").read_text()
    assert "## Protocol" in markdown and "| widedeep |" in markdown and "| bpr |" in markdown
    assert "recsys compare --dataset posts" in markdown
    assert (out / "compare-posts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_rejects_an_unknown_ranker(tmp_path: Path) -> None:
    need_tensorflow()
    run = recsys("compare", "--dataset", "posts", "--rankers", "lr,gbdt", "--out", str(tmp_path))
    assert run.returncode == 1
    assert "unknown rankers ['gbdt']" in run.stderr
    assert not list(tmp_path.iterdir())
