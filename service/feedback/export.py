"""Training data from served traffic: impressions joined with their attributed events, written
as a data set `recsys train --dataset DIR/<name>.toml` reads with the parquet loader the
synthetic `posts` data uses (users, items, interactions; no code of its own).

- interactions: one row per shown item, ``label`` 1 when a positive event was attributed to
  it (attribution already applied the window), else 0 (shown and not acted on, or a
  negative); the context as served; ``ts`` the answer's time; plus ``request_id``,
  ``position``, ``model_version`` and ``variant`` for analysis;
- users: the user features of each user's latest answer (the stored profile overridden by
  the request's user features), so training sees what serving saw;
- items: the catalog as it is now (an interaction with an item no longer in it is dropped).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from service.features import FeatureSchema
from service.state import StateStore

LOADER = "posts"  # reads users/items/interactions.parquet for any schema
FILES = ("users.parquet", "items.parquet", "interactions.parquet")
SPLIT = {"method": "time", "ratios": [0.8, 0.1, 0.1]}


@dataclass(frozen=True)
class ExportSummary:
    impressions: int
    interactions: int
    positives: int
    users: int
    items: int
    dropped: int  # shown items the catalog no longer holds
    config: Path


def export_dataset(
    store: StateStore,
    schema: FeatureSchema,
    ranker_features: Sequence[str],
    out: Path,
    since: float = 0.0,
) -> ExportSummary:
    """Write the data set of the impressions logged at or after ``since`` under ``out``."""
    items = _catalog(store, schema)
    positive = {(f.request_id, f.item_id) for f in store.feedback_since(since) if f.positive}
    context = [f.name for f in schema.on("context")]
    columns: dict[str, list[Any]] = {
        name: [] for name in (schema.user_key, schema.item_key, "ts", "label", *context)
    }
    for name in ("request_id", "position", "model_version", "variant"):
        columns[name] = []
    users: dict[str, dict[str, Any]] = {}
    impressions = dropped = 0
    for imp in store.impressions_since(since):
        impressions += 1
        users[imp.user_id] = imp.features
        for shown in imp.items:
            if shown.item_id not in items:
                dropped += 1
                continue
            row = {
                schema.user_key: imp.user_id,
                schema.item_key: shown.item_id,
                "ts": imp.ts,
                "label": int((imp.request_id, shown.item_id) in positive),
                "request_id": imp.request_id,
                "position": shown.position,
                "model_version": imp.model_version,
                "variant": imp.variant,
                **{name: imp.context.get(name) for name in context},
            }
            for name, values in columns.items():
                values.append(row[name])
    out.mkdir(parents=True, exist_ok=True)
    user_rows = [{**_user_side(schema, f), schema.user_key: u} for u, f in users.items()]
    _write(out / FILES[0], user_rows, [schema.user_key, *_user_features(schema)])
    _write(out / FILES[1], list(items.values()), [schema.item_key, *_names(schema, "item")])
    pq.write_table(pa.table(columns), out / FILES[2])
    config = out / f"{schema.name}.toml"
    config.write_text(dataset_toml(schema, ranker_features, out.resolve()))
    return ExportSummary(
        impressions=impressions,
        interactions=len(columns["label"]),
        positives=sum(columns["label"]),
        users=len(users),
        items=len(items),
        dropped=dropped,
        config=config,
    )


def _catalog(store: StateStore, schema: FeatureSchema) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    seq = 0
    while changes := store.changes_since(seq):
        for change in changes:
            if change.row is None:
                items.pop(change.item_id, None)
            else:
                items[change.item_id] = {**change.row, schema.item_key: change.item_id}
        seq = changes[-1].seq
    return items


def _names(schema: FeatureSchema, side: str) -> list[str]:
    return [f.name for f in schema.on(side) if f.kind != "cross"]


def _user_features(schema: FeatureSchema) -> list[str]:
    """User-side features a profile holds (the history comes from the interactions)."""
    return [
        f.name
        for f in schema.on("user")
        if f.name != schema.user_key and f.kind != "cross" and not getattr(f, "from_events", False)
    ]


def _user_side(schema: FeatureSchema, features: dict[str, Any]) -> dict[str, Any]:
    return {name: features.get(name) for name in _user_features(schema)}


def _write(path: Path, rows: list[dict[str, Any]], names: list[str]) -> None:
    pq.write_table(pa.table({n: [r.get(n) for r in rows] for n in names}), path)


def dataset_toml(schema: FeatureSchema, ranker_features: Sequence[str], data_dir: Path) -> str:
    """The data set's config file (the shape of ``training/configs/*.toml``)."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        f"# Exported by `recsys data export` at {stamp}: served impressions joined with the",
        "# events attributed to them (label = attributed positive).",
        "[data]",
        *_pairs({"loader": LOADER, "default_dir": str(data_dir)}),
        "",
        "[split]",
        *_pairs(SPLIT),
        "",
        "[ranking]",
        *_pairs({"features": list(ranker_features)}),
        "",
        "[schema]",
        *_pairs({"name": schema.name, "user_key": schema.user_key, "item_key": schema.item_key}),
    ]
    for feature in schema.to_dict()["features"]:
        lines += ["", "[[schema.features]]", *_pairs(feature)]
    return "\n".join(lines) + "\n"


def _pairs(values: dict[str, Any]) -> Iterable[str]:
    """TOML ``key = value`` lines (strings, numbers, booleans, lists of them; None left out)."""
    for key, value in values.items():
        if value is not None:
            yield f"{key} = {_value(value)}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string
