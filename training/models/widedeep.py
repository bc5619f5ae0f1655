"""Wide & Deep (Cheng et al., DLRS 2016), trained jointly as in the paper.

The wide part is a linear model over the raw categorical features and the schema's crosses
(``CrossFeat``), its weights updated by FTRL with L1 (sparse, memorizing); the deep part
is a DNN over embeddings, updated by Adagrad. One loss, one backward pass: each
optimizer applies the gradients of its own variables (``keras.optimizers.MultiOptimizer``).
Variables belong to the wide part when their layer name starts with ``wide_``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from service.features import CrossFeat, Feature, FeatureEncoder
from training.models.layers import (
    Bias,
    EmbeddingBank,
    categorical,
    concat,
    dense_inputs,
    make_inputs,
    mlp,
    model_from_logits,
)
from training.models.ranker_config import RankerConfig

WIDE_PREFIX = "wide_"


def is_wide(variable: keras.Variable) -> bool:
    """A variable of the wide part (by its layer's name)."""
    return variable.path.split("/")[0].startswith(WIDE_PREFIX)


def build_widedeep(
    encoder: FeatureEncoder, features: Sequence[Feature], cfg: RankerConfig
) -> keras.Model:
    """Wide: bias + one weight per id, per cross id and per dense value (zeros at start, no
    Keras regularizer: FTRL's L1/L2 regularize). Deep: embeddings -> ReLU MLP -> logit."""
    inputs = make_inputs(encoder, features)
    dense = dense_inputs(features, inputs)
    wide_bank = EmbeddingBank(encoder, 1, "wide", initializer="zeros")
    terms = [wide_bank.embed(f, inputs) for f in categorical(features)]
    terms += [wide_bank.embed_cross(f, inputs) for f in features if isinstance(f, CrossFeat)]
    if dense:
        terms.append(
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="wide_dense")(
                concat(dense, "wide_dense_in")
            )
        )
    summed = keras.layers.Add(name="wide_sum")(terms) if len(terms) > 1 else terms[0]
    wide = Bias(name="wide_bias")(summed)

    deep_bank = EmbeddingBank(encoder, cfg.embedding_dim, "deep", cfg.l2)
    deep_in = concat([deep_bank.embed(f, inputs) for f in categorical(features)] + dense, "deep_in")
    deep = mlp(deep_in, cfg.dnn, cfg.dropout, cfg.l2, "deep")
    deep = keras.layers.Dense(1, name="deep_out")(deep)
    return model_from_logits(inputs, [wide, deep], "widedeep")


def widedeep_optimizer(cfg: RankerConfig) -> keras.optimizers.MultiOptimizer:
    """FTRL (with L1) for the wide variables, Adagrad for the deep ones, applied jointly."""
    wide = keras.optimizers.Ftrl(
        learning_rate=cfg.wide_learning_rate,
        l1_regularization_strength=cfg.wide_l1,
        l2_regularization_strength=cfg.wide_l2,
        name="wide_ftrl",
    )
    deep = keras.optimizers.Adagrad(learning_rate=cfg.deep_learning_rate, name="deep_adagrad")
    return keras.optimizers.MultiOptimizer(lambda v: wide if is_wide(v) else deep)
