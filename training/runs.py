"""Train and test one model on a data set's split: the one path `recsys train` and `recsys
compare` share, so both report the same numbers for the same settings and seed.

Rankers: an encoder fitted on the training split, the model built and seeded, early stopping
on validation AUC, AUC and LogLoss on the test split. Towers: in-batch softmax, early stopping
on validation Recall@K, full-ranking retrieval metrics on the test users.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from service.features import Feature, FeatureEncoder
from service.features.encoder import Arrays, Columns
from training.config import TrainConfig
from training.datasets import SPLITS, Dataset
from training.evaluate import auc, logloss, retrieval_metrics
from training.examples import HistoryIndex, feature_columns
from training.fit import fit_ranker, fit_towers, predict
from training.models.dssm import build_towers
from training.models.ranker_config import RankerConfig
from training.models.rankers import build_ranker, input_features, ranker_features
from training.retrieval_data import RetrievalData


@dataclass
class LabelledSplits:
    """Every schema feature encoded for each split, with the 0/1 labels."""

    encoder: FeatureEncoder
    history: HistoryIndex
    arrays: dict[str, Arrays]
    labels: dict[str, np.ndarray]
    columns: dict[str, Columns]  # the raw columns, so another bundle can encode them its way


def encode_splits(dataset: Dataset) -> LabelledSplits:
    """History rebuilt from training positives only; the encoder fitted on the training split."""
    history = HistoryIndex(dataset)
    columns = {s: feature_columns(dataset, dataset.part(s), history) for s in SPLITS}
    labels = {s: dataset.part(s)["label"].to_numpy() for s in SPLITS}
    encoder = FeatureEncoder.fit(dataset.schema, columns["train"])
    features = dataset.schema.features
    arrays = {s: encoder.encode(columns[s], features, len(labels[s])) for s in SPLITS}
    return LabelledSplits(encoder, history, arrays, labels, columns)


@dataclass
class RankerRun:
    model: keras.Model
    inputs: list[Feature]  # the features that are model inputs (a cross is computed inside)
    metrics: dict[str, Any]  # auc, logloss, train_seconds, epochs, best_epoch, val_auc


def train_ranker(
    splits: LabelledSplits, features: Sequence[Feature], cfg: RankerConfig, seed: int
) -> RankerRun:
    keras.utils.set_random_seed(seed)
    model = build_ranker(splits.encoder, features, cfg)
    started = time.perf_counter()
    fitted = fit_ranker(
        model,
        (splits.arrays["train"], splits.labels["train"]),
        (splits.arrays["val"], splits.labels["val"]),
        cfg,
    )
    seconds = time.perf_counter() - started
    probs = predict(model, splits.arrays["test"]).reshape(-1)
    test = splits.labels["test"]
    metrics = {
        "auc": auc(test, probs),
        "logloss": logloss(test, probs),
        "train_seconds": seconds,
        **fitted,
    }
    return RankerRun(model, input_features(ranker_features(cfg.name, features)), metrics)


@dataclass
class TowerRun:
    user_tower: keras.Model
    item_tower: keras.Model
    metrics: dict[str, Any]  # test retrieval metrics, train_seconds, epochs, best_epoch, ...


def validation_recall(data: RetrievalData, k: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """Recall@k of the validation users from user and item vectors (the early-stopping score
    of the towers and of BPR)."""

    def score(user_vecs: np.ndarray, item_vecs: np.ndarray) -> float:
        return retrieval_metrics(user_vecs, item_vecs, data.val.seen, data.val.positives, (k,))[
            f"recall@{k}"
        ]

    return score


def train_towers(
    data: RetrievalData, encoder: FeatureEncoder, cfg: TrainConfig, seed: int
) -> TowerRun:
    """The two towers, trained with user-id dropout (so they embed unknown users too)."""
    keras.utils.set_random_seed(seed)
    towers = build_towers(encoder, cfg.dssm)
    validate = validation_recall(data, cfg.validation_k)
    started = time.perf_counter()
    fitted = fit_towers(
        *towers,
        data.pairs,
        data.items,
        data.pair_items,
        data.log_q,
        lambda: validate(predict(towers[0], data.val.arrays), predict(towers[1], data.items)),
        cfg.dssm,
        seed,
        user_key=encoder.schema.user_key,
    )
    seconds = time.perf_counter() - started
    test = data.test
    metrics = retrieval_metrics(
        predict(towers[0], test.arrays),
        predict(towers[1], data.items),
        test.seen,
        test.positives,
        cfg.eval_ks,
    )
    return TowerRun(*towers, {**metrics, "train_seconds": seconds, **fitted})
