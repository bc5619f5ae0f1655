"""The batch indexing job against real Milvus Lite and the exact reference index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.bundle import load_bundle
from service.index import CollectionMismatch, InvalidRequest, ScalarField, open_index
from service.indexing import IndexJobError, run_index_job
from service.indexing.job import in_shard
from service.state import open_store


@pytest.fixture(scope="module")
def bundle(posts_bundle: Path):
    return load_bundle(posts_bundle)


@pytest.fixture(scope="module")
def items_file(posts_dir: Path) -> Path:
    return posts_dir / "items.parquet"


def test_lite_index_matches_exact_search(bundle, items_file: Path, tmp_path: Path) -> None:
    lite = open_index(str(tmp_path / "job.db"), timeout_s=10)
    exact = open_index("memory://")
    for index in (lite, exact):
        report = run_index_job(bundle, index, items_file, tmp_path / "cp", batch_size=500)
        assert report.indexed == report.final_count == 1500
        assert report.embed_seconds > 0 and report.upsert_seconds > 0
    users = bundle.embed_users({"client_id": [f"u{i}" for i in range(20)]}, 20)
    recalls = []
    for vector in users:
        want = {h.item_id for h in exact.search(bundle.version, vector, 100)}
        got = {h.item_id for h in lite.search(bundle.version, vector, 100)}
        recalls.append(len(want & got) / 100)
    assert np.mean(recalls) >= 0.95
    topic = lite.search(bundle.version, users[0], 50, filter={"topic_id": ["t3"]})
    items = pd.read_parquet(items_file).set_index("post_id")
    assert topic and all(items.loc[h.item_id, "topic_id"] == "t3" for h in topic)
    lite.close()


def test_rerun_neither_duplicates_nor_loses(bundle, items_file: Path, tmp_path: Path) -> None:
    index = open_index(str(tmp_path / "rerun.db"), timeout_s=10)
    first = run_index_job(bundle, index, items_file, tmp_path / "cp", batch_size=400)
    second = run_index_job(bundle, index, items_file, tmp_path / "cp", batch_size=400)
    assert first.final_count == second.final_count == 1500
    assert second.resumed_batches == 0  # a finished job leaves no checkpoint behind
    index.close()


def test_shards_split_the_input_exactly(bundle, items_file: Path, tmp_path: Path) -> None:
    index = open_index("memory://")
    reports = [
        run_index_job(bundle, index, items_file, tmp_path / "cp", shard=i, shards=3)
        for i in range(3)
    ]
    assert sum(r.indexed for r in reports) == 1500 == index.count(bundle.version)
    ids = pd.read_parquet(items_file)["post_id"]
    assert [sum(in_shard(i, s, 3) for i in ids) for s in range(3)] == [r.indexed for r in reports]


def test_bad_rows_fail_or_are_reported(bundle, tmp_path: Path) -> None:
    good = {"post_id": "p1", "topic_id": "t1", "post_vec": [0.1] * 32}
    lines = [
        json.dumps(good),
        json.dumps({"topic_id": "t2"}),
        json.dumps({**good, "post_id": "p2", "post_vec": [0.1] * 3}),
        "{not json",
        json.dumps({**good, "post_id": "p\t4"}),  # the service's id rule: no control characters
        json.dumps({**good, "post_id": "p5", "topic_id": "t" * 300}),  # over the index's bound
        json.dumps({**good, "post_id": "p3", "extra_column": 1}),  # columns it does not read
        json.dumps({**good, "post_id": 7}),  # an integer id is read as "7"
        json.dumps({**good, "post_id": "sku/9 'ü'"}),  # any other string is an id
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IndexJobError, match="bad row 1: post_id: required"):
        run_index_job(bundle, open_index("memory://"), path, tmp_path / "cp1")
    index = open_index("memory://")
    report = run_index_job(bundle, index, path, tmp_path / "cp2", on_bad_rows="skip")
    assert report.bad_rows == 5 and report.indexed == 4 == index.count(bundle.version)
    assert any("post_vec: expected 32 values, got 3" in e for e in report.bad_examples)
    assert any("line 4: invalid JSON" in e for e in report.bad_examples)
    assert any("post_id is not an id" in e for e in report.bad_examples)
    assert any("topic_id" in e and "at most 256 bytes" in e for e in report.bad_examples)
    vector = bundle.embed_users({"client_id": ["u1"]})[0]
    found = {h.item_id for h in index.search(bundle.version, vector, 10)}
    assert found == {"p1", "p3", "7", "sku/9 'ü'"}


class RefusingLite:
    """Milvus Lite that refuses upserts holding one of ``refused`` ids, as a server refuses a
    value our checks let through; everything else is the real index."""

    def __init__(self, index, refused: set[str]) -> None:
        self.index, self.refused, self.upserts = index, refused, 0

    def __getattr__(self, name: str):
        return getattr(self.index, name)

    def upsert(self, version, ids, vectors, attributes) -> None:
        self.upserts += 1
        if self.refused & set(ids):
            raise InvalidRequest(f"refused one of {len(ids)} rows")
        self.index.upsert(version, ids, vectors, attributes)


def test_a_row_the_index_refuses_is_skipped_and_reported(bundle, tmp_path: Path) -> None:
    rows = [{"post_id": f"p{n}", "topic_id": "t1", "post_vec": [0.1] * 32} for n in range(50)]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lite = open_index(str(tmp_path / "refusing.db"), timeout_s=10)
    catalog = open_store(f"sqlite:///{tmp_path / 'catalog.db'}")
    index = RefusingLite(lite, {"p7", "p31"})
    with pytest.raises(IndexJobError, match=r"p7.*refused by the index: refused one of 1 rows"):
        run_index_job(bundle, index, path, tmp_path / "cp1", batch_size=64)
    report = run_index_job(
        bundle, index, path, tmp_path / "cp2", on_bad_rows="skip", catalog=catalog
    )
    assert report.bad_rows == 2 and report.indexed == 48 == lite.count(bundle.version)
    assert any("'p31'" in e for e in report.bad_examples)
    assert catalog.item_status("p7") is None and catalog.item_status("p8").state == "indexed"
    lite.close()
    catalog.close()


def test_duplicate_ids_in_one_batch_index_the_last_row(bundle, tmp_path: Path) -> None:
    """One batch may repeat an id (a file of appended updates): the last row wins."""
    first = {"post_id": "p1", "topic_id": "t1", "post_vec": [0.1] * 32}
    lines = [first, {**first, "post_id": "p2"}, {**first, "topic_id": "t2"}]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    index = open_index(str(tmp_path / "dupes.db"), timeout_s=10)
    report = run_index_job(bundle, index, path, tmp_path / "cp")
    assert report.bad_rows == 0 and index.count(bundle.version) == 2 == report.unique_ids
    vector = bundle.embed_users({"client_id": ["u1"]})[0]
    hits = index.search(bundle.version, vector, 10, filter={"topic_id": ["t2"]})
    assert [h.item_id for h in hits] == ["p1"]
    index.close()


def test_csv_items_with_lists_and_vectors(bundle, tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    vec = " ".join(["0.1"] * 32)
    path.write_text(
        f'post_id,topic_id,post_vec\np1,t1,{vec}\np2,t2,"[{", ".join(["0.2"] * 32)}]"\n'
    )
    index = open_index("memory://")
    assert run_index_job(bundle, index, path, tmp_path / "cp").indexed == 2


def test_collection_of_another_shape_is_refused(bundle, items_file: Path, tmp_path: Path) -> None:
    index = open_index(str(tmp_path / "mismatch.db"), timeout_s=10)
    index.ensure_collection(bundle.version, 8, [ScalarField("topic_id", "string")])
    with pytest.raises(CollectionMismatch):
        run_index_job(bundle, index, items_file, tmp_path / "cp")
    index.close()


def test_killed_job_resumes_without_duplicates(
    posts_bundle: Path, items_file: Path, tmp_path: Path
) -> None:
    items = pd.read_parquet(items_file)
    big = pd.concat(
        [items.assign(post_id=items["post_id"] + f"_{copy}") for copy in range(20)],
        ignore_index=True,
    )
    big_file = tmp_path / "big.parquet"
    big.to_parquet(big_file)
    db, checkpoints = tmp_path / "killed.db", tmp_path / "cp"
    command = [
        sys.executable,
        "-m",
        "service",
        "index",
        "--bundle",
        str(posts_bundle),
        "--items",
        str(big_file),
        "--uri",
        str(db),
        "--batch",
        "100",
        "--checkpoint-dir",
        str(checkpoints),
        "--store",
        f"sqlite:///{tmp_path / 'state.db'}",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(checkpoints.glob("*.json"))
        if files:
            try:
                committed = json.loads(files[0].read_text())["batches"]
            except (ValueError, FileNotFoundError):
                committed = 0
        if committed >= 20:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the job finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 20 <= committed < len(big) // 100

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed after" in rerun.stderr
    index = open_index(str(db), timeout_s=10)
    version = load_bundle(posts_bundle).version
    assert index.count(version) == len(big)
    assert not list(checkpoints.glob("*.json"))
    index.close()
    catalog = open_store(f"sqlite:///{tmp_path / 'state.db'}", events_per_user=10)
    assert len(catalog.changes_since(0, limit=len(big) + 1)) == len(big)
    assert catalog.pending_count() == 0  # recorded as indexed in this version
    assert catalog.item_status(big["post_id"][0]).indexed_version == version
    catalog.close()
