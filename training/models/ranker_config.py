"""The settings of the ranker family, in their own module so every ranker factory reads them
without importing the others."""

from __future__ import annotations

from dataclasses import dataclass

RANKER_NAMES = ("lr", "fm", "deepfm", "widedeep", "afm", "nfm")
"""Every ranker of `training.models.rankers.RANKERS`, named without importing TensorFlow (the
help of `recsys train` lists them)."""


@dataclass(frozen=True)
class RankerConfig:
    """Settings every ranker shares, plus those of one family. Defaults tuned by validation
    AUC on MovieLens-100K (docs/rankers.md); ``TrainConfig.ranker_overrides`` sets some
    per ranker (the learning rates)."""

    name: str = "deepfm"
    embedding_dim: int = 16
    dnn: tuple[int, ...] = (256, 128)
    dropout: float = 0.5
    l2: float = 1e-5
    learning_rate: float = 1e-3  # Adam, every ranker but widedeep
    batch_size: int = 1024
    epochs: int = 50
    patience: int = 3
    # afm: the attention net's width and the dropout on the pooled interaction vector
    attention_dim: int = 8
    attention_dropout: float = 0.2
    # widedeep (Cheng et al. 2016): FTRL with L1 on the wide part, Adagrad on the deep part
    wide_learning_rate: float = 0.5
    wide_l1: float = 1e-2
    wide_l2: float = 0.0
    deep_learning_rate: float = 0.2
