"""Stream item rows from parquet, CSV or JSON Lines in batches, without loading the file.

CSV cells are text: a multi-value feature is ``|``-separated ("Action|Comedy"), a vector
is a JSON array or space-separated numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from service.features import DenseFeat, FeatureSchema, VarLenSparseFeat

Row = dict[str, Any]
FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


class ReaderError(ValueError):
    """The items file cannot be read (format, missing id column)."""


def read_rows(
    path: Path, schema: FeatureSchema, block_rows: int = 2048, key: str | None = None
) -> Iterator[Row]:
    """Rows of ``path`` as dicts, in file order, read ``block_rows`` at a time; the ``key``
    column (default: the item id) must be present."""
    key = key or schema.item_key
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ReaderError(f"{path}: unknown format; use one of {sorted(FORMATS)}")
    if not path.is_file():
        raise ReaderError(f"{path}: no such file")
    if fmt == "parquet":
        _require_key(path, key, set(pq.read_schema(path).names))
        for batch in pq.ParquetFile(path).iter_batches(batch_size=block_rows):
            yield from batch.to_pylist()
    elif fmt == "csv":
        yield from _csv_rows(path, schema, key)
    else:
        yield from _jsonl_rows(path)


def _require_key(path: Path, key: str, names: set[str]) -> None:
    if key not in names:
        raise ReaderError(f"{path}: no {key!r} column (the id)")


def batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """Lists of exactly ``size`` rows (the last may be shorter)."""
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _csv_rows(path: Path, schema: FeatureSchema, key: str) -> Iterator[Row]:
    options = pacsv.ConvertOptions(strings_can_be_null=True)
    reader = pacsv.open_csv(path, convert_options=options)
    _require_key(path, key, set(reader.schema.names))
    for batch in reader:
        for row in batch.to_pylist():
            yield {name: _csv_value(schema, name, value) for name, value in row.items()}


def _csv_value(schema: FeatureSchema, name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        feat = schema[name]
    except KeyError:
        return value
    if isinstance(feat, VarLenSparseFeat):
        return [v for v in value.split("|") if v]
    if isinstance(feat, DenseFeat):
        text = value.strip()
        return json.loads(text) if text.startswith("[") else [float(v) for v in text.split()]
    return value


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                row = {"__error__": f"line {line_no}: invalid JSON ({exc})"}
            yield row if isinstance(row, dict) else {"__error__": f"line {line_no}: not an object"}
