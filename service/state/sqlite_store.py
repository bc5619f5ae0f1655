"""SQLite state store: the embedded default, shared by several processes on one machine.

WAL journal (readers never block the writer), a busy timeout of ``timeout_s`` (a writer waits
that long for another process's write lock, then fails with `StoreError`) and ``BEGIN
IMMEDIATE`` for every write, so sequence numbers are allocated under the database lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from service.feedback.records import Feedback, Impression
from service.state.port import (
    DEFAULT_EVENTS_PER_USER,
    DEFAULT_TIMEOUT_S,
    ClaimedItem,
    Event,
    ItemChange,
    ItemStatus,
    Retention,
)
from service.state.sqlite_conn import SqliteConnection
from service.state.sqlite_log import SqliteLog

SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY, features TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
    type TEXT NOT NULL, ts REAL NOT NULL, weight REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, id);
CREATE TABLE IF NOT EXISTS popularity (item_id TEXT PRIMARY KEY, score REAL NOT NULL);
CREATE INDEX IF NOT EXISTS popularity_by_score ON popularity (score DESC, item_id);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, row TEXT, seq INTEGER NOT NULL, pending INTEGER NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0, indexed_seq INTEGER NOT NULL DEFAULT 0,
    indexed_version TEXT, updated_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, failed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS items_by_seq ON items (seq);
CREATE INDEX IF NOT EXISTS items_pending ON items (pending, lease_until);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added after the first release: a store written before them gains them at open.
ITEM_COLUMNS_ADDED = {
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "error": "TEXT",
    "failed": "INTEGER NOT NULL DEFAULT 0",
}
STATUS_COLUMNS = "row IS NULL, pending, failed, seq, indexed_version, updated_at, error, attempts"


def _row_json(row: Mapping[str, Any] | None) -> str | None:
    return None if row is None else orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _row(text: str | None) -> dict[str, Any] | None:
    return None if text is None else orjson.loads(text)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    have = {row[1] for row in db.execute("PRAGMA table_info(items)")}
    for name, kind in ITEM_COLUMNS_ADDED.items():
        if name not in have:
            db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")


def _status(item_id: str, row: tuple) -> ItemStatus:
    deleted, pending, failed, seq, version, updated, error, attempts = row
    state = "queued" if pending else "failed" if failed else "deleted" if deleted else "indexed"
    return ItemStatus(item_id, state, seq, version, updated, error, attempts, bool(deleted))


class SqliteStore:
    def __init__(
        self,
        path: str | Path,
        events_per_user: int = DEFAULT_EVENTS_PER_USER,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.events_per_user = events_per_user
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = SqliteConnection(
            self.path,
            timeout_s,
            SCHEMA,
            pragmas=("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"),
            migrate=_add_missing_columns,
        )
        self._write, self._read = self._conn.write, self._conn.read
        self._log = SqliteLog(self.path, timeout_s)

    def _next_seqs(self, db: sqlite3.Connection, n: int) -> int:
        """Reserve ``n`` sequence numbers; returns the first."""
        row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        last = int(row[0]) if row else 0
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('seq', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(last + n),),
        )
        return last + 1

    # users
    def put_profile(self, user_id: str, features: Mapping[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO profiles VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "features = excluded.features, updated_at = excluded.updated_at",
                (user_id, _row_json(features), time.time()),
            )

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT features FROM profiles WHERE user_id = ?", (user_id,))
        return _row(rows[0][0]) if rows else None

    def add_events(self, user_id: str, events: Sequence[Event]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT INTO events (user_id, item_id, type, ts, weight) VALUES (?, ?, ?, ?, ?)",
                [(user_id, e.item_id, e.type, e.ts, e.weight) for e in events],
            )
            db.execute(
                "DELETE FROM events WHERE user_id = ? AND id <= (SELECT id FROM events "
                "WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (user_id, user_id, self.events_per_user),
            )
            db.executemany(
                "INSERT INTO popularity VALUES (?, ?) "
                "ON CONFLICT (item_id) DO UPDATE SET score = score + excluded.score",
                [(e.item_id, e.weight) for e in events],
            )

    def recent_events(self, user_id: str, limit: int) -> list[Event]:
        rows = self._read(
            "SELECT item_id, type, ts, weight FROM events WHERE user_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (user_id, limit),
        )
        return [Event(*r) for r in reversed(rows)]

    def popular_items(self, limit: int) -> list[tuple[str, float]]:
        rows = self._read(
            "SELECT p.item_id, p.score FROM popularity p LEFT JOIN items i USING (item_id) "
            "WHERE i.item_id IS NULL OR i.row IS NOT NULL ORDER BY p.score DESC, p.item_id "
            "LIMIT ?",
            (limit,),
        )
        return [(r[0], float(r[1])) for r in rows]

    # catalog + queue
    def put_items(
        self, rows: Sequence[tuple[str, Mapping[str, Any]]], indexed_version: str | None = None
    ) -> int:
        return self._change([(item_id, _row_json(row)) for item_id, row in rows], indexed_version)

    def delete_items(self, item_ids: Sequence[str]) -> int:
        return self._change([(item_id, None) for item_id in item_ids], None)

    def _change(self, rows: list[tuple[str, str | None]], indexed_version: str | None) -> int:
        if not rows:
            return self.last_seq()
        now = time.time()
        pending = 0 if indexed_version else 1
        with self._write() as db:
            first = self._next_seqs(db, len(rows))
            db.executemany(
                "INSERT INTO items (item_id, row, seq, pending, lease_until, indexed_seq, "
                "indexed_version, updated_at) VALUES (?1, ?2, ?3, ?4, 0, "
                "CASE WHEN ?4 = 0 THEN ?3 ELSE 0 END, ?5, ?6) "
                "ON CONFLICT (item_id) DO UPDATE SET row = ?2, seq = ?3, pending = ?4, "
                "lease_until = 0, updated_at = ?6, attempts = 0, error = NULL, failed = 0, "
                "indexed_seq = CASE WHEN ?4 = 0 THEN ?3 ELSE indexed_seq END, "
                "indexed_version = CASE WHEN ?4 = 0 THEN ?5 ELSE indexed_version END",
                [
                    (item_id, row, first + i, pending, indexed_version, now)
                    for i, (item_id, row) in enumerate(rows)
                ],
            )
        return first + len(rows) - 1

    def changes_since(self, seq: int, limit: int = 10_000) -> list[ItemChange]:
        rows = self._read(
            "SELECT seq, item_id, row FROM items WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [ItemChange(s, item_id, _row(row)) for s, item_id, row in rows]

    def last_seq(self) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = 'seq'")
        return int(rows[0][0]) if rows else 0

    def item_status(self, item_id: str) -> ItemStatus | None:
        rows = self._read(f"SELECT {STATUS_COLUMNS} FROM items WHERE item_id = ?", (item_id,))
        return _status(item_id, rows[0]) if rows else None

    def claim_pending(self, limit: int, lease_s: float) -> list[ClaimedItem]:
        now = time.time()
        with self._write() as db:
            rows = db.execute(
                "UPDATE items SET lease_until = ? WHERE item_id IN (SELECT item_id FROM items "
                "WHERE pending = 1 AND lease_until < ? ORDER BY seq LIMIT ?) "
                "RETURNING seq, item_id, row",
                (now + lease_s, now, limit),
            ).fetchall()
        return [ClaimedItem(s, item_id, _row(row)) for s, item_id, row in sorted(rows)]

    def renew(self, claimed: Sequence[ClaimedItem], lease_s: float) -> None:
        now = time.time()
        with self._write() as db:
            db.executemany(
                "UPDATE items SET lease_until = ?1 WHERE item_id = ?2 AND seq = ?3 "
                "AND pending = 1 AND lease_until >= ?4",
                [(now + lease_s, c.item_id, c.seq, now) for c in claimed],
            )

    def ack(self, claimed: Sequence[ClaimedItem], version: str) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE items SET pending = (seq != ?1), lease_until = 0, indexed_seq = ?1, "
                "indexed_version = ?2, attempts = 0, error = NULL, failed = 0 WHERE item_id = ?3",
                [(c.seq, version, c.item_id) for c in claimed],
            )

    def fail(self, item: ClaimedItem, reason: str, max_attempts: int, retry_in_s: float) -> bool:
        with self._write() as db:
            rows = db.execute(
                "UPDATE items SET attempts = attempts + 1, error = ?1, "
                "failed = (attempts + 1 >= ?2), pending = (attempts + 1 < ?2), "
                "lease_until = CASE WHEN attempts + 1 >= ?2 THEN 0 ELSE ?3 END "
                "WHERE item_id = ?4 AND seq = ?5 RETURNING failed",
                (reason, max_attempts, time.time() + retry_in_s, item.item_id, item.seq),
            ).fetchall()
        return bool(rows and rows[0][0])

    def failed_items(self, limit: int = 100) -> list[ItemStatus]:
        rows = self._read(
            f"SELECT item_id, {STATUS_COLUMNS} FROM items WHERE failed = 1 "
            "ORDER BY updated_at, seq LIMIT ?",
            (limit,),
        )
        return [_status(r[0], r[1:]) for r in rows]

    def retry_failed(self, item_ids: Sequence[str] | None = None) -> int:
        where, args = "failed = 1", ()
        if item_ids is not None:
            where += f" AND item_id IN ({', '.join('?' * len(item_ids))})"
            args = tuple(item_ids)
        with self._write() as db:
            sql = "UPDATE items SET failed = 0, pending = 1, attempts = 0, lease_until = 0 WHERE "
            return db.execute(sql + where, args).rowcount

    def requeue_not_indexed_in(self, version: str) -> int:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE items SET pending = 1, lease_until = 0, failed = 0, attempts = 0 "
                "WHERE pending = 0 AND indexed_version IS NOT ?",
                (version,),
            )
            return cursor.rowcount

    def pending_count(self) -> int:
        return int(self._read("SELECT count(*) FROM items WHERE pending = 1")[0][0])

    # feedback log: its own connection, so a batch written in the background never holds
    # the lock the request path's reads wait on
    def add_impressions(self, impressions: Sequence[Impression], keep: Retention) -> None:
        self._log.add_impressions(impressions, keep)

    def impression(self, request_id: str) -> Impression | None:
        return self._log.impression(request_id)

    def recent_impressions(self, user_id: str, since_ts: float, limit: int) -> list[Impression]:
        return self._log.recent_impressions(user_id, since_ts, limit)

    def impressions_since(self, since_ts: float) -> Iterator[Impression]:
        return self._log.impressions_since(since_ts)

    def add_feedback(self, records: Sequence[Feedback], keep: Retention) -> list[Feedback]:
        return self._log.add_feedback(records, keep)

    def feedback_since(self, since_ts: float) -> Iterator[Feedback]:
        return self._log.feedback_since(since_ts)

    def put_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO meta VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                ("meta:" + key, value),
            )

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", ("meta:" + key,))
        return rows[0][0] if rows else None

    def close(self) -> None:
        self._log.close()
        self._conn.close()
