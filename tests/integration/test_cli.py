"""The `recsys` command line, run as a user runs it (a real subprocess, real files)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd


def recsys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=300
    )


def test_data_synth_writes_the_three_tables(tmp_path: Path) -> None:
    run = recsys("data", "synth", "--out", str(tmp_path), "--users", "50", "--items", "40")
    assert run.returncode == 0, run.stderr
    assert len(pd.read_parquet(tmp_path / "users.parquet")) == 50
    assert len(pd.read_parquet(tmp_path / "items.parquet")) == 40
    assert set(pd.read_parquet(tmp_path / "interactions.parquet").columns) >= {
        "client_id",
        "post_id",
        "label",
    }


def test_train_without_data_says_how_to_get_it(tmp_path: Path) -> None:
    run = recsys(
        "train", "--dataset", "posts", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path)
    )
    assert run.returncode == 1
    assert "recsys data synth" in run.stderr


def test_bundle_inspect_verifies(posts_bundle: Path, tmp_path: Path) -> None:
    run = recsys("bundle", "inspect", str(posts_bundle), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["manifest"]["version"] == posts_bundle.name
    assert report["parity"]["ranker"]["max_abs_diff"] <= 1e-4

    broken = Path(shutil.copytree(posts_bundle, tmp_path / "broken"))
    (broken / "user_tower.onnx").write_bytes(b"not a model")
    run = recsys("bundle", "inspect", str(broken))
    assert run.returncode == 1
    assert "user_tower.onnx does not match its sha256" in run.stderr.replace("\n", "")


def test_index_failed_lists_refused_items_and_retry_queues_them(tmp_path: Path) -> None:
    from service.state import open_store

    uri = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(uri)
    store.put_items([("p1", {"topic_id": "x" * 300}), ("p2", {"topic_id": "t1"})])
    for claimed in store.claim_pending(10, lease_s=30):
        store.fail(claimed, f"refused {claimed.item_id}", max_attempts=1, retry_in_s=0)
    store.close()
    listed = recsys("index", "failed", "--store", uri)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["item_id"], r["state"], r["error"]) for r in rows] == [
        ("p1", "failed", "refused p1"),
        ("p2", "failed", "refused p2"),
    ]
    assert recsys("index", "retry", "--store", uri).returncode == 2  # names or --all
    retried = recsys("index", "retry", "p2", "--store", uri)
    assert retried.returncode == 0 and "1 failed items queued again" in retried.stderr
    assert recsys("index", "retry", "--all", "--store", uri).returncode == 0
    store = open_store(uri)
    assert store.failed_items() == [] and store.pending_count() == 2
    store.close()
