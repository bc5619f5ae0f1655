"""Milvus collection schema for item vectors, and the metadata that ties it to a bundle.

Schema: `item_id` VARCHAR primary key (the escaped external id, `milvus_keys`), `vector`
FLOAT_VECTOR(dim), then one column per `ScalarField` (VARCHAR, INT64, BOOL, ARRAY of VARCHAR).
The bundle version and dim are written as JSON into the collection description: Milvus Lite
2.5.1 drops collection properties silently, the description survives on every backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymilvus import CollectionSchema, DataType, MilvusClient

from service.index.milvus_keys import MAX_KEY_LENGTH
from service.index.port import CollectionMismatch, ScalarField

ID_FIELD = "item_id"
VECTOR_FIELD = "vector"
METADATA_TAG = "recsys.vector_index"
METADATA_FORMAT = 1

_SCALAR_TYPES = {"string": DataType.VARCHAR, "int": DataType.INT64, "bool": DataType.BOOL}


@dataclass(frozen=True)
class StoredCollection:
    """What a collection says about itself: enough to verify it and to search it."""

    name: str
    version: str
    dim: int
    fields: tuple[ScalarField, ...]


def build_schema(version: str, dim: int, fields: Sequence[ScalarField]) -> CollectionSchema:
    description = json.dumps({METADATA_TAG: METADATA_FORMAT, "version": version, "dim": dim})
    schema = MilvusClient.create_schema(
        auto_id=False, enable_dynamic_field=False, description=description
    )
    schema.add_field(ID_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_KEY_LENGTH)
    schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
    for f in fields:
        if f.kind == "string_array":
            schema.add_field(
                f.name,
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                max_capacity=f.max_capacity,
                max_length=f.max_length,
            )
        elif f.kind == "string":
            schema.add_field(f.name, DataType.VARCHAR, max_length=f.max_length)
        else:
            schema.add_field(f.name, _SCALAR_TYPES[f.kind])
    return schema


def read_collection(description: dict[str, Any]) -> StoredCollection:
    """Parse `MilvusClient.describe_collection` output; raises `CollectionMismatch` if foreign."""
    name = description["collection_name"]
    try:
        meta = json.loads(description.get("description") or "")
        if meta.get(METADATA_TAG) != METADATA_FORMAT:
            raise ValueError("no recsys tag")
        version, dim = str(meta["version"]), int(meta["dim"])
    except (ValueError, TypeError, KeyError, AttributeError):
        raise CollectionMismatch(
            f"collection {name} was not created by this service (description "
            f"{description.get('description')!r}); drop it or pick another bundle version"
        ) from None
    fields = []
    for raw in description["fields"]:
        if raw["name"] in (ID_FIELD, VECTOR_FIELD):
            if raw["name"] == VECTOR_FIELD and int(raw["params"]["dim"]) != dim:
                raise CollectionMismatch(
                    f"collection {name}: vector dim {raw['params']['dim']} != stored dim {dim}"
                )
            continue
        fields.append(_scalar_field(name, raw))
    return StoredCollection(name, version, dim, tuple(fields))


def _scalar_field(collection: str, raw: dict[str, Any]) -> ScalarField:
    params, dtype = raw.get("params", {}), raw["type"]
    if dtype == DataType.ARRAY and raw.get("element_type") == DataType.VARCHAR:
        return ScalarField(
            raw["name"],
            "string_array",
            max_length=int(params["max_length"]),
            max_capacity=int(params["max_capacity"]),
        )
    if dtype == DataType.VARCHAR:
        return ScalarField(raw["name"], "string", max_length=int(params["max_length"]))
    for kind, known in _SCALAR_TYPES.items():
        if dtype == known:
            return ScalarField(raw["name"], kind)  # type: ignore[arg-type]
    raise CollectionMismatch(f"collection {collection}: field {raw['name']!r} has type {dtype!r}")
