"""Load on a server over loopback: closed loop with `wrk` (N connections, each sends its next
request when the last one is answered: the maximum throughput), open loop at a fixed rate
(latency counted from each request's scheduled time, so queueing is not hidden), and the CPU
a process and its children used meanwhile."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LATE_S = 10.0  # an open-loop request unanswered this long after the last was due is an error
API_KEY = "bench-key"  # recsys runs with auth on; the prototype ignores the header
WRK_SCRIPT = """
local users = {USERS}
local n = 0
request = function()
  n = n + 1
  local body = '{"user_id":"u' .. (n % users) .. '","k":{K},"candidates":{N}}'
  local headers = {["content-type"] = "application/json", ["x-api-key"] = "{KEY}"}
  return wrk.format("POST", "/v1/recommendations", headers, body)
end
done = function(summary, latency, requests)
  local out = string.format('{"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout)
  out = out .. string.format('"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}',
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max)
  io.stderr:write("WRK_JSON " .. out .. "\\n")
end
"""


@dataclass(frozen=True)
class LoadResult:
    mode: str  # "closed" (wrk, N connections) or "open" (fixed rate)
    level: float  # connections, or offered requests/s
    requests: int
    rate: float  # answered requests/s
    p50_ms: float
    p99_ms: float
    errors: int  # transport errors and non-2xx answers
    cpu_ms_per_request: dict[str, float]

    def as_dict(self) -> dict:
        return asdict(self)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: `apt-get install wrk` (Debian package)")
    return path


def closed_loop(
    url: str, connections: int, seconds: float, users: int, k: int, n: int, cpu: CpuMeter
) -> LoadResult:
    """`wrk` with ``connections`` connections on one thread for ``seconds``."""
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"recsys-bench-{os.getpid()}.lua"
    lua = WRK_SCRIPT.replace("{USERS}", str(users)).replace("{K}", str(k)).replace("{N}", str(n))
    lua = lua.replace("{KEY}", API_KEY)
    script.write_text(lua)
    command = [
        require_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    command += ["-s", str(script), url]
    cpu.start()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    used = cpu.stop()
    script.unlink(missing_ok=True)
    line = next(x for x in done.stderr.splitlines() if x.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    answered = data["requests"]
    return LoadResult(
        "closed",
        connections,
        answered,
        answered / (data["duration_us"] / 1e6),
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["errors"] + data["non2xx"],
        {name: ms / max(answered, 1) for name, ms in used.items()},
    )


def open_loop(
    host: str, port: int, rate: float, seconds: float, users: int, k: int, n: int, cpu: CpuMeter
) -> LoadResult:
    """``rate`` requests/s for ``seconds``, each on a free keep-alive connection (a new one
    when all are busy); latency from the time it was due."""
    cpu.start()
    started = time.perf_counter()
    latencies, errors = asyncio.run(_open_loop(host, port, rate, seconds, users, k, n))
    elapsed = time.perf_counter() - started
    used = cpu.stop()
    answered = len(latencies)
    values = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    return LoadResult(
        "open",
        rate,
        answered,
        answered / elapsed,
        float(np.percentile(values, 50)),
        float(np.percentile(values, 99)),
        errors,
        {name: ms / max(answered, 1) for name, ms in used.items()},
    )


async def _open_loop(
    host: str, port: int, rate: float, seconds: float, users: int, k: int, n: int
) -> tuple[list[float], int]:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    errors = 0

    async def one(due: float, user: int) -> None:
        nonlocal errors
        body = json.dumps({"user_id": f"u{user}", "k": k, "candidates": n}).encode()
        head = (
            f"POST /v1/recommendations HTTP/1.1\r\nhost: {host}\r\n"
            f"content-type: application/json\r\nx-api-key: {API_KEY}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            reader, writer = idle.pop() if idle else await asyncio.open_connection(host, port)
            writer.write(head + body)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - due)
            idle.append((reader, writer))
            errors += status >= 300
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1

    start = time.perf_counter() + 0.05
    total = int(rate * seconds)
    tasks = []
    for i in range(total):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(due, i % users)))
    _, late = await asyncio.wait(tasks, timeout=LATE_S)
    for task in late:
        task.cancel()
    for _, writer in idle:
        writer.close()
    return latencies, errors + len(late)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(x.split(":", 1)[1]) for x in lines[1:] if x.lower().startswith("content-length:")
    )
    await reader.readexactly(length)
    return status


class CpuMeter:
    """CPU milliseconds the API (``api``) and Milvus Lite (``milvus_lite``) used between start
    and stop, from /proc (Linux). Embedded, Milvus Lite is a child of the one API process;
    with several workers the API is the server and its worker children, and Milvus Lite is
    the shared server process ``milvus_pid``."""

    def __init__(self, pid: int, milvus_pid: int | None = None) -> None:
        self.pid, self.milvus_pid = pid, milvus_pid
        self._started: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        tree = [self.pid, *_descendants(self.pid)]
        if self.milvus_pid is None:
            api, milvus = tree[:1], tree[1:]
        else:
            api, milvus = tree, [self.milvus_pid, *_descendants(self.milvus_pid)]
        return {"api": sum(map(_cpu_ms, api)), "milvus_lite": sum(map(_cpu_ms, milvus))}

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> dict[str, float]:
        return {name: ms - self._started[name] for name, ms in self._now().items()}


def _cpu_ms(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) * 1000 / ticks  # utime + stime


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out
