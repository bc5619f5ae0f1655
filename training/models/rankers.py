"""The ranker family over one schema: ``lr``, ``fm``, ``deepfm``, ``widedeep``, ``afm``, ``nfm``.

Each factory takes the encoder and the features it reads and returns a Keras model whose
inputs are named after the features and whose output is a click probability ``[batch, 1]``.
Crossed features (``CrossFeat``) feed the wide part of ``widedeep`` only: the FM family
learns its feature interactions from the embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from service.features import CrossFeat, Feature, FeatureEncoder
from training.models.layers import (
    AttentionalPooling,
    Bias,
    BiInteraction,
    EmbeddingBank,
    FMInteraction,
    StackFields,
    categorical,
    concat,
    dense_inputs,
    make_inputs,
    mlp,
    model_from_logits,
)
from training.models.ranker_config import RankerConfig
from training.models.widedeep import build_widedeep, widedeep_optimizer


def _linear(encoder, features, inputs, l2) -> keras.KerasTensor:
    """First-order term: a scalar weight per id (pooled for lists) plus a dense linear part."""
    first = EmbeddingBank(encoder, 1, "linear", l2)
    terms = [first.embed(f, inputs) for f in categorical(features)]
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
    return [bank.embed(f, inputs) for f in categorical(features)]


def _fm(fields) -> keras.KerasTensor:
    return FMInteraction(name="fm")(StackFields(name="fields")(fields))


def build_lr(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    inputs = make_inputs(encoder, features)
    return model_from_logits(inputs, [_linear(encoder, features, inputs, cfg.l2)], "lr")


def build_fm(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    inputs = make_inputs(encoder, features)
    fields = _fields(encoder, features, inputs, cfg)
    linear = _linear(encoder, features, inputs, cfg.l2)
    return model_from_logits(inputs, [linear, _fm(fields)], "fm")


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
    return model_from_logits(inputs, [linear, _fm(fields), deep], "deepfm")


def build_afm(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    """First order + attention-weighted pairwise interactions, projected to a logit."""
    inputs = make_inputs(encoder, features)
    fields = StackFields(name="fields")(_fields(encoder, features, inputs, cfg))
    pooled = AttentionalPooling(
        cfg.attention_dim, cfg.attention_dropout, cfg.l2, name="afm_attention"
    )(fields)
    pairwise = keras.layers.Dense(1, use_bias=False, name="afm_out")(pooled)
    linear = _linear(encoder, features, inputs, cfg.l2)
    return model_from_logits(inputs, [linear, pairwise], "afm")


def build_nfm(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    """First order + a DNN over the bi-interaction pooled vector (and any dense inputs)."""
    inputs = make_inputs(encoder, features)
    fields = StackFields(name="fields")(_fields(encoder, features, inputs, cfg))
    pooled = BiInteraction(name="bi_interaction")(fields)
    if cfg.dropout > 0:
        pooled = keras.layers.Dropout(cfg.dropout, name="bi_dropout")(pooled)
    deep = mlp(
        concat([pooled, *dense_inputs(features, inputs)], "dnn_in"),
        cfg.dnn,
        cfg.dropout,
        cfg.l2,
        "dnn",
    )
    deep = keras.layers.Dense(1, name="dnn_out")(deep)
    return model_from_logits(inputs, [_linear(encoder, features, inputs, cfg.l2), deep], "nfm")


Builder = Callable[[FeatureEncoder, Sequence[Feature], RankerConfig], keras.Model]
RANKERS: dict[str, Builder] = {
    "lr": build_lr,
    "fm": build_fm,
    "deepfm": build_deepfm,
    "widedeep": build_widedeep,
    "afm": build_afm,
    "nfm": build_nfm,
}


def ranker_features(name: str, features: Sequence[Feature]) -> list[Feature]:
    """The features ranker ``name`` reads: crosses only for ``widedeep``."""
    if name == "widedeep":
        return list(features)
    return [f for f in features if not isinstance(f, CrossFeat)]


def input_features(features: Sequence[Feature]) -> list[Feature]:
    """The features that are model inputs (a cross is computed inside the model)."""
    return [f for f in features if not isinstance(f, CrossFeat)]


def build_ranker(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    if cfg.name not in RANKERS:
        raise ValueError(f"unknown ranker {cfg.name!r}; choose one of {sorted(RANKERS)}")
    return RANKERS[cfg.name](encoder, ranker_features(cfg.name, features), cfg)


def ranker_optimizer(cfg: RankerConfig) -> keras.optimizers.Optimizer:
    """Adam, except for ``widedeep``: FTRL on its wide variables, Adagrad on its deep ones."""
    if cfg.name == "widedeep":
        return widedeep_optimizer(cfg)
    return keras.optimizers.Adam(cfg.learning_rate)


__all__ = [
    "RANKERS",
    "RankerConfig",
    "build_ranker",
    "input_features",
    "ranker_features",
    "ranker_optimizer",
]
