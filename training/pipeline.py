"""``recsys train``: data -> encoder -> ranker + baselines -> two towers -> evaluation ->
ONNX export with parity -> bundle."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import keras
import numpy as np

from service.bundle.manifest import (
    ENCODER_FILE,
    ITEM_TOWER,
    METRICS_FILE,
    PARITY_FILE,
    POPULAR_FILE,
    RANKER,
    USER_TOWER,
    Manifest,
    ModelEntry,
)
from service.features import FeatureEncoder
from service.features.encoder import Arrays
from training.bundle_writer import BundleWriter
from training.config import TrainConfig
from training.datasets import SPLITS, load_dataset
from training.evaluate import auc, logloss, popularity_metrics, retrieval_metrics
from training.examples import HistoryIndex, feature_columns
from training.export import export_checked
from training.fit import fit_ranker, fit_towers, predict, take
from training.models.dssm import build_towers, item_features, user_features
from training.models.rankers import build_ranker, input_features, ranker_features
from training.retrieval_data import EvalUsers, build_retrieval_data

Report = Callable[[str], None]
POPULAR_ITEMS = 1000


def _rows(arrays: Arrays, n: int) -> Arrays:
    """The first ``n`` rows, repeated from the start when there are fewer (parity needs n)."""
    size = len(next(iter(arrays.values())))
    return take(arrays, np.arange(n) % size)


def _retrieval_scores(user_tower, item_tower, items: Arrays, users: EvalUsers, ks) -> dict:
    return retrieval_metrics(
        predict(user_tower, users.arrays),
        predict(item_tower, items),
        users.seen,
        users.positives,
        ks,
    )


def train_bundle(
    dataset_name: str,
    data_dir: Path | None,
    out_dir: Path,
    cfg: TrainConfig,
    report: Report = print,
) -> Path:
    """Train, evaluate and export one bundle; returns its folder. Fails loudly on a parity miss."""
    started = time.perf_counter()

    def step(message: str) -> None:
        report(f"[{time.perf_counter() - started:6.1f}s] {message}")

    keras.utils.set_random_seed(cfg.seed)
    dataset = load_dataset(dataset_name, data_dir, seed=cfg.seed)
    schema = dataset.schema
    step(f"loaded {dataset_name}: {dataset.summary()}")

    history = HistoryIndex(dataset)
    columns = {s: feature_columns(dataset, dataset.part(s), history) for s in SPLITS}
    labels = {s: dataset.part(s)["label"].to_numpy() for s in SPLITS}
    encoder = FeatureEncoder.fit(schema, columns["train"])
    arrays = {s: encoder.encode(columns[s], schema.features, len(labels[s])) for s in SPLITS}
    step(
        "fitted the encoder on the training split: "
        + ", ".join(f"{t}={encoder.vocab_size(t)}" for t in encoder.vocabs)
    )

    ranker_metrics: dict[str, dict[str, Any]] = {}
    rankers = {}
    for name in dict.fromkeys((cfg.ranker.name, *cfg.baselines)):
        rcfg = cfg.ranker_for(name)
        keras.utils.set_random_seed(cfg.seed)
        model = build_ranker(encoder, dataset.ranker_features(), rcfg)
        t0 = time.perf_counter()
        fitted = fit_ranker(
            model, (arrays["train"], labels["train"]), (arrays["val"], labels["val"]), rcfg
        )
        seconds = time.perf_counter() - t0
        probs = predict(model, arrays["test"]).reshape(-1)
        ranker_metrics[name] = {
            "auc": round(auc(labels["test"], probs), 5),
            "logloss": round(logloss(labels["test"], probs), 5),
            "train_seconds": round(seconds, 1),
            **fitted,
        }
        rankers[name] = model
        step(f"ranker {name}: {ranker_metrics[name]}")

    data = build_retrieval_data(dataset, history, encoder)
    keras.utils.set_random_seed(cfg.seed)
    user_tower, item_tower = build_towers(encoder, cfg.dssm)
    k = cfg.validation_k
    t0 = time.perf_counter()
    fitted = fit_towers(
        user_tower,
        item_tower,
        data.pairs,
        data.items,
        data.pair_items,
        data.log_q,
        lambda: _retrieval_scores(user_tower, item_tower, data.items, data.val, (k,))[
            f"recall@{k}"
        ],
        cfg.dssm,
        cfg.seed,
        user_key=schema.user_key,
    )
    dssm_seconds = time.perf_counter() - t0
    dssm = _retrieval_scores(user_tower, item_tower, data.items, data.test, cfg.eval_ks)
    popular = popularity_metrics(data.popularity, data.test.seen, data.test.positives, cfg.eval_ks)
    step(f"dssm ({dssm_seconds:.1f}s, {fitted}): {dssm}")
    step(f"popularity: {popular}")

    metrics = {
        "dataset": {"name": dataset_name, **dataset.summary()},
        "ranker": {"name": cfg.ranker.name, **ranker_metrics[cfg.ranker.name]},
        "ranker_baselines": {n: m for n, m in ranker_metrics.items() if n != cfg.ranker.name},
        "retrieval": {
            "protocol": "full ranking over all items; each user's training (and, for test, "
            "validation) positives excluded; users with held-out positives",
            "dssm": {**dssm, "train_seconds": round(dssm_seconds, 1), **fitted},
            "popularity": popular,
        },
    }

    writer = BundleWriter(out_dir)
    try:
        ufeats, ifeats = user_features(schema), item_features(schema)
        held_out = _rows(arrays["test"], cfg.parity_rows)
        rfeats = input_features(ranker_features(cfg.ranker.name, dataset.ranker_features()))
        exports = {
            USER_TOWER: (user_tower, ufeats, held_out),
            ITEM_TOWER: (item_tower, ifeats, _rows(data.items, cfg.parity_rows)),
            RANKER: (rankers[cfg.ranker.name], rfeats, held_out),
        }
        parity, entries = {}, {}
        for role, (model, feats, rows) in exports.items():
            specs = encoder.input_specs(feats)
            rows = {s.name: rows[s.name] for s in specs}
            parity[role] = export_checked(
                model, specs, writer.path(f"{role}.onnx"), rows, cfg.parity_tolerance, cfg.opset
            )
            entries[role] = ModelEntry(
                f"{role}.onnx", [f.name for f in feats], int(model.outputs[0].shape[-1])
            )
        diffs = {role: p["max_abs_diff"] for role, p in parity.items()}
        step(f"exported ONNX, parity max abs diff: {diffs}")

        top = np.argsort(-data.popularity, kind="stable")[:POPULAR_ITEMS]
        writer.write_json(ENCODER_FILE, encoder.to_dict())
        writer.write_json(METRICS_FILE, metrics)
        writer.write_json(PARITY_FILE, parity)
        writer.write_json(
            POPULAR_FILE, [str(data.item_ids[i]) for i in top if data.popularity[i] > 0]
        )
        manifest = Manifest(
            version="",
            created_at="",
            dataset=dataset_name,
            schema_fingerprint=schema.fingerprint(),
            embedding_dim=cfg.dssm.output_dim,
            opset=cfg.opset,
            ranker=cfg.ranker.name,
            models=entries,
            files={},
            metrics=metrics,
            libraries={
                p: pkg_version(p)
                for p in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")
            },
            training_config=cfg.to_dict(),
        )
        path = writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    step(f"bundle written: {path}")
    return path
