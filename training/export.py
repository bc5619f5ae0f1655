"""Export Keras models to ONNX with tf2onnx and prove parity in onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from service.features import InputSpec
from service.features.encoder import Arrays

OPSET = 17


class ParityError(RuntimeError):
    """ONNX outputs differ from Keras outputs by more than the tolerance."""


def to_onnx(model: keras.Model, specs: Sequence[InputSpec], path: Path, opset: int = OPSET) -> None:
    """Convert with an explicit signature: inputs named after features, dynamic batch axis."""
    signature = [
        tf.TensorSpec((None, spec.width), getattr(tf, spec.dtype), name=spec.name) for spec in specs
    ]
    model.output_names = ["output"]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    path.write_bytes(proto.SerializeToString())


def parity(model: keras.Model, path: Path, arrays: Arrays, batch: int = 4096) -> float:
    """Max abs difference between Keras and onnxruntime on the same rows."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed_names = [i.name for i in session.get_inputs()]
    n = len(next(iter(arrays.values())))
    worst = 0.0
    for start in range(0, n, batch):
        chunk = {name: values[start : start + batch] for name, values in arrays.items()}
        expected = np.asarray(model(chunk, training=False))
        got = session.run(None, {name: chunk[name] for name in feed_names})[0]
        if got.shape != expected.shape:
            raise ParityError(f"{path.name}: ONNX shape {got.shape} != Keras {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


def export_checked(
    model: keras.Model,
    specs: Sequence[InputSpec],
    path: Path,
    rows: Arrays,
    tolerance: float,
    opset: int = OPSET,
) -> dict[str, float]:
    """Export, then fail loudly unless parity holds on ``rows`` (held-out, >= 1000 of them)."""
    to_onnx(model, specs, path, opset)
    diff = parity(model, path, rows)
    n = len(next(iter(rows.values())))
    if not diff <= tolerance:
        raise ParityError(f"{path.name}: max abs diff {diff:.3g} > {tolerance:g} on {n} rows")
    return {"max_abs_diff": diff, "rows": n, "tolerance": tolerance}
