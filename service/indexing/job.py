"""The batch item-indexing job: items file -> encoder -> item tower (ONNX) -> vector index.

Streams the input in batches, upserts idempotently, checkpoints after every batch (a rerun
after a crash resumes where it stopped), reports bad rows, and verifies the final count
with a strongly consistent read.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from service.bundle import Bundle
from service.bundle.manifest import ITEM_TOWER
from service.features import EncodingError, FeatureSchema, SparseFeat
from service.features.vocab import token
from service.index import ScalarField, VectorIndex
from service.indexing.checkpoint import Checkpoint, JobKey
from service.indexing.readers import Row, batched, read_rows
from service.state import StateStore

MAX_ID_BYTES = 128
BAD_ROW_EXAMPLES = 5
BadRowPolicy = Literal["fail", "skip"]


class IndexJobError(RuntimeError):
    """The job stopped: bad rows under the "fail" policy, or a count mismatch."""


@dataclass
class JobReport:
    collection: str
    rows_read: int = 0
    indexed: int = 0
    resumed_batches: int = 0
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    unique_ids: int = 0
    final_count: int = 0
    embed_seconds: float = 0.0
    upsert_seconds: float = 0.0


def in_shard(item_id: str, shard: int, shards: int) -> bool:
    """A stable split by id (crc32, not Python's salted ``hash``): the same on every run."""
    return shards == 1 or zlib.crc32(item_id.encode()) % shards == shard


def scalar_fields(bundle: Bundle) -> list[ScalarField]:
    """The schema's filterable item attributes, stored beside the vectors."""
    return [
        ScalarField(f.name, "string" if isinstance(f, SparseFeat) else "string_array")
        for f in bundle.encoder.schema.filterable()
    ]


def item_attributes(bundle: Bundle, rows: list[Row]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in bundle.encoder.schema.filterable():
        if isinstance(f, SparseFeat):
            out[f.name] = ["" if r.get(f.name) is None else token(r[f.name]) for r in rows]
        else:
            out[f.name] = [[token(v) for v in (r.get(f.name) or [])] for r in rows]
    return out


class _Validator:
    """Splits a batch into rows that encode and bad rows (counted, sampled, or fatal)."""

    def __init__(self, bundle: Bundle, policy: BadRowPolicy, report: JobReport) -> None:
        self.encoder, self.policy, self.report = bundle.encoder, policy, report
        self.key = bundle.encoder.schema.item_key
        self.features = bundle.features(ITEM_TOWER)

    def keep(self, rows: list[Row], first_row: int) -> list[Row]:
        checked = [(first_row + i, row, self._id_problem(row)) for i, row in enumerate(rows)]
        candidates = [row for _, row, problem in checked if problem is None]
        try:
            self.encoder.encode_rows(candidates, self.features)
            whole_batch_encodes = True
        except (EncodingError, TypeError, ValueError):
            whole_batch_encodes = False
        good = []
        for number, row, problem in checked:
            if problem is None and not whole_batch_encodes:
                problem = self._encoding_problem(row)
            if problem is None:
                good.append(row)
            else:
                self._bad(number, problem)
        return good

    def _bad(self, number: int, problem: str) -> None:
        self.report.bad_rows += 1
        if len(self.report.bad_examples) < BAD_ROW_EXAMPLES:
            self.report.bad_examples.append(f"row {number}: {problem}")
        if self.policy == "fail":
            raise IndexJobError(f"bad row {number}: {problem} (--on-bad-rows skip skips such rows)")

    def _id_problem(self, row: Row) -> str | None:
        if "__error__" in row:
            return row["__error__"]
        item_id = row.get(self.key)
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or str(item_id) == "":
            return f"missing or invalid {self.key!r}"
        if len(str(item_id).encode()) > MAX_ID_BYTES:
            return f"{self.key!r} longer than {MAX_ID_BYTES} bytes"
        return None

    def _encoding_problem(self, row: Row) -> str | None:
        try:
            self.encoder.encode_rows([row], self.features)
        except (EncodingError, TypeError, ValueError) as exc:
            return str(exc)
        return None


def run_index_job(
    bundle: Bundle,
    index: VectorIndex,
    items_path: Path,
    checkpoint_dir: Path,
    batch_size: int = 2048,
    shard: int = 0,
    shards: int = 1,
    on_bad_rows: BadRowPolicy = "fail",
    progress: Callable[[int], None] = lambda _n: None,
    catalog: StateStore | None = None,
) -> JobReport:
    """Index this shard of ``items_path`` into the bundle's collection; ``progress(n)`` is
    called with the rows handled by each batch. With a ``catalog`` store, every indexed row
    is also recorded there (as indexed in this version), so the online service can rank it."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard}/{shards}: need 0 <= i < N")
    schema = bundle.encoder.schema
    collection = index.ensure_collection(
        bundle.version, bundle.manifest.embedding_dim, scalar_fields(bundle)
    )
    report = JobReport(collection)
    checkpoint = Checkpoint(
        checkpoint_dir, JobKey.of(bundle.version, items_path, shard, shards, batch_size)
    )
    done = report.resumed_batches = checkpoint.committed_batches()
    validator = _Validator(bundle, on_bad_rows, report)
    good_ids: set[str] = set()
    batches = _shard_batches(items_path, schema.item_key, schema, batch_size, shard, shards)
    for batch_no, rows in enumerate(batches, start=1):
        first_row = report.rows_read
        report.rows_read += len(rows)
        good = validator.keep(rows, first_row)
        ids = [token(r[schema.item_key]) for r in good]
        good_ids.update(ids)
        if batch_no > done and good:
            t0 = time.perf_counter()
            vectors = bundle.embed_items(
                {f.name: [r.get(f.name) for r in good] for f in bundle.features(ITEM_TOWER)},
                len(good),
            )
            t1 = time.perf_counter()
            index.upsert(
                bundle.version, ids, np.asarray(vectors, np.float32), item_attributes(bundle, good)
            )
            report.embed_seconds += t1 - t0
            report.upsert_seconds += time.perf_counter() - t1
            report.indexed += len(good)
            if catalog is not None:
                catalog.put_items(list(zip(ids, good, strict=True)), indexed_version=bundle.version)
        if batch_no > done:
            checkpoint.commit(batch_no, report.rows_read)
        progress(len(rows))

    index.flush(bundle.version)  # seal the writes so a Milvus server builds its HNSW index
    report.unique_ids = len(good_ids)
    report.final_count = index.count(bundle.version)
    if shards == 1 and report.final_count != report.unique_ids:
        raise IndexJobError(
            f"{collection}: {report.final_count} items after indexing, expected "
            f"{report.unique_ids} (the unique ids of the input): the collection holds items "
            "from elsewhere, or writes were lost"
        )
    if shards > 1 and report.final_count < report.unique_ids:
        raise IndexJobError(
            f"{collection}: {report.final_count} items after indexing, fewer than the "
            f"{report.unique_ids} unique ids of shard {shard}/{shards}: writes were lost"
        )
    checkpoint.finish()
    return report


def _shard_batches(
    path: Path, key: str, schema: FeatureSchema, batch_size: int, shard: int, shards: int
) -> Iterator[list[Row]]:
    """Full batches of this shard's rows, so a batch number means the same rows on every run.
    Rows without an id go to shard 0, which reports them."""
    rows = read_rows(path, schema, batch_size)
    mine = (r for r in rows if in_shard("" if r.get(key) is None else token(r[key]), shard, shards))
    return batched(mine, batch_size)
