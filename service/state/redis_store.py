"""Redis state store: user state, catalog and indexing queue shared by several machines.

Keys live under one prefix (``RECSYS_REDIS_PREFIX``: several deployments can share a server).
An item is a hash (``row`` JSON, ``deleted``, ``seq``, ``indexed_seq``, ``indexed_version``,
``updated_at``, ``attempts``, ``error``); the change feed is a sorted set by sequence number;
pending items are a sorted set scored by lease expiry (0 = free); failed items a sorted set
scored by the time they failed. Changes, claims and acks run as Lua scripts, so
each is atomic on the server. Scripts build key names from the prefix, so a Redis *cluster*
needs all keys in one hash slot (use a prefix such as ``{recsys}:``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import orjson
import redis

from service.feedback.records import Feedback, Impression
from service.redact import redact
from service.state.port import (
    DEFAULT_EVENTS_PER_USER,
    DEFAULT_REDIS_PREFIX,
    DEFAULT_TIMEOUT_S,
    ClaimedItem,
    Event,
    ItemChange,
    ItemStatus,
    Retention,
    StoreError,
)

T = TypeVar("T")

CHANGE = """
local p, now, version = ARGV[1], ARGV[2], ARGV[3]
local n = (#ARGV - 3) / 2
local last = redis.call('INCRBY', p .. 'seq', n)
for i = 1, n do
  local id, row, seq = ARGV[2 + 2 * i], ARGV[3 + 2 * i], last - n + i
  local key = p .. 'item:' .. id
  redis.call('HSET', key, 'row', row, 'deleted', row == '' and 1 or 0, 'seq', seq,
             'updated_at', now, 'attempts', 0, 'error', '')
  redis.call('ZREM', p .. 'failed', id)
  redis.call('ZADD', p .. 'changes', seq, id)
  if version == '' then
    redis.call('ZADD', p .. 'pending', 0, id)
  else
    redis.call('HSET', key, 'indexed_seq', seq, 'indexed_version', version)
    redis.call('ZREM', p .. 'pending', id)
  end
end
return last
"""

CLAIM = """
local p, now, until_, limit = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', p .. 'pending', '-inf', '(' .. now, 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', p .. 'pending', until_, id)
  local h = redis.call('HMGET', p .. 'item:' .. id, 'seq', 'row')
  table.insert(out, id)
  table.insert(out, h[1])
  table.insert(out, h[2])
end
return out
"""

RENEW = """
local p, now, until_ = ARGV[1], tonumber(ARGV[2]), ARGV[3]
for i = 4, #ARGV, 2 do
  local id, seq = ARGV[i], ARGV[i + 1]
  local lease = tonumber(redis.call('ZSCORE', p .. 'pending', id) or '0')
  if lease >= now and redis.call('HGET', p .. 'item:' .. id, 'seq') == seq then
    redis.call('ZADD', p .. 'pending', until_, id)
  end
end
return 1
"""

ACK = """
local p, version = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do
  local id, seq = ARGV[i], ARGV[i + 1]
  local key = p .. 'item:' .. id
  redis.call('HSET', key, 'indexed_seq', seq, 'indexed_version', version, 'attempts', 0,
             'error', '')
  redis.call('ZREM', p .. 'failed', id)
  if redis.call('HGET', key, 'seq') == seq then
    redis.call('ZREM', p .. 'pending', id)
  else
    redis.call('ZADD', p .. 'pending', 0, id)
  end
end
return 1
"""

FAIL = """
local p, id, seq, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max, retry_at, now = tonumber(ARGV[5]), ARGV[6], ARGV[7]
local key = p .. 'item:' .. id
if redis.call('HGET', key, 'seq') ~= seq then
  return 0
end
local n = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'error', reason)
if n >= max then
  redis.call('ZREM', p .. 'pending', id)
  redis.call('ZADD', p .. 'failed', now, id)
  return 1
end
redis.call('ZADD', p .. 'pending', retry_at, id)
return 0
"""

RETRY = """
local p = ARGV[1]
local ids = {}
if #ARGV > 1 then
  for i = 2, #ARGV do table.insert(ids, ARGV[i]) end
else
  ids = redis.call('ZRANGE', p .. 'failed', 0, -1)
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', p .. 'failed', id) == 1 then
    redis.call('HSET', p .. 'item:' .. id, 'attempts', 0)
    redis.call('ZADD', p .. 'pending', 0, id)
    n = n + 1
  end
end
return n
"""
PAGE = 1000  # entries per read of the feedback log's iterators
SHOWN_PER_USER = 256  # impressions per user indexed for attribution (newest kept)
STATUS_FIELDS = ("deleted", "seq", "indexed_version", "updated_at", "error", "attempts")


def _row(text: str | None) -> dict[str, Any] | None:
    return orjson.loads(text) if text else None


def _min_id(now: float, keep: Retention) -> str:
    """The oldest stream id ``keep`` allows (stream ids are the milliseconds of the write)."""
    return f"{max(0, int((now - keep.max_age_s) * 1000))}-0"


def _status(
    item_id: str, fields: list[str | None], pending: float | None, failed: float | None
) -> ItemStatus | None:
    deleted, seq, version, updated, error, attempts = fields
    if seq is None:
        return None
    state = (
        "queued"
        if pending is not None
        else "failed"
        if failed is not None
        else "deleted"
        if deleted == "1"
        else "indexed"
    )
    return ItemStatus(
        item_id,
        state,
        int(seq),
        version,
        float(updated),
        error or None,
        int(attempts or 0),
        deleted == "1",
    )


class RedisStore:
    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_REDIS_PREFIX,
        events_per_user: int = DEFAULT_EVENTS_PER_USER,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.url, self.p, self.events_per_user = url, prefix, events_per_user
        self._r = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._change_script = self._r.register_script(CHANGE)
        self._claim_script = self._r.register_script(CLAIM)
        self._renew_script = self._r.register_script(RENEW)
        self._ack_script = self._r.register_script(ACK)
        self._fail_script = self._r.register_script(FAIL)
        self._retry_script = self._r.register_script(RETRY)
        self._call(self._r.ping)

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreError(f"redis store {redact(self.url)}: {redact(str(exc))}") from exc

    # users
    def put_profile(self, user_id: str, features: Mapping[str, Any]) -> None:
        self._call(self._r.set, f"{self.p}profile:{user_id}", orjson.dumps(dict(features)))

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        return _row(self._call(self._r.get, f"{self.p}profile:{user_id}"))

    def add_events(self, user_id: str, events: Sequence[Event]) -> None:
        key = f"{self.p}events:{user_id}"
        pipe = self._r.pipeline(transaction=True)
        pipe.rpush(key, *[orjson.dumps([e.item_id, e.type, e.ts, e.weight]) for e in events])
        pipe.ltrim(key, -self.events_per_user, -1)
        for e in events:
            pipe.zincrby(f"{self.p}popular", e.weight, e.item_id)
        self._call(pipe.execute)

    def recent_events(self, user_id: str, limit: int) -> list[Event]:
        rows = self._call(self._r.lrange, f"{self.p}events:{user_id}", -limit, -1)
        return [Event(*orjson.loads(r)) for r in rows]

    def popular_items(self, limit: int) -> list[tuple[str, float]]:
        ranked = self._call(self._r.zrevrange, f"{self.p}popular", 0, 2 * limit, withscores=True)
        pipe = self._r.pipeline(transaction=False)
        for item_id, _ in ranked:
            pipe.hget(f"{self.p}item:{item_id}", "deleted")
        deleted = self._call(pipe.execute)
        alive = [(i, float(s)) for (i, s), d in zip(ranked, deleted, strict=True) if d != "1"]
        return alive[:limit]

    # catalog + queue
    def put_items(
        self, rows: Sequence[tuple[str, Mapping[str, Any]]], indexed_version: str | None = None
    ) -> int:
        payload = [
            (item_id, orjson.dumps(dict(row), option=orjson.OPT_SERIALIZE_NUMPY).decode())
            for item_id, row in rows
        ]
        return self._change(payload, indexed_version or "")

    def delete_items(self, item_ids: Sequence[str]) -> int:
        return self._change([(item_id, "") for item_id in item_ids], "")

    def _change(self, rows: list[tuple[str, str]], version: str) -> int:
        if not rows:
            return self.last_seq()
        args = [self.p, time.time(), version, *[v for pair in rows for v in pair]]
        return int(self._call(self._change_script, args=args))

    def changes_since(self, seq: int, limit: int = 10_000) -> list[ItemChange]:
        ids = self._call(
            self._r.zrangebyscore,
            f"{self.p}changes",
            f"({seq}",
            "+inf",
            start=0,
            num=limit,
            withscores=True,
        )
        pipe = self._r.pipeline(transaction=False)
        for item_id, _ in ids:
            pipe.hget(f"{self.p}item:{item_id}", "row")
        rows = self._call(pipe.execute)
        return [
            ItemChange(int(s), item_id, _row(row))
            for (item_id, s), row in zip(ids, rows, strict=True)
        ]

    def last_seq(self) -> int:
        return int(self._call(self._r.get, f"{self.p}seq") or 0)

    def item_status(self, item_id: str) -> ItemStatus | None:
        return self._statuses([item_id])[0]

    def _statuses(self, item_ids: Sequence[str]) -> list[ItemStatus | None]:
        pipe = self._r.pipeline(transaction=True)
        for item_id in item_ids:
            pipe.hmget(f"{self.p}item:{item_id}", *STATUS_FIELDS)
            pipe.zscore(f"{self.p}pending", item_id)
            pipe.zscore(f"{self.p}failed", item_id)
        replies = self._call(pipe.execute)
        return [_status(item_id, *replies[3 * k : 3 * k + 3]) for k, item_id in enumerate(item_ids)]

    def claim_pending(self, limit: int, lease_s: float) -> list[ClaimedItem]:
        now = time.time()
        flat = self._call(self._claim_script, args=[self.p, now, now + lease_s, limit])
        claimed = [
            ClaimedItem(int(flat[i + 1]), flat[i], _row(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]
        return sorted(claimed, key=lambda c: c.seq)

    def renew(self, claimed: Sequence[ClaimedItem], lease_s: float) -> None:
        if claimed:
            now = time.time()
            ids = [v for c in claimed for v in (c.item_id, str(c.seq))]
            self._call(self._renew_script, args=[self.p, now, now + lease_s, *ids])

    def ack(self, claimed: Sequence[ClaimedItem], version: str) -> None:
        if claimed:
            args = [self.p, version, *[v for c in claimed for v in (c.item_id, str(c.seq))]]
            self._call(self._ack_script, args=args)

    def fail(self, item: ClaimedItem, reason: str, max_attempts: int, retry_in_s: float) -> bool:
        now = time.time()
        args = [self.p, item.item_id, str(item.seq), reason, max_attempts, now + retry_in_s, now]
        return bool(self._call(self._fail_script, args=args))

    def failed_items(self, limit: int = 100) -> list[ItemStatus]:
        ids = self._call(self._r.zrange, f"{self.p}failed", 0, limit - 1)
        return [s for s in self._statuses(ids) if s is not None]

    def retry_failed(self, item_ids: Sequence[str] | None = None) -> int:
        if item_ids is not None and not item_ids:
            return 0
        return int(self._call(self._retry_script, args=[self.p, *(item_ids or [])]))

    def requeue_not_indexed_in(self, version: str) -> int:
        """Scans the catalog in chunks (not atomic: a concurrent change is queued anyway)."""
        ids = self._call(self._r.zrange, f"{self.p}changes", 0, -1)
        requeued = 0
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            pipe = self._r.pipeline(transaction=False)
            for item_id in chunk:
                pipe.hget(f"{self.p}item:{item_id}", "indexed_version")
            versions = self._call(pipe.execute)
            stale = {i: 0 for i, v in zip(chunk, versions, strict=True) if v != version}
            if stale:
                requeued += self._call(self._r.zadd, f"{self.p}pending", stale, nx=True)
                self._forget_failures(list(stale))
        return requeued

    def _forget_failures(self, item_ids: list[str]) -> None:
        """Items queued again for a new model start their attempts over."""
        pipe = self._r.pipeline(transaction=False)
        pipe.zrem(f"{self.p}failed", *item_ids)
        for item_id in item_ids:
            pipe.hset(f"{self.p}item:{item_id}", "attempts", 0)
        self._call(pipe.execute)

    def pending_count(self) -> int:
        return int(self._call(self._r.zcard, f"{self.p}pending"))

    # feedback log: capped streams (by count and age) plus, for attribution, the stream id of
    # each request and each user's latest stream ids, expiring with the retention age
    def add_impressions(self, impressions: Sequence[Impression], keep: Retention) -> None:
        if not impressions:
            return
        ids = self._append("impressions", [i.to_json() for i in impressions], keep)
        ttl = max(1, int(keep.max_age_s))
        pipe = self._r.pipeline(transaction=False)
        for imp, entry in zip(impressions, ids, strict=True):
            pipe.set(f"{self.p}impression:{imp.request_id}", entry, ex=ttl)
            shown = f"{self.p}shown:{imp.user_id}"
            pipe.lpush(shown, entry)
            pipe.ltrim(shown, 0, SHOWN_PER_USER - 1)
            pipe.expire(shown, ttl)
        self._call(pipe.execute)

    def _append(self, stream: str, bodies: list[bytes], keep: Retention) -> list[str]:
        key, now = f"{self.p}{stream}", time.time()
        pipe = self._r.pipeline(transaction=True)
        for body in bodies:
            pipe.xadd(key, {"j": body}, maxlen=keep.max_rows, approximate=False)
        pipe.xtrim(key, minid=_min_id(now, keep), approximate=False)
        return self._call(pipe.execute)[: len(bodies)]

    def _entries(self, stream: str, ids: Sequence[str]) -> list[bytes]:
        pipe = self._r.pipeline(transaction=False)
        for entry in ids:
            pipe.xrange(f"{self.p}{stream}", entry, entry)
        return [found[0][1]["j"] for found in self._call(pipe.execute) if found]

    def impression(self, request_id: str) -> Impression | None:
        entry = self._call(self._r.get, f"{self.p}impression:{request_id}")
        found = self._entries("impressions", [entry]) if entry else []
        return Impression.from_json(found[0]) if found else None

    def recent_impressions(self, user_id: str, since_ts: float, limit: int) -> list[Impression]:
        ids = self._call(self._r.lrange, f"{self.p}shown:{user_id}", 0, limit - 1)
        found = [Impression.from_json(b) for b in self._entries("impressions", ids)]
        return sorted((i for i in found if i.ts >= since_ts), key=lambda i: -i.ts)

    def impressions_since(self, since_ts: float) -> Iterator[Impression]:
        for body in self._pages("impressions", since_ts):
            imp = Impression.from_json(body)
            if imp.ts >= since_ts:
                yield imp

    def add_feedback(self, records: Sequence[Feedback], keep: Retention) -> list[Feedback]:
        if not records:
            return []
        ttl = max(1, int(keep.max_age_s))
        pipe = self._r.pipeline(transaction=False)
        for f in records:
            if f.positive:
                pipe.sadd(f"{self.p}clicked:{f.request_id}", f.item_id)
                pipe.expire(f"{self.p}clicked:{f.request_id}", ttl)
        added = iter(self._call(pipe.execute)[::2])
        out = [replace(f, first=bool(next(added))) if f.positive else f for f in records]
        self._append("feedback", [f.to_json() for f in out], keep)
        return out

    def feedback_since(self, since_ts: float) -> Iterator[Feedback]:
        return (Feedback.from_json(body) for body in self._pages("feedback", since_ts))

    def _pages(self, stream: str, since_ts: float) -> Iterator[str]:
        start = f"{max(0, int(since_ts * 1000))}-0"
        while page := self._call(self._r.xrange, f"{self.p}{stream}", start, "+", count=PAGE):
            yield from (fields["j"] for _, fields in page)
            start = f"({page[-1][0]}"

    def put_meta(self, key: str, value: str) -> None:
        self._call(self._r.set, f"{self.p}meta:{key}", value)

    def get_meta(self, key: str) -> str | None:
        return self._call(self._r.get, f"{self.p}meta:{key}")

    def close(self) -> None:
        self._r.close()
