"""Argument checks shared by every adapter, so all backends accept and reject the same input.

Item ids follow the service's one id rule (`service.validation.check_id`: no control
characters; the Milvus adapter escapes the rest, `milvus_keys`). Attribute and filter values
follow `service.validation` too; this module turns its `InvalidInput` into the index's own
`InvalidRequest` / `InvalidFilter`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from service import validation
from service.index.port import (
    MAX_EXCLUSIONS,
    MAX_FILTER_VALUES,
    MAX_LIMIT,
    FilterValue,
    InvalidFilter,
    InvalidRequest,
    ScalarField,
)

FIELD_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
RESERVED_FIELD_NAMES = frozenset({"item_id", "vector"})
FIELD_KINDS = frozenset({"string", "int", "bool", "string_array"})
MAX_STRING_LENGTH = 65_535
MAX_ARRAY_CAPACITY = 4_096


def check_fields(fields: Iterable[ScalarField]) -> tuple[ScalarField, ...]:
    checked = tuple(fields)
    names = [f.name for f in checked]
    for f in checked:
        if not isinstance(f, ScalarField):
            raise InvalidRequest(f"fields must be ScalarField, got {type(f).__name__}")
        if not FIELD_NAME_PATTERN.fullmatch(f.name) or f.name in RESERVED_FIELD_NAMES:
            raise InvalidRequest(
                f"field name {f.name!r} must match {FIELD_NAME_PATTERN.pattern} "
                f"and not be one of {sorted(RESERVED_FIELD_NAMES)}"
            )
        if f.kind not in FIELD_KINDS:
            raise InvalidRequest(f"field {f.name!r}: kind {f.kind!r} not in {sorted(FIELD_KINDS)}")
        if not 1 <= f.max_length <= MAX_STRING_LENGTH:
            raise InvalidRequest(f"field {f.name!r}: max_length must be 1..{MAX_STRING_LENGTH}")
        if not 1 <= f.max_capacity <= MAX_ARRAY_CAPACITY:
            raise InvalidRequest(f"field {f.name!r}: max_capacity must be 1..{MAX_ARRAY_CAPACITY}")
    if len(set(names)) != len(names):
        raise InvalidRequest(f"duplicate field names in {names}")
    return checked


def check_dim(dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not 1 <= dim <= 32_768:
        raise InvalidRequest(f"dim must be an int in 1..32768, got {dim!r}")
    return int(dim)


def check_id(item_id: object, what: str = "item id") -> str:
    try:
        return validation.check_id(item_id, what)
    except validation.InvalidInput as exc:
        raise InvalidRequest(str(exc)) from None


def check_ids(ids: Sequence[str], *, unique: bool = False, what: str = "item id") -> list[str]:
    if isinstance(ids, str):
        raise InvalidRequest(f"{what}s must be a sequence of strings, not one string")
    checked = [check_id(i, what) for i in ids]
    if unique and len(set(checked)) != len(checked):
        dupes = sorted(i for i, k in Counter(checked).items() if k > 1)
        raise InvalidRequest(f"duplicate {what}s in one batch: {dupes[:10]}")
    return checked


def normalized_rows(vectors: np.ndarray, n: int, dim: int) -> np.ndarray:
    """`[n, dim]` float32 rows scaled to unit L2 norm; rejects zero or non-finite rows."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape != (n, dim):
        raise InvalidRequest(f"vectors must have shape [{n}, {dim}], got {list(arr.shape)}")
    norms = np.linalg.norm(arr, axis=1)
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        raise InvalidRequest(
            f"vectors must be finite and non-zero; bad rows {np.flatnonzero(bad)[:10].tolist()}"
        )
    return arr / norms[:, None]


def normalized_query(vector: np.ndarray, dim: int) -> np.ndarray:
    """A `[dim]` query scaled to unit L2 norm."""
    arr = np.asarray(vector, dtype=np.float32)
    if arr.shape != (dim,):
        raise InvalidRequest(f"query vector must have shape [{dim}], got {list(arr.shape)}")
    return normalized_rows(arr[None, :], 1, dim)[0]


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer):
        raise InvalidRequest(f"limit must be an int, got {limit!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be in 1..{MAX_LIMIT}, got {limit}")
    return int(limit)


def check_exclusions(exclude_ids: Sequence[str]) -> list[str]:
    if len(exclude_ids) > MAX_EXCLUSIONS:
        raise InvalidRequest(f"at most {MAX_EXCLUSIONS} excluded ids, got {len(exclude_ids)}")
    return sorted(set(check_ids(exclude_ids, what="excluded id")))


def check_attributes(
    fields: Sequence[ScalarField], attributes: Mapping[str, Sequence[Any]], n: int
) -> dict[str, list[Any]]:
    """One column of n plain Python values per field (lists of str for `string_array`)."""
    expected = {f.name for f in fields}
    if set(attributes) != expected:
        missing, extra = sorted(expected - set(attributes)), sorted(set(attributes) - expected)
        raise InvalidRequest(
            f"attributes must match the fields: missing {missing}, unknown {extra}"
        )
    columns = {}
    for f in fields:
        column = list(attributes[f.name])
        if len(column) != n:
            raise InvalidRequest(f"attribute {f.name!r} has {len(column)} values for {n} items")
        columns[f.name] = [_attribute_value(f, v) for v in column]
    return columns


def check_filter(
    fields: Sequence[ScalarField], filter: Mapping[str, Sequence[FilterValue]] | None
) -> list[tuple[ScalarField, list[FilterValue]]]:
    """`(field, distinct values)` pairs in field order; raises `InvalidFilter`."""
    if not filter:
        return []
    by_name = {f.name: f for f in fields}
    unknown = sorted(set(filter) - set(by_name))
    if unknown:
        raise InvalidFilter(f"unknown filter fields {unknown}; filterable: {sorted(by_name)}")
    checked = []
    for f in fields:
        if f.name not in filter:
            continue
        values = filter[f.name]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence | set | frozenset):
            raise InvalidFilter(f"filter {f.name!r} must be a list of values, got {values!r}")
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidFilter(f"filter {f.name!r}: at most {MAX_FILTER_VALUES} values")
        distinct = list(dict.fromkeys(_filter_value(f, v) for v in values))
        checked.append((f, distinct))
    return checked


def _attribute_value(field: ScalarField, value: Any) -> Any:
    try:
        return validation.attribute_value(field, value)
    except validation.InvalidInput as exc:
        raise InvalidRequest(f"attribute {exc}") from None


def _filter_value(field: ScalarField, value: Any) -> FilterValue:
    try:
        return validation.filter_value(field, value)
    except validation.InvalidInput as exc:
        raise InvalidFilter(str(exc)) from None


def fields_mismatch(stored: Sequence[ScalarField], wanted: Sequence[ScalarField]) -> str | None:
    """What differs between two field lists, ignoring order and unused bounds; None if equal."""
    have, want = _significant(stored), _significant(wanted)
    if have == want:
        return None
    missing = sorted(set(want) - set(have))
    unexpected = sorted(set(have) - set(want))
    changed = sorted(n for n in set(have) & set(want) if have[n] != want[n])
    return (
        f"missing fields {missing}, unexpected fields {unexpected}, "
        f"changed fields {[(have[n], want[n]) for n in changed]}"
    )


def _significant(fields: Sequence[ScalarField]) -> dict[str, ScalarField]:
    def normal(f: ScalarField) -> ScalarField:
        max_length = f.max_length if f.kind in ("string", "string_array") else 0
        max_capacity = f.max_capacity if f.kind == "string_array" else 0
        return ScalarField(f.name, f.kind, max_length, max_capacity)

    return {f.name: normal(f) for f in fields}
