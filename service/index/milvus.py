"""`MilvusIndex`: the vector index on Milvus, through any pymilvus URI.

- `./data/milvus.db`: Milvus Lite embedded in this process (the file is locked by one process;
  other processes go through `lite_server.serve`, or a Milvus server).
- `http://127.0.0.1:19530`: Milvus Lite's own gRPC server, or a Milvus standalone/cluster.

Index: `auto` is FLAT (exact) on Milvus Lite, which has no HNSW and whose interim index gave
data-dependent recall here, and HNSW (M 16, efConstruction 200, search ef = max(limit, 64))
on a Milvus server. A server is taken for Lite when its Connect reply carries no version
(Lite 2.5.1 leaves every build field empty; Milvus 2.3+ fills them, even the embedded
`milvus` 2.3.5 package, which calls itself "v2.3.5-lite" but is a full standalone server).
Measured on Milvus 2.3.5: HNSW recall falls when a filter passes few items (about 0.9 at 3%,
0.5 at 1% of 20k items) and a larger ef does not help; check recall with real filters.

Consistency: searches run at Session level, counts at Strong. Session waits only for this
process's own writes (pymilvus keeps the last write timestamp per collection), so an item the
API's worker just upserted is searchable by the next request of the same process, while a
search never waits for the timestamps of other writers as Strong would: writes of the batch
indexing job show up once the query nodes have consumed them (eventual), which is fine for a
catalog refresh. `count` is Strong because it gates readiness and tests. Milvus Lite ignores
consistency levels (it records every collection as Strong and reads its own writes).

Every pymilvus call carries `timeout=`; without it pymilvus retries for minutes when the
server is away. Backend errors become `IndexUnavailable` (naming URI and timeout),
`CollectionNotFound` or `VectorIndexError`. Nothing connects before the first call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from pymilvus import MilvusClient

from service.index import checks, milvus_expr, milvus_keys, milvus_search
from service.index.milvus_conn import MilvusConnection
from service.index.milvus_schema import (
    ID_FIELD,
    VECTOR_FIELD,
    StoredCollection,
    build_schema,
    read_collection,
)
from service.index.port import (
    COLLECTION_PREFIX,
    VERSION_PATTERN,
    CollectionMismatch,
    CollectionNotFound,
    FilterValue,
    HitColumns,
    IndexConfigError,
    ScalarField,
    SearchHit,
    VectorIndexError,
    collection_name,
)

IndexChoice = Literal["auto", "flat", "hnsw", "ivf_flat"]

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_ADMIN_TIMEOUT_S = 60.0
METRIC = "IP"
HNSW_BUILD = {"M": 16, "efConstruction": 200}
HNSW_MIN_EF = 64
IVF_NLIST = 1024
IVF_NPROBE = 32
LITE_INDEX_TYPES = frozenset({"FLAT", "IVF_FLAT", "AUTOINDEX"})
EXACT_INDEX_TYPES = frozenset({"FLAT"})
SEARCH_CONSISTENCY = "Session"
COUNT_CONSISTENCY = "Strong"
UPSERT_BATCH_ROWS = 2_000
DELETE_BATCH_IDS = 1_000

T = TypeVar("T")


class MilvusIndex:
    """`VectorIndex` over a pymilvus `MilvusClient`; thread-safe, connects lazily."""

    def __init__(
        self,
        uri: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        token: str = "",
        index: IndexChoice = "auto",
        db_name: str = "",
        admin_timeout_s: float = DEFAULT_ADMIN_TIMEOUT_S,
    ) -> None:
        if index not in ("auto", "flat", "hnsw", "ivf_flat"):
            raise IndexConfigError(f"index must be auto, flat, hnsw or ivf_flat, got {index!r}")
        self._conn = MilvusConnection(uri, timeout_s, admin_timeout_s, token, db_name)
        if self._conn.lite_file and index == "hnsw":
            raise IndexConfigError(_lite_index_message("HNSW"))
        self.uri, self.timeout_s = uri, self._conn.timeout_s
        self.admin_timeout_s = self._conn.admin_timeout_s
        self._index = index
        self._collections: dict[str, StoredCollection] = {}
        self._index_types: dict[str, str] = {}

    @property
    def exact(self) -> bool:
        """True when collections this adapter creates are searched exactly (FLAT); may connect."""
        return self._default_index_type() in EXACT_INDEX_TYPES

    def ensure_collection(self, version: str, dim: int, fields: Sequence[ScalarField]) -> str:
        name = collection_name(version)
        dim, fields = checks.check_dim(dim), checks.check_fields(fields)
        if not self._exists(name):
            self._create(name, version, dim, fields)
        stored = self._stored(name, refresh=True)
        if stored.version != version:
            raise CollectionMismatch(
                f"collection {name} holds bundle version {stored.version!r}, not {version!r}"
            )
        if stored.dim != dim:
            raise CollectionMismatch(f"collection {name} has dim {stored.dim}, not {dim}")
        if mismatch := checks.fields_mismatch(stored.fields, fields):
            raise CollectionMismatch(f"collection {name}: {mismatch}")
        if self._index_type(name, refresh=True) is None:
            self._create_index(name)
        self._rpc("load_collection", name, lambda c: c.load_collection(name, timeout=self._ta))
        return name

    def upsert(
        self,
        version: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        attributes: Mapping[str, Sequence[Any]],
    ) -> None:
        stored = self._stored(collection_name(version))
        ids = checks.check_ids(ids, unique=True)
        unit = checks.normalized_rows(vectors, len(ids), stored.dim)
        columns = checks.check_attributes(stored.fields, attributes, len(ids))
        keys = milvus_keys.keys(ids)
        for start in range(0, len(ids), UPSERT_BATCH_ROWS):
            stop = min(start + UPSERT_BATCH_ROWS, len(ids))
            rows = [
                {ID_FIELD: keys[k], VECTOR_FIELD: unit[k]}
                | {name: column[k] for name, column in columns.items()}
                for k in range(start, stop)
            ]
            self._rpc(
                "upsert",
                stored.name,
                lambda c, rows=rows: c.upsert(stored.name, rows, timeout=self._t),
            )

    def delete(self, version: str, ids: Sequence[str]) -> None:
        name = self._stored(collection_name(version)).name
        ids = milvus_keys.keys(sorted(set(checks.check_ids(ids))))
        for start in range(0, len(ids), DELETE_BATCH_IDS):
            expr = milvus_expr.ids_expression(ids[start : start + DELETE_BATCH_IDS])
            self._rpc("delete", name, lambda c, e=expr: c.delete(name, filter=e, timeout=self._t))

    def search(
        self,
        version: str,
        vector: np.ndarray,
        limit: int,
        filter: Mapping[str, Sequence[FilterValue]] | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[SearchHit]:
        stored = self._stored(collection_name(version))
        query = checks.normalized_query(vector, stored.dim)
        hits = self._search(stored, query[None, :], limit, filter, exclude_ids)[0]
        return [SearchHit(i, float(d)) for i, d in zip(hits.ids, hits.scores, strict=True)]

    def search_many(
        self,
        version: str,
        vectors: np.ndarray,
        limit: int,
        filter: Mapping[str, Sequence[FilterValue]] | None = None,
    ) -> list[HitColumns]:
        stored = self._stored(collection_name(version))
        queries = np.stack([checks.normalized_query(v, stored.dim) for v in vectors])
        return self._search(stored, queries, limit, filter, ())

    def _search(
        self,
        stored: StoredCollection,
        queries: np.ndarray,
        limit: int,
        filter: Mapping[str, Sequence[FilterValue]] | None,
        exclude_ids: Sequence[str],
    ) -> list[HitColumns]:
        limit = checks.check_limit(limit)
        excluded = checks.check_exclusions(exclude_ids)
        conditions = checks.check_filter(stored.fields, filter)
        if any(not values for _, values in conditions):
            return [HitColumns([], []) for _ in queries]
        expr = milvus_expr.search_expression(conditions, milvus_keys.keys(excluded))
        params = self._search_params(stored.name, limit)
        result = self._rpc(
            "search",
            stored.name,
            lambda c: c.search(
                stored.name,
                data=queries.tolist(),
                filter=expr,
                limit=limit,
                search_params=params,
                timeout=self._t,
                consistency_level=SEARCH_CONSISTENCY,
            ),
        )
        return [milvus_search.columns(hits) for hits in result]

    def vectors(self, version: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        name = self._stored(collection_name(version)).name
        keys = milvus_keys.keys(sorted(set(checks.check_ids(ids))))
        if not keys:
            return {}
        rows = self._rpc(
            "get",
            name,
            lambda c: c.get(
                name,
                ids=keys,
                output_fields=[VECTOR_FIELD],
                timeout=self._t,
                consistency_level=SEARCH_CONSISTENCY,
            ),
        )
        found = milvus_keys.item_ids([r[ID_FIELD] for r in rows])
        return {
            i: np.asarray(r[VECTOR_FIELD], np.float32) for i, r in zip(found, rows, strict=True)
        }

    def count(self, version: str) -> int:
        name = self._stored(collection_name(version)).name
        rows = self._rpc(
            "count",
            name,
            lambda c: c.query(
                name,
                filter="",
                output_fields=["count(*)"],
                timeout=self._t,
                consistency_level=COUNT_CONSISTENCY,
            ),
        )
        return int(rows[0]["count(*)"])

    def flush(self, version: str) -> None:
        name = self._stored(collection_name(version)).name
        self._rpc("flush", name, lambda c: c.flush(name, timeout=self._ta))

    def drop(self, version: str) -> None:
        name = collection_name(version)
        if self._exists(name):
            self._rpc("drop_collection", name, lambda c: c.drop_collection(name, timeout=self._ta))
        self._collections.pop(name, None)
        self._index_types.pop(name, None)

    def list_versions(self) -> list[str]:
        names = self._rpc("list_collections", "", lambda c: c.list_collections(timeout=self._t))
        versions = (
            n.removeprefix(COLLECTION_PREFIX) for n in names if n.startswith(COLLECTION_PREFIX)
        )
        return sorted(v for v in versions if VERSION_PATTERN.fullmatch(v))

    def describe(self, version: str) -> dict[str, Any]:
        stored = self._stored(collection_name(version), refresh=True)
        info = self._index_info(stored.name) or {}
        index_type = info.get("index_type")
        return {
            "collection": stored.name,
            "version": stored.version,
            "dim": stored.dim,
            "count": self.count(version),
            "index_type": index_type,
            "index_params": {
                k: v for k, v in info.items() if k in ("M", "efConstruction", "nlist")
            },
            "indexed_rows": info.get("indexed_rows"),
            "metric": info.get("metric_type", METRIC),
            "exact": index_type in EXACT_INDEX_TYPES,
            "fields": list(stored.fields),
            "backend": "milvus-lite" if self._conn.is_lite() else "milvus",
            "uri": self.uri,
        }

    def close(self) -> None:
        self._conn.close()

    @property
    def _t(self) -> float:
        return self.timeout_s

    @property
    def _ta(self) -> float:
        return self.admin_timeout_s

    def _create(self, name: str, version: str, dim: int, fields: Sequence[ScalarField]) -> None:
        index_type = self._default_index_type()
        schema = build_schema(version, dim, fields)
        try:
            self._rpc(
                "create_collection",
                name,
                lambda c: c.create_collection(
                    name, schema=schema, timeout=self._ta, consistency_level=SEARCH_CONSISTENCY
                ),
            )
        except VectorIndexError:
            if self._exists(name):
                return
            raise
        try:
            self._create_index(name, index_type)
        except VectorIndexError:
            self._rpc("drop_collection", name, lambda c: c.drop_collection(name, timeout=self._ta))
            raise

    def _create_index(self, name: str, index_type: str | None = None) -> None:
        """Declare the vector index; not waiting (pymilvus sleeps 0.5 s first), the server builds
        it per segment and `load_collection` waits for what searches need."""
        index_type = index_type or self._default_index_type()
        params = {"HNSW": HNSW_BUILD, "IVF_FLAT": {"nlist": IVF_NLIST}}.get(index_type, {})
        index_params = MilvusClient.prepare_index_params()
        index_params.add_index(
            VECTOR_FIELD, index_type=index_type, metric_type=METRIC, params=params
        )
        self._rpc(
            "create_index",
            name,
            lambda c: c.create_index(name, index_params, timeout=self._ta, sync=False),
        )
        self._index_types[name] = index_type

    def _exists(self, name: str) -> bool:
        return self._rpc("has_collection", name, lambda c: c.has_collection(name, timeout=self._t))

    def _stored(self, name: str, refresh: bool = False) -> StoredCollection:
        if refresh or name not in self._collections:
            if not self._exists(name):
                self._collections.pop(name, None)
                raise CollectionNotFound(f"no collection {name} at {self.uri}")
            raw = self._rpc(
                "describe_collection", name, lambda c: c.describe_collection(name, timeout=self._t)
            )
            self._collections[name] = read_collection(raw)
        return self._collections[name]

    def _index_type(self, name: str, refresh: bool = False) -> str | None:
        if refresh or name not in self._index_types:
            info = self._index_info(name)
            if info is None:
                self._index_types.pop(name, None)
                return None
            self._index_types[name] = info["index_type"]
        return self._index_types[name]

    def _index_info(self, name: str) -> dict[str, Any] | None:
        """`describe_index` of the vector field's index (type upper-cased), None if absent."""
        indexes = self._rpc(
            "list_indexes",
            name,
            lambda c: c.list_indexes(name, field_name=VECTOR_FIELD, timeout=self._t),
        )
        if not indexes:
            return None
        info = self._rpc(
            "describe_index",
            name,
            lambda c: c.describe_index(name, indexes[0], timeout=self._t),
        )
        return info | {"index_type": str(info["index_type"]).upper()}

    def _search_params(self, name: str, limit: int) -> dict[str, Any]:
        index_type = self._index_type(name)
        if index_type == "HNSW":
            return {"metric_type": METRIC, "params": {"ef": max(limit, HNSW_MIN_EF)}}
        if index_type == "IVF_FLAT":
            return {"metric_type": METRIC, "params": {"nprobe": IVF_NPROBE}}
        return {"metric_type": METRIC, "params": {}}

    def _default_index_type(self) -> str:
        if self._index == "auto":
            return "FLAT" if self._conn.is_lite() else "HNSW"
        index_type = self._index.upper()
        if self._conn.is_lite() and index_type not in LITE_INDEX_TYPES:
            raise IndexConfigError(_lite_index_message(index_type))
        return index_type

    def _rpc(self, action: str, collection: str, call: Callable[[MilvusClient], T]) -> T:
        try:
            return self._conn.call(action, collection, call)
        except CollectionNotFound:
            self._collections.pop(collection, None)
            self._index_types.pop(collection, None)
            raise


def _lite_index_message(index_type: str) -> str:
    return (
        f"Milvus Lite supports {', '.join(sorted(LITE_INDEX_TYPES))} only, not {index_type}; "
        "use index='flat' (exact) or a Milvus server URI for HNSW"
    )
