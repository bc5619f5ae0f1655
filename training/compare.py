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
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from service.bundle.onnx_model import OnnxModel
from service.features import CrossFeat, FeatureEncoder
from training.bpr import fit_bpr
from training.config import TrainConfig
from training.datasets import SPLITS, Dataset, DatasetConfig, load_dataset
from training.evaluate import auc, logloss, popularity_metrics, retrieval_metrics
from training.examples import HistoryIndex, feature_columns
from training.export import export_checked
from training.fit import fit_ranker, fit_towers, predict, take
from training.models.dssm import build_towers
from training.models.rankers import RANKERS, build_ranker, input_features, ranker_features
from training.report import write_report
from training.retrieval_data import RetrievalData, build_retrieval_data

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
    history = HistoryIndex(dataset)
    columns = {s: feature_columns(dataset, dataset.part(s), history) for s in SPLITS}
    labels = {s: dataset.part(s)["label"].to_numpy() for s in SPLITS}
    encoder = FeatureEncoder.fit(dataset.schema, columns["train"])
    features = dataset.ranker_features()
    arrays = {
        s: encoder.encode(columns[s], input_features(features), len(labels[s])) for s in SPLITS
    }
    n_test = len(labels["test"])
    parity_rows = take(arrays["test"], np.arange(cfg.parity_rows) % n_test)
    latency_rows = take(arrays["test"], np.arange(settings.latency_rows) % n_test)
    runs = []
    for name in settings.rankers:
        rcfg = cfg.ranker_for(name)
        keras.utils.set_random_seed(seed)
        model = build_ranker(encoder, features, rcfg)
        started = time.perf_counter()
        fitted = fit_ranker(
            model, (arrays["train"], labels["train"]), (arrays["val"], labels["val"]), rcfg
        )
        seconds = time.perf_counter() - started
        probs = predict(model, arrays["test"]).reshape(-1)
        specs = encoder.input_specs(input_features(ranker_features(name, features)))
        path = workdir / f"{name}_{seed}.onnx"
        parity = export_checked(
            model,
            specs,
            path,
            {s.name: parity_rows[s.name] for s in specs},
            cfg.parity_tolerance,
            cfg.opset,
        )
        run = {
            "model": name,
            "seed": seed,
            "auc": auc(labels["test"], probs),
            "logloss": logloss(labels["test"], probs),
            "train_seconds": seconds,
            **fitted,
            "parameters": int(model.count_params()),
            "parity_max_abs_diff": parity["max_abs_diff"],
            "onnx_ms": latency_ms(path, latency_rows, settings.latency_runs),
        }
        report(
            f"seed {seed} {name}: AUC {run['auc']:.4f}, LogLoss {run['logloss']:.4f}, "
            f"{seconds:.0f}s, best epoch {fitted['best_epoch']}/{fitted['epochs']}, "
            f"ONNX p50 {run['onnx_ms']['p50']:.2f} ms"
        )
        runs.append(run)
    return runs


def _validate_recall(data: RetrievalData, k: int) -> Callable[[np.ndarray, np.ndarray], float]:
    def score(user_vecs: np.ndarray, item_vecs: np.ndarray) -> float:
        return retrieval_metrics(user_vecs, item_vecs, data.val.seen, data.val.positives, (k,))[
            f"recall@{k}"
        ]

    return score


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
    validate = _validate_recall(data, cfg.validation_k)
    ks = cfg.eval_ks
    runs = []

    keras.utils.set_random_seed(seed)
    user_tower, item_tower = build_towers(encoder, cfg.dssm)
    started = time.perf_counter()
    fitted = fit_towers(
        user_tower,
        item_tower,
        data.pairs,
        data.items,
        data.pair_items,
        data.log_q,
        lambda: validate(predict(user_tower, data.val.arrays), predict(item_tower, data.items)),
        cfg.dssm,
        seed,
        user_key=split.schema.user_key,  # user-id dropout, as `recsys train` trains it
    )
    seconds = time.perf_counter() - started
    test = data.test
    metrics = retrieval_metrics(
        predict(user_tower, test.arrays),
        predict(item_tower, data.items),
        test.seen,
        test.positives,
        ks,
    )
    runs.append({"model": "dssm", "seed": seed, **metrics, "train_seconds": seconds, **fitted})

    user_row = {u: i for i, u in enumerate(split.users[split.schema.user_key])}
    pair_users = np.array([user_row[u] for u in data.pair_users])
    val_rows = np.array([user_row[u] for u in data.val.user_ids])

    def validate_bpr(user_vecs: np.ndarray, item_vecs: np.ndarray) -> float:
        return validate(user_vecs[val_rows], item_vecs)

    started = time.perf_counter()
    user_vecs, item_vecs, fitted = fit_bpr(
        len(user_row), len(data.item_ids), pair_users, data.pair_items, validate_bpr, cfg.bpr, seed
    )
    seconds = time.perf_counter() - started
    test_rows = np.array([user_row[u] for u in test.user_ids])
    metrics = retrieval_metrics(user_vecs[test_rows], item_vecs, test.seen, test.positives, ks)
    runs.append({"model": "bpr", "seed": seed, **metrics, "train_seconds": seconds, **fitted})

    metrics = popularity_metrics(data.popularity, test.seen, test.positives, ks)
    runs.append({"model": "popularity", "seed": seed, **metrics, "train_seconds": 0.0})
    for run in runs:
        report(
            f"seed {seed} {run['model']}: Recall@10 {run['recall@10']:.4f}, "
            f"Recall@50 {run['recall@50']:.4f}, NDCG@10 {run['ndcg@10']:.4f}"
        )
    return runs


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
