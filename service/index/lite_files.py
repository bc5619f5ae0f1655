"""Milvus Lite `.db` files: the name rule, and which files this process holds and how.

Across processes a lock file excludes a second user. Within one process that lock (POSIX
`lockf`) always succeeds again, so this registry keeps a process from opening a file
embedded while also serving it (two Lite engines writing one file).
"""

from __future__ import annotations

import fcntl
import re
import threading
from collections import Counter
from pathlib import Path

from service.index.port import IndexConfigError

LITE_FILE_NAME = re.compile(r"[a-zA-Z0-9.\-_]{1,36}")
SERVER_URI_PREFIXES = ("http://", "https://", "tcp://", "unix:")

_embedded: Counter[str] = Counter()
_served: set[str] = set()
_lock = threading.Lock()


def is_server_uri(uri: str) -> bool:
    """A Milvus server (or Lite server) address, as opposed to a Lite file."""
    return uri.startswith(SERVER_URI_PREFIXES)


def lite_file_path(uri: str) -> Path:
    """The Milvus Lite file a URI names; raises `IndexConfigError` on names Lite refuses."""
    path = Path(uri.removeprefix("file://")).expanduser().absolute()
    if not path.name.endswith(".db"):
        raise IndexConfigError(
            f"{uri!r} is neither a server URI ({', '.join(SERVER_URI_PREFIXES)}) nor a Milvus "
            "Lite file ending in .db"
        )
    if not LITE_FILE_NAME.fullmatch(path.name):
        raise IndexConfigError(
            f"Milvus Lite file name {path.name!r} must match {LITE_FILE_NAME.pattern}: at most 36 "
            "letters, digits, '.', '-' or '_' (a milvus-lite rule; the directory may be anything)"
        )
    return path


def lock_path(path: Path) -> Path:
    """The lock file milvus-lite 2.5.1 uses for `path`, embedded or served."""
    return path.parent / f".{path.name}.lock"


def held_elsewhere(path: Path) -> bool:
    """Whether another process holds the Lite lock of `path` (checked without keeping it).

    Checked before pymilvus opens the file: when its open fails, milvus-lite unlinks the lock
    file of the process that holds it, which lets a third process in.
    """
    if not lock_path(path).exists():
        return False
    with open(lock_path(path), "a") as probe:
        try:
            fcntl.lockf(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(probe, fcntl.LOCK_UN)
    return False


def open_embedded(path: Path) -> bool:
    """Count one embedded user; True for the first. Refuses a file this process serves."""
    with _lock:
        if str(path) in _served:
            raise IndexConfigError(
                f"this process serves {path} through a Lite server; connect to its http URI"
            )
        _embedded[str(path)] += 1
        return _embedded[str(path)] == 1


def close_embedded(path: Path) -> bool:
    """Forget one embedded user; True when it was the last one."""
    with _lock:
        _embedded[str(path)] -= 1
        if _embedded[str(path)] > 0:
            return False
        del _embedded[str(path)]
        return True


def start_serving(path: Path) -> None:
    with _lock:
        if _embedded[str(path)] > 0 or str(path) in _served:
            raise IndexConfigError(f"this process already holds {path} open")
        _served.add(str(path))


def stop_serving(path: Path) -> None:
    with _lock:
        _served.discard(str(path))
