"""``recsys compare``: every ranker, and DSSM against its baselines, on one protocol and
several seeds; the report goes to Markdown + JSON + PNG (``training/report.py``).

Ranking: the data set config's split (for MovieLens a random 80/10/10 of interactions,
RecBole's context-aware protocol), the features of its ``[ranking]`` section; every ranker
gets the same seed, split, epoch cap and early stopping on validation AUC, then is
exported to ONNX through the parity gate and timed in onnxruntime on a batch of
candidates. Retrieval: positives only, each user's positives split 80/10/10 at random
(RecBole's full-ranking protocol), DSSM vs BPR vs popularity. A seed fixes both the split
and the initialization, so the spread over seeds covers both.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from service.bundle.onnx_model import OnnxModel
from service.features import CrossFeat, FeatureEncoder
from training.bpr import fit_bpr
from training.config import TrainConfig
from training.datasets import Dataset, DatasetConfig, load_dataset
from training.evaluate import popularity_metrics, retrieval_metrics
from training.examples import HistoryIndex, feature_columns
from training.export import export_checked
from training.fit import take
from training.models.rankers import RANKERS, input_features
from training.report import write_report
from training.retrieval_data import RetrievalData, build_retrieval_data
from training.runs import encode_splits, train_ranker, train_towers, validation_recall

Report = Callable[[str], None]


@dataclass(frozen=True)
class CompareSettings:
    seeds: tuple[int, ...] = (1, 2, 3)
    rankers: tuple[str, ...] = tuple(RANKERS)
    retrieval: bool = True
    latency_rows: int = 200  # one request's candidates
    latency_runs: int = 300


def with_epoch_cap(cfg: TrainConfig, epochs: int) -> TrainConfig:
    """The same settings with every model's epochs capped (a quick smoke run)."""
    return replace(
        cfg,
        ranker=replace(cfg.ranker, epochs=min(cfg.ranker.epochs, epochs)),
        ranker_overrides={
            name: {**o, "epochs": min(o.get("epochs", epochs), epochs)}
            for name, o in cfg.ranker_overrides.items()
        },
        dssm=replace(cfg.dssm, epochs=min(cfg.dssm.epochs, epochs)),
        bpr=replace(cfg.bpr, epochs=min(cfg.bpr.epochs, epochs)),
    )


def latency_ms(path: Path, rows: dict[str, np.ndarray], runs: int) -> dict[str, float]:
    """onnxruntime as the service runs it (1 intra-op thread), one batch per call."""
    model = OnnxModel(path, intra_op_threads=1)
    for _ in range(20):
        model.run(rows)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.run(rows)
        times.append((time.perf_counter() - start) * 1e3)
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90))}


def ranking_runs(
    dataset: Dataset,
    cfg: TrainConfig,
    settings: CompareSettings,
    seed: int,
    workdir: Path,
    report: Report,
) -> list[dict[str, Any]]:
    """Train, test, export and time each ranker on one split."""
    splits = encode_splits(dataset)
    test = splits.arrays["test"]
    n_test = len(splits.labels["test"])
    parity_rows = take(test, np.arange(cfg.parity_rows) % n_test)
    latency_rows = take(test, np.arange(settings.latency_rows) % n_test)
    runs = []
    for name in settings.rankers:
        run = train_ranker(splits, dataset.ranker_features(), cfg.ranker_for(name), seed)
        specs = splits.encoder.input_specs(run.inputs)
        path = workdir / f"{name}_{seed}.onnx"
        parity = export_checked(
            run.model,
            specs,
            path,
            {s.name: parity_rows[s.name] for s in specs},
            cfg.parity_tolerance,
            cfg.opset,
        )
        m = run.metrics
        runs.append(
            {
                "model": name,
                "seed": seed,
                **m,
                "parameters": int(run.model.count_params()),
                "parity_max_abs_diff": parity["max_abs_diff"],
                "onnx_ms": latency_ms(path, latency_rows, settings.latency_runs),
            }
        )
        report(
            f"seed {seed} {name}: AUC {m['auc']:.4f}, LogLoss {m['logloss']:.4f}, "
            f"{m['train_seconds']:.0f}s, best epoch {m['best_epoch']}/{m['epochs']}, "
            f"ONNX p50 {runs[-1]['onnx_ms']['p50']:.2f} ms"
        )
    return runs


def retrieval_runs(
    dataset: Dataset,
    ratios: tuple[float, float, float],
    cfg: TrainConfig,
    seed: int,
    report: Report,
) -> list[dict[str, Any]]:
    """DSSM, BPR and popularity on one per-user split of the positives."""
    split = dataset.positives_split_per_user(ratios, seed)
    history = HistoryIndex(split)
    encoder = FeatureEncoder.fit(split.schema, feature_columns(split, split.part("train"), history))
    data = build_retrieval_data(split, history, encoder)
    towers = train_towers(data, encoder, cfg, seed)
    runs = [{"model": "dssm", "seed": seed, **towers.metrics}]
    runs.append({"model": "bpr", "seed": seed, **_bpr_metrics(split, data, cfg, seed)})
    metrics = popularity_metrics(data.popularity, data.test.seen, data.test.positives, cfg.eval_ks)
    runs.append({"model": "popularity", "seed": seed, **metrics, "train_seconds": 0.0})
    for run in runs:
        report(
            f"seed {seed} {run['model']}: Recall@10 {run['recall@10']:.4f}, "
            f"Recall@50 {run['recall@50']:.4f}, NDCG@10 {run['ndcg@10']:.4f}"
        )
    return runs


def _bpr_metrics(
    split: Dataset, data: RetrievalData, cfg: TrainConfig, seed: int
) -> dict[str, Any]:
    """BPR on the same positive pairs, early-stopped on the same validation Recall@K."""
    validate = validation_recall(data, cfg.validation_k)
    user_row = {u: i for i, u in enumerate(split.users[split.schema.user_key])}

    def rows(users: Sequence[str]) -> np.ndarray:
        return np.array([user_row[u] for u in users])

    val_rows, test_rows = rows(data.val.user_ids), rows(data.test.user_ids)
    started = time.perf_counter()
    user_vecs, item_vecs, fitted = fit_bpr(
        len(user_row),
        len(data.item_ids),
        rows(data.pair_users),
        data.pair_items,
        lambda users, items: validate(users[val_rows], items),
        cfg.bpr,
        seed,
    )
    seconds = time.perf_counter() - started
    test = data.test
    metrics = retrieval_metrics(
        user_vecs[test_rows], item_vecs, test.seen, test.positives, cfg.eval_ks
    )
    return {**metrics, "train_seconds": seconds, **fitted}


def compare(
    dataset_name: str,
    data_dir: Path | None,
    out_dir: Path,
    cfg: TrainConfig,
    settings: CompareSettings,
    report: Report = print,
    command: str = "recsys compare",
) -> list[Path]:
    """Run every seed, then write ``compare-<data set>.json/.md/.png`` into ``out_dir``."""
    unknown = sorted(set(settings.rankers) - set(RANKERS))
    if unknown:
        raise ValueError(f"unknown rankers {unknown}; choose from {sorted(RANKERS)}")
    config = DatasetConfig.load(dataset_name)
    started = time.perf_counter()
    rankings: list[dict[str, Any]] = []
    retrievals: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="recsys-compare-") as tmp:
        for seed in settings.seeds:
            keras.utils.set_random_seed(seed)
            dataset = load_dataset(dataset_name, data_dir, seed=seed)
            if settings.rankers:
                rankings += ranking_runs(dataset, cfg, settings, seed, Path(tmp), report)
            if settings.retrieval:
                retrievals += retrieval_runs(dataset, config.split_ratios, cfg, seed, report)
    features = dataset.ranker_features()
    inputs = {
        "command": command,
        "dataset": {
            "name": dataset_name,
            "data_dir": str(data_dir or config.default_dir),
            **dataset.summary(),
        },
        "label": _label_text(config),
        "split": {"method": config.split_method, "ratios": list(config.split_ratios)},
        "ranker_features": [f.name for f in input_features(features)],
        "crosses": {f.name: list(f.features) for f in features if isinstance(f, CrossFeat)},
        "seeds": list(settings.seeds),
        "latency_rows": settings.latency_rows,
        "latency_runs": settings.latency_runs,
        "rankers": {name: asdict(cfg.ranker_for(name)) for name in settings.rankers},
        "dssm": asdict(cfg.dssm),
        "bpr": asdict(cfg.bpr),
        "validation_k": cfg.validation_k,
        "eval_ks": list(cfg.eval_ks),
        "wall_seconds": time.perf_counter() - started,
    }
    return write_report(out_dir, Path(dataset_name).stem, inputs, rankings, retrievals)


def _label_text(config: DatasetConfig) -> str:
    threshold = config.options.get("positive_rating")
    return f"rating >= {threshold:g}" if threshold is not None else "the data set's 0/1 label"
