"""The SQLite store's feedback log: impressions and attributed events, on a connection of its
own (WAL: a background batch write never blocks the request path's reads, nor waits on their
lock). Retention by the time a row was logged, then by count: ids only grow and rows leave
from the oldest end, so keeping the ids above ``max(id) - max_rows`` keeps at most
``max_rows`` (no scan of the table, whatever its size)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from service.feedback.records import Feedback, Impression
from service.state.port import Retention
from service.state.sqlite_conn import SqliteConnection

T = TypeVar("T")
PAGE = 1000  # rows per read of the iterators
SCHEMA = """
CREATE TABLE IF NOT EXISTS impressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, user_id TEXT NOT NULL,
    ts REAL NOT NULL, logged_at REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS impressions_by_request ON impressions (request_id, id);
CREATE INDEX IF NOT EXISTS impressions_by_user ON impressions (user_id, ts);
CREATE INDEX IF NOT EXISTS impressions_by_ts ON impressions (ts);
CREATE INDEX IF NOT EXISTS impressions_by_logged ON impressions (logged_at);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, item_id TEXT NOT NULL,
    positive INTEGER NOT NULL, ts REAL NOT NULL, logged_at REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_by_pair ON feedback (request_id, item_id, positive);
CREATE INDEX IF NOT EXISTS feedback_by_logged ON feedback (logged_at);
"""


def _trim(db: sqlite3.Connection, table: str, keep: Retention, now: float) -> None:
    db.execute(f"DELETE FROM {table} WHERE logged_at < ?", (now - keep.max_age_s,))
    db.execute(
        f"DELETE FROM {table} WHERE id <= (SELECT max(id) FROM {table}) - ?", (keep.max_rows,)
    )


class SqliteLog:
    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path = path
        self._conn = SqliteConnection(path, timeout_s, SCHEMA)
        self._write, self._read = self._conn.write, self._conn.read

    def add_impressions(self, impressions: Sequence[Impression], keep: Retention) -> None:
        now = time.time()
        rows = [(i.request_id, i.user_id, i.ts, now, i.to_json()) for i in impressions]
        with self._write() as db:
            db.executemany(
                "INSERT INTO impressions (request_id, user_id, ts, logged_at, body) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            _trim(db, "impressions", keep, now)

    def impression(self, request_id: str) -> Impression | None:
        rows = self._read(
            "SELECT body FROM impressions WHERE request_id = ? ORDER BY id DESC LIMIT 1",
            (request_id,),
        )
        return Impression.from_json(rows[0][0]) if rows else None

    def recent_impressions(self, user_id: str, since_ts: float, limit: int) -> list[Impression]:
        rows = self._read(
            "SELECT body FROM impressions WHERE user_id = ? AND ts >= ? "
            "ORDER BY ts DESC, id DESC LIMIT ?",
            (user_id, since_ts, limit),
        )
        return [Impression.from_json(r[0]) for r in rows]

    def impressions_since(self, since_ts: float) -> Iterator[Impression]:
        sql = "SELECT id, body FROM impressions WHERE ts >= ? AND id > ? ORDER BY id LIMIT ?"
        return self._pages(sql, since_ts, Impression.from_json)

    def add_feedback(self, records: Sequence[Feedback], keep: Retention) -> list[Feedback]:
        now, out = time.time(), []
        with self._write() as db:
            for f in records:
                seen = db.execute(
                    "SELECT 1 FROM feedback WHERE request_id = ? AND item_id = ? AND positive = 1",
                    (f.request_id, f.item_id),
                ).fetchone()
                f = replace(f, first=f.positive and seen is None)
                db.execute(
                    "INSERT INTO feedback (request_id, item_id, positive, ts, logged_at, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (f.request_id, f.item_id, int(f.positive), f.ts, now, f.to_json()),
                )
                out.append(f)
            _trim(db, "feedback", keep, now)
        return out

    def feedback_since(self, since_ts: float) -> Iterator[Feedback]:
        sql = "SELECT id, body FROM feedback WHERE logged_at >= ? AND id > ? ORDER BY id LIMIT ?"
        return self._pages(sql, since_ts, Feedback.from_json)

    def _pages(self, sql: str, since_ts: float, decode: Callable[[bytes], T]) -> Iterator[T]:
        last = 0
        while rows := self._read(sql, (since_ts, last, PAGE)):
            yield from (decode(body) for _, body in rows)
            last = rows[-1][0]

    def close(self) -> None:
        self._conn.close()
