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
from service.features import Feature
from service.features.encoder import Arrays
from training.bundle_writer import BundleWriter
from training.config import TrainConfig
from training.datasets import Dataset, load_dataset
from training.evaluate import popularity_metrics
from training.export import export_checked
from training.fit import take
from training.gate import RECALL, baseline_figures, gate_section
from training.models.dssm import item_features, user_features
from training.retrieval_data import RetrievalData, build_retrieval_data
from training.runs import (
    LabelledSplits,
    RankerRun,
    TowerRun,
    encode_splits,
    train_ranker,
    train_towers,
)

Report = Callable[[str], None]
POPULAR_ITEMS = 1000
LIBRARIES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")
RETRIEVAL_PROTOCOL = (
    "full ranking over all items; each user's training (and, for test, validation) positives "
    "excluded; users with held-out positives"
)


def train_bundle(
    dataset_name: str,
    data_dir: Path | None,
    out_dir: Path,
    cfg: TrainConfig,
    report: Report = print,
    baseline: Path | None = None,
    split: str | None = None,
) -> Path:
    """Train, evaluate and export one bundle; returns its folder. Fails loudly on a parity miss.
    With ``baseline`` (the bundle this one would replace), both are scored on this bundle's
    test split for the rollout gate (`training/gate.py`); ``split`` overrides the data set
    config's split method (the bundle's metrics record the one used)."""
    started = time.perf_counter()

    def step(message: str) -> None:
        report(f"[{time.perf_counter() - started:6.1f}s] {message}")

    keras.utils.set_random_seed(cfg.seed)
    dataset = load_dataset(dataset_name, data_dir, seed=cfg.seed, split=split)
    step(f"loaded {dataset_name}: {dataset.summary()}")
    splits = encode_splits(dataset)
    vocabs = ", ".join(f"{t}={splits.encoder.vocab_size(t)}" for t in splits.encoder.vocabs)
    step(f"fitted the encoder on the training split: {vocabs}")

    rankers = {}
    for name in dict.fromkeys((cfg.ranker.name, *cfg.baselines)):
        run = rankers[name] = train_ranker(
            splits, dataset.ranker_features(), cfg.ranker_for(name), cfg.seed
        )
        step(f"ranker {name}: {_rounded(run.metrics)}")

    data = build_retrieval_data(dataset, splits.history, splits.encoder)
    towers = train_towers(data, splits.encoder, cfg, cfg.seed)
    popular = popularity_metrics(data.popularity, data.test.seen, data.test.positives, cfg.eval_ks)
    step(f"dssm: {_rounded(towers.metrics)}")
    step(f"popularity: {popular}")

    metrics = _metrics(dataset_name, dataset, cfg, rankers, towers, popular)
    served = rankers[cfg.ranker.name]
    if baseline is not None:
        figures = baseline_figures(baseline, splits, data)
        metrics["gate"] = gate_section(
            figures, metrics["ranker"]["auc"], towers.metrics[RECALL], data
        )
        step(f"gate figures: {metrics['gate']['candidate']} vs baseline {figures}")
    path, parity = _write_bundle(out_dir, cfg, splits, data, served, towers, metrics)
    step(
        f"exported ONNX, parity max abs diff: { {r: p['max_abs_diff'] for r, p in parity.items()} }"
    )
    step(f"bundle written: {path}")
    return path


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as the bundle records them: 5 decimals, seconds to 0.1."""
    return {
        k: round(v, 1 if k == "train_seconds" else 5) if isinstance(v, float) else v
        for k, v in metrics.items()
    }


def _metrics(
    dataset_name: str,
    dataset: Dataset,
    cfg: TrainConfig,
    rankers: dict[str, RankerRun],
    towers: TowerRun,
    popular: dict[str, float],
) -> dict[str, Any]:
    served = cfg.ranker.name
    return {
        "dataset": {"name": dataset_name, "split": dataset.split_method, **dataset.summary()},
        "ranker": {"name": served, **_rounded(rankers[served].metrics)},
        "ranker_baselines": {n: _rounded(r.metrics) for n, r in rankers.items() if n != served},
        "retrieval": {
            "protocol": RETRIEVAL_PROTOCOL,
            "dssm": _rounded(towers.metrics),
            "popularity": popular,
        },
    }


def _rows(arrays: Arrays, n: int) -> Arrays:
    """The first ``n`` rows, repeated from the start when there are fewer (parity needs n)."""
    size = len(next(iter(arrays.values())))
    return take(arrays, np.arange(n) % size)


def _write_bundle(
    out_dir: Path,
    cfg: TrainConfig,
    splits: LabelledSplits,
    data: RetrievalData,
    served: RankerRun,
    towers: TowerRun,
    metrics: dict[str, Any],
) -> tuple[Path, dict[str, dict[str, float]]]:
    """Export the three models through the parity gate, write every file, commit the bundle;
    returns its folder and the parity report."""
    writer = BundleWriter(out_dir)
    try:
        parity, entries = _export_models(writer, cfg, splits, data, served, towers)
        top = np.argsort(-data.popularity, kind="stable")[:POPULAR_ITEMS]
        popular = [str(data.item_ids[i]) for i in top if data.popularity[i] > 0]
        writer.write_json(ENCODER_FILE, splits.encoder.to_dict())
        writer.write_json(METRICS_FILE, metrics)
        writer.write_json(PARITY_FILE, parity)
        writer.write_json(POPULAR_FILE, popular)
        manifest = Manifest(
            version="",
            created_at="",
            dataset=metrics["dataset"]["name"],
            schema_fingerprint=splits.encoder.schema.fingerprint(),
            embedding_dim=cfg.dssm.output_dim,
            opset=cfg.opset,
            ranker=cfg.ranker.name,
            models=entries,
            files={},
            metrics=metrics,
            libraries={p: pkg_version(p) for p in LIBRARIES},
            training_config=cfg.to_dict(),
        )
        return writer.commit(manifest), parity
    except BaseException:
        writer.abort()
        raise


def _export_models(
    writer: BundleWriter,
    cfg: TrainConfig,
    splits: LabelledSplits,
    data: RetrievalData,
    served: RankerRun,
    towers: TowerRun,
) -> tuple[dict[str, dict[str, float]], dict[str, ModelEntry]]:
    schema = splits.encoder.schema
    held_out = _rows(splits.arrays["test"], cfg.parity_rows)
    exports: dict[str, tuple[keras.Model, list[Feature], Arrays]] = {
        USER_TOWER: (towers.user_tower, user_features(schema), held_out),
        ITEM_TOWER: (towers.item_tower, item_features(schema), _rows(data.items, cfg.parity_rows)),
        RANKER: (served.model, served.inputs, held_out),
    }
    parity, entries = {}, {}
    for role, (model, features, rows) in exports.items():
        specs = splits.encoder.input_specs(features)
        parity[role] = export_checked(
            model,
            specs,
            writer.path(f"{role}.onnx"),
            {s.name: rows[s.name] for s in specs},
            cfg.parity_tolerance,
            cfg.opset,
        )
        entries[role] = ModelEntry(
            f"{role}.onnx", [f.name for f in features], int(model.outputs[0].shape[-1])
        )
    return parity, entries
