"""Rankers over one shared embedding: ``lr``, ``fm`` and ``deepfm`` (seeds 000/002).

Each factory takes the encoder and the features it reads and returns a Keras model whose
inputs are named after the features and whose output is a click probability ``[batch, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras

from service.features import DenseFeat, Feature, FeatureEncoder
from training.models.layers import (
    Bias,
    EmbeddingBank,
    FMInteraction,
    StackFields,
    concat,
    dense_inputs,
    make_inputs,
    mlp,
)


@dataclass(frozen=True)
class RankerConfig:
    name: str = "deepfm"
    embedding_dim: int = 8
    dnn: tuple[int, ...] = (256, 128)
    dropout: float = 0.2
    l2: float = 1e-6
    learning_rate: float = 1e-3
    batch_size: int = 1024
    epochs: int = 10
    patience: int = 2


def _linear(encoder, features, inputs, l2) -> keras.KerasTensor:
    """First-order term: a scalar weight per id (pooled for lists) plus a dense linear part."""
    first = EmbeddingBank(encoder, 1, "linear", l2)
    terms = [first.embed(f, inputs) for f in features if not isinstance(f, DenseFeat)]
    dense = dense_inputs(features, inputs)
    if dense:
        terms.append(
            keras.layers.Dense(1, use_bias=False, name="linear_dense")(
                concat(dense, "linear_dense_in")
            )
        )
    summed = keras.layers.Add(name="linear_sum")(terms) if len(terms) > 1 else terms[0]
    return Bias(name="linear_bias")(summed)


def _fields(encoder, features, inputs, cfg) -> list[keras.KerasTensor]:
    bank = EmbeddingBank(encoder, cfg.embedding_dim, "emb", cfg.l2)
    return [bank.embed(f, inputs) for f in features if not isinstance(f, DenseFeat)]


def _fm(fields) -> keras.KerasTensor:
    return FMInteraction(name="fm")(StackFields(name="fields")(fields))


def _model(inputs, logits: list, name: str) -> keras.Model:
    total = keras.layers.Add(name="logit")(logits) if len(logits) > 1 else logits[0]
    prob = keras.layers.Activation("sigmoid", name="prob")(total)
    return keras.Model(inputs=list(inputs.values()), outputs=prob, name=name)


def build_lr(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    inputs = make_inputs(encoder, features)
    return _model(inputs, [_linear(encoder, features, inputs, cfg.l2)], "lr")


def build_fm(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    inputs = make_inputs(encoder, features)
    fields = _fields(encoder, features, inputs, cfg)
    return _model(inputs, [_linear(encoder, features, inputs, cfg.l2), _fm(fields)], "fm")


def build_deepfm(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    """First order + FM second order + DNN, the FM and DNN reading one shared embedding."""
    inputs = make_inputs(encoder, features)
    fields = _fields(encoder, features, inputs, cfg)
    deep_in = concat(fields + dense_inputs(features, inputs), "dnn_in")
    deep = mlp(deep_in, cfg.dnn, cfg.dropout, cfg.l2, "dnn")
    deep = keras.layers.Dense(1, name="dnn_out")(deep)
    linear = _linear(encoder, features, inputs, cfg.l2)
    return _model(inputs, [linear, _fm(fields), deep], "deepfm")


RANKERS: dict[str, Callable[[FeatureEncoder, Sequence[Feature], RankerConfig], keras.Model]] = {
    "lr": build_lr,
    "fm": build_fm,
    "deepfm": build_deepfm,
}


def build_ranker(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    if cfg.name not in RANKERS:
        raise ValueError(f"unknown ranker {cfg.name!r}; choose one of {sorted(RANKERS)}")
    return RANKERS[cfg.name](encoder, features, cfg)
