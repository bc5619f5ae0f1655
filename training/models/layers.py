"""Keras layers and input plumbing shared by the towers and the rankers.

Ids come in as int64 tensors named after their features; no string op is in any graph,
so every model converts with tf2onnx and runs fast in onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from service.features import DenseFeat, Feature, FeatureEncoder, SparseFeat, VarLenSparseFeat


def make_inputs(
    encoder: FeatureEncoder, features: Sequence[Feature]
) -> dict[str, keras.KerasTensor]:
    """One ``keras.Input`` per model input, named after its feature (see ``input_specs``)."""
    return {
        spec.name: keras.Input(shape=(spec.width,), dtype=spec.dtype, name=spec.name)
        for spec in encoder.input_specs(features)
    }


class EmbeddingBank:
    """One embedding table per table name, so features with one ``embedding_name`` share it."""

    def __init__(self, encoder: FeatureEncoder, dim: int, prefix: str, l2: float = 0.0) -> None:
        reg = keras.regularizers.L2(l2) if l2 > 0 else None
        self.prefix = prefix
        self.tables = {
            table: keras.layers.Embedding(
                encoder.vocab_size(table), dim, embeddings_regularizer=reg, name=f"{prefix}_{table}"
            )
            for table in encoder.schema.tables()
        }

    def embed(
        self, feat: SparseFeat | VarLenSparseFeat, inputs: dict[str, keras.KerasTensor]
    ) -> keras.KerasTensor:
        """``[batch, dim]``: the id's vector, or the masked pool of a list's vectors."""
        vectors = self.tables[feat.table](inputs[feat.name])
        if isinstance(feat, SparseFeat):
            return keras.layers.Flatten(name=f"{self.prefix}_{feat.name}_flat")(vectors)
        weights = inputs[feat.weight_name] if feat.weighted else None
        return MaskedPooling(feat.combiner, name=f"{self.prefix}_{feat.name}_pool")(
            vectors, inputs[feat.name], weights
        )


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
