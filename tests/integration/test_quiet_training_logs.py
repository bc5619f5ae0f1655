"""Training starts without lines that look like failures: TensorFlow's CUDA notices on a
machine without a GPU are muted, and one line says where training runs."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import need_tensorflow

START = (
    "import logging; logging.basicConfig(level=logging.INFO)\n"
    "from training.cli import need_training; need_training()\n"
    "import sys; print('python stderr still works', file=sys.stderr)\n"
)


def test_importing_tensorflow_for_training_prints_no_cuda_noise():
    need_tensorflow()
    run = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for noise in ("cuInit", "cuda drivers", "oneDNN", "absl::InitializeLog"):
        assert noise not in run.stderr, run.stderr
    assert "TensorFlow" in run.stderr and "trains on" in run.stderr
    assert "python stderr still works" in run.stderr
