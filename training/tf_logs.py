"""TensorFlow's start-up lines, filtered: the ones that look like failures and are not.

On a machine without a GPU, importing TensorFlow 2.21 and creating its first device print
``failed call to cuInit: ... UNKNOWN ERROR (303)`` (an ERROR line), ``Could not find cuda
drivers``, the oneDNN and CPU-instruction notices — from C++ before absl's logging starts, so
``TF_CPP_MIN_LOG_LEVEL`` does not stop all of them. `import_tensorflow` runs the import and
the device set-up with the process's stderr (fd 2) captured, drops those known lines, writes
any other line back, and says in one line which device trains.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

KNOWN_NOISE = re.compile(
    r"cuInit|cuda_driver|cuda_platform|cudart_stub|Could not find cuda drivers|"
    r"oneDNN custom operations|before absl::InitializeLog|"
    r"rebuild TensorFlow with the appropriate compiler flags|"
    r"This TensorFlow binary is optimized|TF-TRT Warning|Unable to register cu(DNN|FFT|BLAS)"
)


@contextmanager
def filtered_stderr(noise: re.Pattern[str] = KNOWN_NOISE) -> Iterator[None]:
    """Capture fd 2 (native libraries write there directly) for the block, then write back
    every captured line that ``noise`` does not match — also when the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not noise.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def import_tensorflow() -> str:
    """Import TensorFlow and set up its devices quietly; returns its version."""
    with filtered_stderr():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    where = f"{len(gpus)} GPU(s)" if gpus else "the CPU (no GPU found; the CUDA notices are muted)"
    log.info("TensorFlow %s trains on %s", tf.__version__, where)
    return tf.__version__
