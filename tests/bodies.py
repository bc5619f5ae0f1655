"""Request bodies built from data-set rows, for tests of every tier."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def items_body(rows: Iterable[Mapping[str, Any]], key: str = "item_id") -> dict[str, Any]:
    """`PUT /v1/items` for rows that carry their id under the data set's item ``key``."""
    return {
        "items": [
            {"item_id": row[key], "features": {k: v for k, v in row.items() if k != key}}
            for row in rows
        ]
    }


def item_body(item_id: str, **features: Any) -> dict[str, Any]:
    """`PUT /v1/items` for one item."""
    return {"items": [{"item_id": item_id, "features": features}]}
