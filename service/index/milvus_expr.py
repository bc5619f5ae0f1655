"""Milvus boolean expressions built from checked values, never from raw request text.

Filter templating (`filter_params`) would be the natural tool, but neither Milvus Lite 2.5.1
nor Milvus 2.3 parse `{name}` placeholders ("no viable alternative at input"), so values are
written as literals: field names come from the collection schema (checked against
`[A-Za-z_][A-Za-z0-9_]*`), ints and bools are rendered by Python, and strings are
double-quoted with `\\` and `"` escaped. Control characters are rejected earlier by
`checks`, because Lite does not unescape `\\n`-style sequences. Empty value lists must not
reach this module: Lite 2.5.1 aborts on `x in []` (an assertion in its C++ core).
"""

from __future__ import annotations

from collections.abc import Sequence

from service.index.milvus_schema import ID_FIELD
from service.index.port import FilterValue, ScalarField


def string_literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: FilterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    return string_literal(value)


def list_literal(values: Sequence[FilterValue]) -> str:
    if not values:
        raise ValueError("empty value list: Milvus Lite cannot evaluate `in []`")
    return "[" + ", ".join(literal(v) for v in values) + "]"


def ids_expression(ids: Sequence[str]) -> str:
    return f"{ID_FIELD} in {list_literal(ids)}"


def search_expression(
    conditions: Sequence[tuple[ScalarField, Sequence[FilterValue]]], exclude_ids: Sequence[str]
) -> str:
    """AND of `field in [...]` (`ARRAY_CONTAINS_ANY` for arrays) and `item_id not in [...]`."""
    parts = [
        f"ARRAY_CONTAINS_ANY({f.name}, {list_literal(values)})"
        if f.kind == "string_array"
        else f"{f.name} in {list_literal(values)}"
        for f, values in conditions
    ]
    if exclude_ids:
        parts.append(f"{ID_FIELD} not in {list_literal(exclude_ids)}")
    return " and ".join(f"({p})" for p in parts)
