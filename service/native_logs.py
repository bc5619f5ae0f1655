"""Log levels of the native libraries under the command, in one place, set before they start.

- gRPC (pymilvus's channel to Milvus): ``GRPC_VERBOSITY=NONE``. pymilvus pings an idle channel
  every 10 s; Milvus Lite's server tolerates fewer pings, and after about three idle minutes
  answers ``GOAWAY too_many_pings``, which gRPC logs as an ERROR line although it only
  reconnects and pings less often (no call fails). Failures that matter reach us as pymilvus
  exceptions, which the index adapter turns into our errors and logs.
- TensorFlow's C++ runtime: ``TF_CPP_MIN_LOG_LEVEL=2`` (warnings and info off, errors on);
  `training.tf_logs` mutes the start-up lines that ignore it.

Each is a default: a variable already set in the environment wins (``GRPC_VERBOSITY=ERROR
recsys serve ...`` shows gRPC's errors again). `service/__init__.py` applies them, since gRPC
reads its variable when it is first imported (setting it later has no effect); child
processes (uvicorn workers, the Lite server) inherit them.
"""

from __future__ import annotations

import os

NATIVE_LOG_DEFAULTS = {"GRPC_VERBOSITY": "NONE", "TF_CPP_MIN_LOG_LEVEL": "2"}


def quiet_native_logs() -> None:
    for name, value in NATIVE_LOG_DEFAULTS.items():
        os.environ.setdefault(name, value)
