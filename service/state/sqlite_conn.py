"""One SQLite connection shared by a store's threads: writes in `BEGIN IMMEDIATE`
transactions (so concurrent processes queue on the lock for up to ``timeout_s``), reads under
the same thread lock, every sqlite3 error raised as `StoreError` naming the file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.state.port import StoreError


class SqliteConnection:
    def __init__(
        self,
        path: Path,
        timeout_s: float,
        schema: str,
        pragmas: Sequence[str] = (),
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Open ``path`` and create ``schema`` (``;``-separated statements) in one
        transaction, then ``migrate`` in the same one."""
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            for pragma in pragmas:
                self._db.execute(pragma)
            with self.write() as db:
                for statement in schema.split(";"):
                    db.execute(statement)
                if migrate is not None:
                    migrate(db)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {path}: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}") from exc

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
