"""An ONNX model behind a small interface: named NumPy inputs in, one array out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

# What onnxruntime raises when a session fails to run (each derives from Exception directly).
ORT_RUN_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.RuntimeException,
    ort_state.EPFail,
    ort_state.EngineError,
)


class ModelRunError(RuntimeError):
    """onnxruntime failed to run the model on a batch; names the file."""


class OnnxModel:
    """One onnxruntime session on CPU.

    ``intra_op_threads=1`` by default: with 2 threads a single call is faster on an idle
    machine, but throughput under concurrent requests was lower (docs/architecture.md).
    """

    def __init__(self, path: Path, intra_op_threads: int = 1, graph: bytes | None = None) -> None:
        """``graph``: a serialized model to run instead of the file's (a rewrite of it)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(
            graph or str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run on one batch; ``inputs`` may hold more arrays than the model reads."""
        feed = {name: inputs[name] for name in self.input_names}
        try:
            return self.session.run([self.output_name], feed)[0]
        except ORT_RUN_ERRORS as exc:
            raise ModelRunError(f"{self.path.name}: {exc}") from exc
