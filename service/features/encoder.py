"""The batch encoder: raw feature columns -> the int64/float32 arrays the models take.

One implementation for both sides: training fits it and writes it into the bundle, the
service reads it back (no TensorFlow needed) and encodes requests and items with it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.features.schema import (
    OOV_ID,
    PAD_ID,
    CrossFeat,
    DenseFeat,
    Feature,
    FeatureSchema,
    SparseFeat,
    VarLenSparseFeat,
)
from service.features.vocab import Vocabulary, token

Columns = Mapping[str, Sequence[Any]]
Arrays = dict[str, np.ndarray]
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, dtype and per-row shape (the batch axis is dynamic)."""

    name: str
    dtype: str
    width: int


@dataclass(frozen=True)
class DenseStats:
    mean: np.ndarray  # [dim]
    std: np.ndarray  # [dim]


class EncodingError(ValueError):
    """A raw value cannot be encoded (wrong shape, type or range); ``feature`` names it."""

    def __init__(self, feature: str, problem: str) -> None:
        super().__init__(f"{feature}: {problem}")
        self.feature = feature


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value]
    if isinstance(value, Mapping):
        return list(value.items())
    return list(value)


def _pair(value: Any, feature: str) -> tuple[str, float]:
    """A weighted value: "token:weight", (token, weight) or a bare token (weight 1); the
    weight is a finite number within float32 range."""
    if isinstance(value, str):
        tok, sep, weight = value.rpartition(":")
        if not sep:
            return value, 1.0
    elif isinstance(value, tuple | list) and len(value) == 2:
        tok, weight = token(value[0]), value[1]
    else:
        return token(value), 1.0
    try:
        number = float(weight)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and abs(number) <= FLOAT32_MAX):
        raise EncodingError(feature, f"bad weighted value {value!r} (weight: a finite number)")
    return tok, number


def _tokens(feat: VarLenSparseFeat, value: Any) -> list[Any]:
    values = _as_list(value)
    if feat.weighted:
        return [_pair(v, feat.name)[0] for v in values]
    return values


class FeatureEncoder:
    """Vocabularies (one per embedding table) and dense statistics for one schema."""

    def __init__(
        self,
        schema: FeatureSchema,
        vocabs: Mapping[str, Vocabulary],
        dense_stats: Mapping[str, DenseStats],
    ) -> None:
        self.schema = schema
        self.vocabs = dict(vocabs)
        self.dense_stats = dict(dense_stats)
        missing = set(schema.tables()) - set(self.vocabs)
        if missing:
            raise ValueError(f"encoder lacks vocabularies for tables {sorted(missing)}")

    @classmethod
    def fit(cls, schema: FeatureSchema, columns: Columns) -> FeatureEncoder:
        """Fit vocabularies and dense statistics on training columns only (no test leakage).

        Features that share an embedding table share one vocabulary, counted over all of them.
        Columns absent from ``columns`` contribute nothing (their table may stay empty: every
        value is then OOV).
        """
        vocabs = {}
        for table, feats in schema.tables().items():
            counts: Counter[str] = Counter()
            for feat in feats:
                for value in columns.get(feat.name, ()):
                    if isinstance(feat, SparseFeat):
                        if value is not None:
                            counts[token(value)] += 1
                    else:
                        counts.update(token(v) for v in _tokens(feat, value))
            vocabs[table] = Vocabulary.fit(counts, min(f.min_count for f in feats))
        stats = {}
        for feat in schema.features:
            if isinstance(feat, DenseFeat) and feat.name in columns:
                matrix = _dense_matrix(feat, columns[feat.name], None)
                std = matrix.std(axis=0) if feat.normalize else np.ones(feat.dim)
                mean = matrix.mean(axis=0) if feat.normalize else np.zeros(feat.dim)
                stats[feat.name] = DenseStats(
                    mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
                )
        return cls(schema, vocabs, stats)

    def vocab_size(self, table: str) -> int:
        return len(self.vocabs[table])

    def input_specs(self, features: Iterable[Feature]) -> list[InputSpec]:
        """The model inputs for ``features``, in order: ids, then weights for weighted lists.

        A cross has none: the model computes it from its parts' inputs.
        """
        specs = []
        for feat in features:
            if isinstance(feat, CrossFeat):
                continue
            if isinstance(feat, SparseFeat):
                specs.append(InputSpec(feat.name, "int64", 1))
            elif isinstance(feat, VarLenSparseFeat):
                specs.append(InputSpec(feat.name, "int64", feat.maxlen))
                if feat.weighted:
                    specs.append(InputSpec(feat.weight_name, "float32", feat.maxlen))
            else:
                specs.append(InputSpec(feat.name, "float32", feat.dim))
        return specs

    def encode(self, columns: Columns, features: Iterable[Feature], n: int | None = None) -> Arrays:
        """Encode ``n`` rows of raw columns into model inputs, shape ``[n, width]`` each.

        A column that is absent encodes as unknown: OOV ids, empty lists, the training mean.
        """
        features = list(features)
        if n is None:
            present = [len(columns[f.name]) for f in features if f.name in columns]
            if not present:
                raise ValueError("cannot infer the row count: no feature column given")
            n = present[0]
        out: Arrays = {}
        for feat in features:
            if isinstance(feat, CrossFeat):
                continue
            values = columns.get(feat.name)
            if values is not None and len(values) != n:
                raise EncodingError(feat.name, f"{len(values)} values for {n} rows")
            try:
                out.update(self._encode_feature(feat, values, n))
            except EncodingError:
                raise
            except (TypeError, ValueError, OverflowError) as exc:
                raise EncodingError(feat.name, f"cannot encode: {exc}") from None
        return out

    def _encode_feature(self, feat: Feature, values: Sequence[Any] | None, n: int) -> Arrays:
        if isinstance(feat, SparseFeat):
            return {feat.name: self._sparse(feat, values, n)}
        if isinstance(feat, VarLenSparseFeat):
            return self._varlen(feat, values, n)
        stats = self.dense_stats.get(feat.name)
        matrix = _dense_matrix(feat, values if values is not None else [None] * n, stats)
        if stats is not None:
            matrix = (matrix - stats.mean) / stats.std
        with np.errstate(over="ignore"):
            encoded = matrix.astype(np.float32)
        if not np.isfinite(encoded).all():
            raise EncodingError(feat.name, "values must be finite numbers within float32 range")
        return {feat.name: encoded}

    def encode_rows(self, rows: Sequence[Mapping[str, Any]], features: Iterable[Feature]) -> Arrays:
        """Encode a list of row dicts (e.g. request payloads); missing keys encode as unknown."""
        features = list(features)
        columns = {f.name: [row.get(f.name) for row in rows] for f in features}
        return self.encode(columns, features, len(rows))

    def _sparse(self, feat: SparseFeat, values: Sequence[Any] | None, n: int) -> np.ndarray:
        if values is None:
            return np.full((n, 1), OOV_ID, dtype=np.int64)
        ids = self.vocabs[feat.table].ids("" if v is None else v for v in values)
        return np.asarray(ids, dtype=np.int64).reshape(n, 1)

    def _varlen(self, feat: VarLenSparseFeat, values: Sequence[Any] | None, n: int) -> Arrays:
        ids = np.full((n, feat.maxlen), PAD_ID, dtype=np.int64)
        weights = np.zeros((n, feat.maxlen), dtype=np.float32)
        vocab = self.vocabs[feat.table]
        for row, value in enumerate(values if values is not None else ()):
            items = _as_list(value)
            if feat.weighted:
                pairs = [_pair(v, feat.name) for v in items]
            else:
                pairs = [(v, 1.0) for v in items]
            if len(pairs) > feat.maxlen:
                pairs = pairs[-feat.maxlen :] if feat.keep == "last" else pairs[: feat.maxlen]
            if pairs:
                toks, ws = zip(*pairs, strict=True)
                ids[row, : len(pairs)] = vocab.ids(toks)
                weights[row, : len(pairs)] = ws
        out = {feat.name: ids}
        if feat.weighted:
            out[feat.weight_name] = weights
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema.to_dict(),
            "vocabularies": {table: vocab.tokens for table, vocab in self.vocabs.items()},
            "dense_stats": {
                name: {"mean": s.mean.tolist(), "std": s.std.tolist()}
                for name, s in self.dense_stats.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureEncoder:
        return cls(
            FeatureSchema.from_dict(data["schema"]),
            {table: Vocabulary(tokens) for table, tokens in data["vocabularies"].items()},
            {
                name: DenseStats(
                    np.asarray(s["mean"], dtype=np.float32), np.asarray(s["std"], dtype=np.float32)
                )
                for name, s in data["dense_stats"].items()
            },
        )


def _dense_matrix(feat: DenseFeat, values: Sequence[Any], stats: DenseStats | None) -> np.ndarray:
    """``[n, dim]`` float64; a missing value takes the training mean (0 without statistics)."""
    default = stats.mean if stats is not None else np.zeros(feat.dim)
    matrix = np.empty((len(values), feat.dim), dtype=np.float64)
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            matrix[row] = default
            continue
        vec = np.asarray(value, dtype=np.float64).reshape(-1)
        if vec.shape[0] != feat.dim:
            raise EncodingError(feat.name, f"expected {feat.dim} values, got {vec.shape[0]}")
        matrix[row] = vec
    return matrix
