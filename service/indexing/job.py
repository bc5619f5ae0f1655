"""The batch item-indexing job: items file -> encoder -> item tower (ONNX) -> vector index.

Streams the input in batches, upserts idempotently, checkpoints after every batch (a rerun
after a crash resumes where it stopped), reports bad rows (including rows the index itself
refuses, found by bisecting the batch: `service.indexing.isolate`), and verifies the final
count with a strongly consistent read.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from service.bundle import Bundle
from service.bundle.manifest import ITEM_TOWER
from service.features import EncodingError, FeatureSchema
from service.index import VectorIndex
from service.indexing.checkpoint import Checkpoint, JobKey
from service.indexing.isolate import write_isolating
from service.indexing.readers import Row, batched, read_rows
from service.indexing.writer import ItemWriter
from service.state import StateStore
from service.validation import InvalidInput, RequestRules, check_item_row, id_from_file

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


class _Validator:
    """Splits a batch into rows the index and the item tower will take (ids, with integer ids
    read as their decimal string) and bad rows (counted, sampled, or fatal). The service's
    item-row rule, except that a file may carry columns the schema does not read."""

    def __init__(self, bundle: Bundle, policy: BadRowPolicy, report: JobReport) -> None:
        self.encoder, self.policy, self.report = bundle.encoder, policy, report
        self.rules = RequestRules.from_schema(bundle.encoder.schema)
        self.features = bundle.features(ITEM_TOWER)

    def keep(self, rows: list[Row], first_row: int) -> list[tuple[str, Row]]:
        checked = [(first_row + i, *self._checked(row)) for i, row in enumerate(rows)]
        candidates = [row for _, _, row, problem in checked if problem is None]
        whole_batch_encodes = self._encoding_problem(candidates) is None
        good = []
        for number, item_id, row, problem in checked:
            if problem is None and not whole_batch_encodes:
                problem = self._encoding_problem([row])
            if problem is None:
                good.append((item_id, row))
            else:
                self._bad(number, problem)
        return good

    def _checked(self, row: Row) -> tuple[str, Row, str | None]:
        if "__error__" in row:
            return "", row, row["__error__"]
        key = self.rules.item_key
        row = {**row, key: id_from_file(row.get(key))}
        try:
            return check_item_row(row, self.rules), row, None
        except InvalidInput as exc:
            return "", row, str(exc)

    def _encoding_problem(self, rows: list[Row]) -> str | None:
        try:
            self.encoder.encode_rows(rows, self.features)
        except EncodingError as exc:
            return str(exc)
        return None

    def _bad(self, number: int | str, problem: str) -> None:
        self.report.bad_rows += 1
        if len(self.report.bad_examples) < BAD_ROW_EXAMPLES:
            self.report.bad_examples.append(f"row {number}: {problem}")
        if self.policy == "fail":
            raise IndexJobError(f"bad row {number}: {problem} (--on-bad-rows skip skips such rows)")

    def refused(self, item_id: str, problem: str) -> None:
        """A row the checks passed but the item tower or the index refused."""
        self._bad(f"of item {item_id!r}", f"refused by the index: {problem}")


def _write_batch(writer: ItemWriter, report: JobReport, good: list[tuple[str, Row]]) -> None:
    """Embed and upsert ``good`` in one call, timing both (raises what the index refuses)."""
    rows = [row for _, row in good]
    t0 = time.perf_counter()
    vectors = writer.embed(rows)
    t1 = time.perf_counter()
    writer.write([item_id for item_id, _ in good], vectors, rows)
    report.embed_seconds += t1 - t0
    report.upsert_seconds += time.perf_counter() - t1


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
    writer = ItemWriter(bundle, index)
    report = JobReport(writer.ensure_collection())
    checkpoint = Checkpoint(
        checkpoint_dir, JobKey.of(bundle.version, items_path, shard, shards, batch_size)
    )
    done = report.resumed_batches = checkpoint.committed_batches()
    validator = _Validator(bundle, on_bad_rows, report)
    good_ids: set[str] = set()
    batches = _shard_batches(items_path, bundle.encoder.schema, batch_size, shard, shards)
    for batch_no, rows in enumerate(batches, start=1):
        first_row = report.rows_read
        report.rows_read += len(rows)
        good = validator.keep(rows, first_row)
        if batch_no > done and good:
            refused = write_isolating(lambda part: _write_batch(writer, report, part), good)
            for (item_id, _row), problem in refused:
                validator.refused(item_id, problem)
            skipped = {item_id for (item_id, _row), _ in refused}
            good = [(i, r) for i, r in good if i not in skipped]
            report.indexed += len(good)
            if catalog is not None:
                catalog.put_items(good, indexed_version=bundle.version)
        good_ids.update(i for i, _ in good)
        if batch_no > done:
            checkpoint.commit(batch_no, report.rows_read)
        progress(len(rows))

    index.flush(bundle.version)  # seal the writes so a Milvus server builds its HNSW index
    report.unique_ids = len(good_ids)
    report.final_count = index.count(bundle.version)
    if shards == 1 and report.final_count != report.unique_ids:
        raise IndexJobError(
            f"{report.collection}: {report.final_count} items after indexing, expected "
            f"{report.unique_ids} (the unique ids of the input): the collection holds items "
            "from elsewhere, or writes were lost"
        )
    if shards > 1 and report.final_count < report.unique_ids:
        raise IndexJobError(
            f"{report.collection}: {report.final_count} items after indexing, fewer than the "
            f"{report.unique_ids} unique ids of shard {shard}/{shards}: writes were lost"
        )
    checkpoint.finish()
    return report


def _shard_batches(
    path: Path, schema: FeatureSchema, batch_size: int, shard: int, shards: int
) -> Iterator[list[Row]]:
    """Full batches of this shard's rows, so a batch number means the same rows on every run.
    Rows without an id go to shard 0, which reports them."""
    key = schema.item_key
    rows = read_rows(path, schema, batch_size)
    mine = (r for r in rows if in_shard(str(id_from_file(r.get(key)) or ""), shard, shards))
    return batched(mine, batch_size)
