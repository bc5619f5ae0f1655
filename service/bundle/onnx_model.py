"""An ONNX model behind a small interface: named NumPy inputs in, one array out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort


class OnnxModel:
    """One onnxruntime session on CPU.

    ``intra_op_threads=1`` by default: with 2 threads a single call is faster on an idle
    machine, but throughput under concurrent requests was lower (ARCHITECTURE.md).
    """

    def __init__(self, path: Path, intra_op_threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run on one batch; ``inputs`` may hold more arrays than the model reads."""
        feed = {name: inputs[name] for name in self.input_names}
        return self.session.run([self.output_name], feed)[0]
