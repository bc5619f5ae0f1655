"""The impression log's cost on the serving path: the same recsys server with
``RECSYS_IMPRESSIONS`` off and on, alternated over several rounds in one run, at each
closed-loop level. The figure judged against the budget is the median over rounds of each
round's on/off p50 ratio: the two runs of a round are minutes apart, so a drift of the shared
machine's load cancels within a round but not across rounds (the ratio of the two modes'
median p50s, also reported, mixes rounds)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import numpy as np

from service.bench.catalog import BenchCatalog
from service.bench.load import API_KEY, CpuMeter, LoadResult, closed_loop

P50_BUDGET = 1.05  # the goal: logging costs at most 5% of p50

Server = Callable[[list[str], dict[str, str], BenchCatalog, int], AbstractContextManager]


def impressions_ab(
    config, catalog: BenchCatalog, server: Server, say: Callable[[str], None]
) -> dict:
    """``rounds`` x (off, on) at ``config.connections``; ratios on / off of the medians."""
    command = [sys.executable, "-m", "service", "serve", "--bundle", str(config.bundle)]
    runs: dict[str, list[LoadResult]] = {"off": [], "on": []}
    for round_ in range(config.impression_rounds):
        for mode in ("off", "on"):
            env = {
                "RECSYS_API_KEYS": json.dumps([API_KEY]),
                "RECSYS_IMPRESSIONS": str(mode == "on"),
            }
            with server(command, env, catalog, 1) as (port, cpu):
                for result in _levels(config, f"http://127.0.0.1:{port}", cpu):
                    runs[mode].append(result)
                    say(
                        f"impressions {mode} round {round_ + 1}: {int(result.level)} conn "
                        f"p50 {result.p50_ms:.2f} p99 {result.p99_ms:.2f} ms, "
                        f"{result.rate:.1f} req/s, errors {result.errors}"
                    )
    return summary(runs)


def _levels(config, url: str, cpu: CpuMeter) -> Iterator[LoadResult]:
    closed_loop(url, 4, 2, config.users, config.k, config.candidates, cpu)  # warm-up
    for connections in config.connections:
        yield closed_loop(
            url, connections, config.seconds, config.users, config.k, config.candidates, cpu
        )


def summary(runs: dict[str, list[LoadResult]]) -> dict:
    """Per level: median p50/p99/rate of each mode, the ratios of those medians and the
    median of the per-round p50 ratios (``runs[mode]`` in round order)."""
    levels = sorted({int(r.level) for r in runs["off"]})
    out = {}
    for level in levels:
        row = {}
        for mode in ("off", "on"):
            at = [r for r in runs[mode] if int(r.level) == level]
            row[mode] = {
                "p50_ms": float(np.median([r.p50_ms for r in at])),
                "p99_ms": float(np.median([r.p99_ms for r in at])),
                "rate": float(np.median([r.rate for r in at])),
                "errors": sum(r.errors for r in at),
                "rounds": len(at),
            }
        pairs = zip(
            [r for r in runs["off"] if int(r.level) == level],
            [r for r in runs["on"] if int(r.level) == level],
            strict=True,
        )
        row["p50_ratio_per_round"] = [on.p50_ms / off.p50_ms for off, on in pairs]
        row["p50_ratio_paired"] = float(np.median(row["p50_ratio_per_round"]))
        row["p50_ratio"] = row["on"]["p50_ms"] / row["off"]["p50_ms"]
        row["p99_ratio"] = row["on"]["p99_ms"] / row["off"]["p99_ms"]
        row["rate_ratio"] = row["on"]["rate"] / row["off"]["rate"]
        out[str(level)] = row
    return {"levels": out, "p50_budget": P50_BUDGET}


def lines(result: dict) -> list[str]:
    return [
        f"impressions on/off at {level} conn: p50 x{row['p50_ratio_paired']:.3f} "
        f"(median of rounds {', '.join(f'{r:.3f}' for r in row['p50_ratio_per_round'])}; "
        f"of medians x{row['p50_ratio']:.3f}: {row['off']['p50_ms']:.2f} -> "
        f"{row['on']['p50_ms']:.2f} ms), p99 x{row['p99_ratio']:.3f}, "
        f"req/s x{row['rate_ratio']:.3f}"
        + ("" if row["p50_ratio_paired"] <= result["p50_budget"] else "  (over the 5% budget)")
        for level, row in result["levels"].items()
    ]
