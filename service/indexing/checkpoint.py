"""Checkpoints of a batch indexing job: how many batches of which input are committed.

A checkpoint is only valid for the same bundle version, input file (size and mtime), shard
and batch size; anything else starts over. Upserts are idempotent, so a crash between an
upsert and its checkpoint re-sends that one batch and never duplicates an item.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobKey:
    version: str
    input: str
    input_size: int
    input_mtime_ns: int
    shard: int
    shards: int
    batch_size: int

    @classmethod
    def of(cls, version: str, path: Path, shard: int, shards: int, batch_size: int) -> JobKey:
        stat = path.stat()
        return cls(
            version, str(path.resolve()), stat.st_size, stat.st_mtime_ns, shard, shards, batch_size
        )

    def file_name(self) -> str:
        return f"items_{self.version}-shard{self.shard}of{self.shards}.json"


class Checkpoint:
    def __init__(self, directory: Path, key: JobKey) -> None:
        self.key = key
        self.path = Path(directory) / key.file_name()

    def committed_batches(self) -> int:
        """Batches already upserted by an earlier run of the same job (0 when none)."""
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return 0
        return int(data["batches"]) if data.get("key") == asdict(self.key) else 0

    def commit(self, batches: int, rows: int) -> None:
        """Record progress atomically (write a temp file, then rename over the old one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": asdict(self.key), "batches": batches, "rows": rows}))
        os.replace(tmp, self.path)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)
