"""Keras layers and input plumbing shared by the towers and the rankers.

Ids come in as int64 tensors named after their features; no string op is in any graph,
so every model converts with tf2onnx and runs fast in onnxruntime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from service.features import (
    CrossFeat,
    DenseFeat,
    Feature,
    FeatureEncoder,
    SparseFeat,
    VarLenSparseFeat,
)

MAX_EXACT_CROSS = 5_000_000  # rows of an exact cross table; beyond, hash into buckets


def make_inputs(
    encoder: FeatureEncoder, features: Sequence[Feature]
) -> dict[str, keras.KerasTensor]:
    """One ``keras.Input`` per model input, named after its feature (see ``input_specs``)."""
    return {
        spec.name: keras.Input(shape=(spec.width,), dtype=spec.dtype, name=spec.name)
        for spec in encoder.input_specs(features)
    }


class EmbeddingBank:
    """One embedding table per table name, so features with one ``embedding_name`` share it.

    Tables are made on first use, so a model holds only the tables it reads.
    """

    def __init__(
        self,
        encoder: FeatureEncoder,
        dim: int,
        prefix: str,
        l2: float = 0.0,
        initializer: str = "uniform",
    ) -> None:
        self.encoder = encoder
        self.dim = dim
        self.prefix = prefix
        self.initializer = initializer
        self.regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
        self.tables: dict[str, keras.layers.Embedding] = {}

    def table(self, name: str, size: int | None = None) -> keras.layers.Embedding:
        if name not in self.tables:
            self.tables[name] = keras.layers.Embedding(
                size or self.encoder.vocab_size(name),
                self.dim,
                embeddings_initializer=self.initializer,
                embeddings_regularizer=self.regularizer,
                name=f"{self.prefix}_{name}",
            )
        return self.tables[name]

    def embed(
        self, feat: SparseFeat | VarLenSparseFeat, inputs: dict[str, keras.KerasTensor]
    ) -> keras.KerasTensor:
        """``[batch, dim]``: the id's vector, or the masked pool of a list's vectors."""
        vectors = self.table(feat.table)(inputs[feat.name])
        if isinstance(feat, SparseFeat):
            return keras.layers.Flatten(name=f"{self.prefix}_{feat.name}_flat")(vectors)
        weights = inputs[feat.weight_name] if feat.weighted else None
        return MaskedPooling(feat.combiner, name=f"{self.prefix}_{feat.name}_pool")(
            vectors, inputs[feat.name], weights
        )

    def embed_cross(
        self, cross: CrossFeat, inputs: dict[str, keras.KerasTensor]
    ) -> keras.KerasTensor:
        """``[batch, dim]``: the sum of the vectors of the cross's ids (one per combination)."""
        parts = [self.encoder.schema[name] for name in cross.features]
        missing = [p.name for p in parts if p.name not in inputs]
        if missing:
            raise ValueError(f"cross {cross.name!r} needs features {missing} as model inputs")
        sizes = [self.encoder.vocab_size(p.table) for p in parts]
        if not cross.buckets and math.prod(sizes) > MAX_EXACT_CROSS:
            raise ValueError(
                f"cross {cross.name!r} has {math.prod(sizes):,} exact ids (> {MAX_EXACT_CROSS:,}):"
                " give it `buckets` in the schema"
            )
        ids = CrossIds(sizes, cross.buckets, name=f"{self.prefix}_{cross.name}_ids")(
            [inputs[p.name] for p in parts]
        )
        table = self.table(cross.name, cross_table_size(sizes, cross.buckets))
        return MaskedPooling("sum", name=f"{self.prefix}_{cross.name}_pool")(table(ids), ids)


def cross_table_size(sizes: Sequence[int], buckets: int = 0) -> int:
    """Rows a cross's table needs: every combination (or ``buckets``), plus padding row 0."""
    return (buckets or math.prod(sizes)) + 1


class CrossIds(keras.layers.Layer):
    """Crossed ids from the parts' ids ``[batch, w_i]`` -> ``[batch, prod(w_i)]`` int64.

    Mixed radix over the parts' vocabulary ``sizes`` (exact), or that number modulo
    ``buckets``; shifted by one so that 0 stays padding: a combination with a padded
    part is 0. Integer ops only, so it exports to ONNX as Mul/Add/Mod.
    """

    def __init__(self, sizes: Sequence[int], buckets: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]
        self.buckets = int(buckets)

    def call(self, parts):
        ids = ops.cast(parts[0], "int64")
        valid = ops.not_equal(ids, 0)
        for part, size in zip(parts[1:], self.sizes[1:], strict=True):
            part = ops.cast(part, "int64")
            width = ids.shape[1] * part.shape[1]
            ids = ops.reshape(ids[:, :, None] * size + part[:, None, :], (-1, width))
            valid = ops.reshape(
                ops.logical_and(valid[:, :, None], ops.not_equal(part, 0)[:, None, :]),
                (-1, width),
            )
        if self.buckets:
            ids = ops.mod(ids, self.buckets)
        return ops.where(valid, ids + 1, ops.zeros_like(ids))

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes, "buckets": self.buckets}


class MaskedPooling(keras.layers.Layer):
    """Pools ``[batch, len, dim]`` over positions whose id is not padding (0), optionally
    weighted: ``sum(w * e) / sum(w)`` for "mean", ``sum(w * e)`` for "sum". An empty list
    pools to zeros."""

    def __init__(self, combiner: str = "mean", **kwargs) -> None:
        super().__init__(**kwargs)
        self.combiner = combiner

    def call(self, vectors, ids, weights=None):
        mask = ops.cast(ops.not_equal(ids, 0), vectors.dtype)
        if weights is not None:
            mask = mask * ops.cast(weights, vectors.dtype)
        total = ops.sum(vectors * ops.expand_dims(mask, -1), axis=1)
        if self.combiner == "sum":
            return total
        denom = ops.sum(mask, axis=1, keepdims=True)
        return total / ops.maximum(denom, 1e-6)

    def get_config(self):
        return {**super().get_config(), "combiner": self.combiner}


class FMInteraction(keras.layers.Layer):
    """Second-order FM term over field vectors ``[batch, fields, k]`` -> ``[batch, 1]``."""

    def call(self, fields):
        square_of_sum = ops.square(ops.sum(fields, axis=1))
        sum_of_square = ops.sum(ops.square(fields), axis=1)
        return 0.5 * ops.sum(square_of_sum - sum_of_square, axis=1, keepdims=True)


class BiInteraction(keras.layers.Layer):
    """NFM's bi-interaction pooling (He & Chua, SIGIR 2017): the FM term kept as a vector,
    ``0.5 * ((sum v)^2 - sum v^2)`` over fields ``[batch, fields, k]`` -> ``[batch, k]``."""

    def call(self, fields):
        return 0.5 * (ops.square(ops.sum(fields, axis=1)) - ops.sum(ops.square(fields), axis=1))


class AttentionalPooling(keras.layers.Layer):
    """AFM's attention over pairwise interactions (Xiao et al., IJCAI 2017).

    Fields ``[batch, F, k]`` -> the ``F(F-1)/2`` products ``v_i * v_j`` ``[batch, P, k]``;
    a one-layer attention net ``h^T relu(W x + b)`` (``attention_dim`` units, L2 on ``W``)
    scores each pair, a softmax over pairs weighs them, and the weighted sum ``[batch, k]``
    goes through dropout (the paper's regularizer for the interaction vector).
    """

    def __init__(self, attention_dim: int, dropout: float = 0.0, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.attention_dim = attention_dim
        self.rate = dropout
        self.l2 = l2
        self.dropout = keras.layers.Dropout(dropout) if dropout > 0 else None

    def build(self, input_shape):
        fields, k = int(input_shape[1]), int(input_shape[2])
        if fields < 2:
            raise ValueError("AFM needs at least two embedded fields")
        self.left, self.right = (idx.tolist() for idx in np.triu_indices(fields, 1))
        reg = keras.regularizers.L2(self.l2) if self.l2 > 0 else None
        self.w = self.add_weight(
            shape=(k, self.attention_dim), initializer="glorot_uniform", regularizer=reg, name="w"
        )
        self.b = self.add_weight(shape=(self.attention_dim,), initializer="zeros", name="b")
        self.h = self.add_weight(
            shape=(self.attention_dim, 1), initializer="glorot_uniform", name="h"
        )

    def call(self, fields, training=None):
        pairs = ops.take(fields, self.left, axis=1) * ops.take(fields, self.right, axis=1)
        scores = ops.matmul(ops.relu(ops.matmul(pairs, self.w) + self.b), self.h)  # [b, P, 1]
        weights = ops.softmax(scores, axis=1)
        pooled = ops.sum(weights * pairs, axis=1)
        return self.dropout(pooled, training=training) if self.dropout else pooled

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "attention_dim": self.attention_dim,
            "dropout": self.rate,
            "l2": self.l2,
        }


class StackFields(keras.layers.Layer):
    """``fields`` list of ``[batch, k]`` -> ``[batch, fields, k]``."""

    def call(self, fields):
        return ops.stack(fields, axis=1)


class Bias(keras.layers.Layer):
    """Adds one learned scalar."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="bias")

    def call(self, x):
        return x + self.bias


class L2Normalize(keras.layers.Layer):
    def call(self, x):
        return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), 1e-12)


def categorical(features: Sequence[Feature]) -> list[SparseFeat | VarLenSparseFeat]:
    """The features with ids, in order (not dense, not crosses)."""
    return [f for f in features if isinstance(f, SparseFeat | VarLenSparseFeat)]


def model_from_logits(inputs: dict[str, keras.KerasTensor], logits: list, name: str) -> keras.Model:
    """Sum the logits and apply the sigmoid: a model with ``[batch, 1]`` probabilities."""
    total = keras.layers.Add(name="logit")(logits) if len(logits) > 1 else logits[0]
    prob = keras.layers.Activation("sigmoid", name="prob")(total)
    return keras.Model(inputs=list(inputs.values()), outputs=prob, name=name)


def dense_inputs(features: Sequence[Feature], inputs: dict[str, keras.KerasTensor]) -> list:
    return [inputs[f.name] for f in features if isinstance(f, DenseFeat)]


def concat(tensors: list, name: str) -> keras.KerasTensor:
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)


def mlp(
    x: keras.KerasTensor, units: Sequence[int], dropout: float, l2: float, name: str
) -> keras.KerasTensor:
    """ReLU layers with optional dropout; the caller adds the output layer."""
    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    for i, width in enumerate(units):
        x = keras.layers.Dense(
            width, activation="relu", kernel_regularizer=reg, name=f"{name}_{i}"
        )(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"{name}_drop{i}")(x)
    return x
