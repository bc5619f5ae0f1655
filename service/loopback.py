"""A free TCP port on 127.0.0.1, for the servers our own tools start on loopback (the
benchmark, the simulation, the tests)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
