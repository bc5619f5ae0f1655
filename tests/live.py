"""A real uvicorn on loopback in a thread of the test process, serving any ASGI app (the app
on the fakes, in the unit tier): real sockets, keep-alive and HTTP parsing, no subprocess."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from service.loopback import free_port


@contextmanager
def live(app: Any, **config: Any) -> Iterator[str]:
    """``with live(app) as url``: uvicorn serving ``app`` (lifespan included) until the block
    ends; ``config`` goes to `uvicorn.Config`."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, port=port, log_config=None, access_log=False, **config)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
