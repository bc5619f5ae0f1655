"""An open-loop load generator for the tests, run as its own process (``python -m
tests.loadgen URL RATE SECONDS``) so it does not share the server's GIL: ``RATE`` recommendation
requests a second, each sent on time whatever the others do; prints one JSON list per answer:
``[status, seconds, degraded, retry_after]``."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def open_loop(url: str, rate: float, seconds: float) -> list[list]:
    results: list[list] = []
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:

        async def one() -> None:
            started = time.perf_counter()
            r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 3})
            took = time.perf_counter() - started
            degraded = r.status_code == 200 and r.json()["degraded"]
            results.append([r.status_code, took, degraded, r.headers.get("retry-after")])

        tasks, start = [], time.perf_counter()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return results


def run(url: str, rate: float, seconds: float) -> list[list]:
    """The generator in a child process; its answers."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "tests.loadgen", url, str(rate), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


if __name__ == "__main__":
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    for result in asyncio.run(open_loop(url, rate, seconds)):
        print(json.dumps(result))
