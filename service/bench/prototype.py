"""The bare path `recsys bench` compares the service with: FastAPI + onnxruntime (user tower and
ranker) + a Milvus ids-only search + item features from memory. No stores, auth, metrics,
deadlines or fallbacks: what a first prototype of the same recommender would be.

    python -m service.bench.prototype --bundle B --milvus-uri M --catalog DIR --port P
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from pymilvus import MilvusClient

from service.bench.catalog import ITEMS_FILE, USERS_FILE
from service.bundle import load_bundle
from service.bundle.manifest import RANKER, USER_TOWER
from service.index.port import collection_name


class Query(BaseModel):
    user_id: str
    k: int = 20
    candidates: int = 200


def build_app(bundle_path: Path, milvus_uri: str, catalog: Path) -> FastAPI:
    """``catalog``: the folder `build_catalog` wrote (items.parquet, users.json)."""
    bundle = load_bundle(bundle_path)
    encoder, schema = bundle.encoder, bundle.encoder.schema
    users: dict[str, dict[str, Any]] = json.loads((catalog / USERS_FILE).read_text())
    client = MilvusClient(milvus_uri)
    collection = collection_name(bundle.version)
    client.load_collection(collection)
    user_side = {f.name: f for f in [*bundle.features(USER_TOWER), *bundle.features(RANKER)]}
    user_features = [f for f in user_side.values() if f.side != "item"]
    item_features = [f for f in bundle.features(RANKER) if f.side == "item"]
    ranker_user_inputs = [s.name for s in encoder.input_specs(user_features)]
    item_rows = pq.read_table(catalog / ITEMS_FILE).to_pylist()
    item_ids = [r[schema.item_key] for r in item_rows]
    item_arrays = encoder.encode_rows(item_rows, item_features)
    row_of = {item_id: n for n, item_id in enumerate(item_ids)}
    user_tower, ranker = bundle.models[USER_TOWER], bundle.models[RANKER]

    app = FastAPI()

    @app.post("/v1/recommendations")
    def recommend(query: Query) -> dict[str, Any]:
        row = {**users.get(query.user_id, {}), schema.user_key: query.user_id}
        user = encoder.encode_rows([row], user_features)
        vector = user_tower.run(user)[0]
        hits = client.search(collection, [vector.tolist()], limit=query.candidates)[0]
        ids = list(hits.ids)
        rows = np.array([row_of[i] for i in ids])
        batch = {name: values[rows] for name, values in item_arrays.items()}
        batch.update({n: np.repeat(user[n], len(ids), axis=0) for n in ranker_user_inputs})
        scores = ranker.run(batch).reshape(-1)
        best = np.argsort(-scores)[: query.k]
        return {"items": [{"item_id": ids[i], "score": float(scores[i])} for i in best]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--milvus-uri", required=True)
    parser.add_argument("--catalog", type=Path, required=True, help="folder of build_catalog")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_app(args.bundle, args.milvus_uri, args.catalog)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
