"""One setting's cost on the serving path: the same recsys server under two environments
(`RECSYS_IMPRESSIONS` off and on; `RECSYS_SOURCES` two_tower alone and a mix of every
source), alternated over several rounds in one run, at each closed-loop level. The figure
judged is the median over rounds of each round's p50 ratio (variant / base): the two runs
of a round are minutes apart, so a drift of the shared machine's load cancels within a round
but not across rounds (the ratio of the two modes' median p50s, also reported, mixes rounds).
Each run also reads ``timings_ms`` from a sample of answers: the cost per stage."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import httpx
import numpy as np

from service.bench.catalog import BenchCatalog
from service.bench.load import API_KEY, CpuMeter, LoadResult, closed_loop

P50_BUDGET = 1.05  # the impressions goal (issue 14): logging costs at most 5% of p50
ALL_SOURCES = {"two_tower": 0.4, "item_to_item": 0.3, "trending": 0.2, "fresh": 0.1}
TIMING_SAMPLES = 200

Server = Callable[[list[str], dict[str, str], BenchCatalog, int], AbstractContextManager]


@dataclass(frozen=True)
class Comparison:
    name: str  # what is compared: impressions, sources
    modes: dict[str, dict[str, str]]  # base first, then the variant: mode -> RECSYS_* env
    budget: float | None = None  # the p50 ratio allowed, if the comparison has a goal


IMPRESSIONS = Comparison(
    "impressions",
    {"off": {"RECSYS_IMPRESSIONS": "false"}, "on": {"RECSYS_IMPRESSIONS": "true"}},
    P50_BUDGET,
)
SOURCES = Comparison(
    "sources",
    {
        "two_tower": {"RECSYS_SOURCES": json.dumps({"two_tower": 1.0})},
        "all": {"RECSYS_SOURCES": json.dumps(ALL_SOURCES)},
    },
)


def server_ab(
    config, catalog: BenchCatalog, server: Server, say: Callable[[str], None], ab: Comparison
) -> dict:
    """``config.ab_rounds`` x (base, variant) at ``config.connections``."""
    command = [sys.executable, "-m", "service", "serve", "--bundle", str(config.bundle)]
    runs: dict[str, list[LoadResult]] = {mode: [] for mode in ab.modes}
    timings: dict[str, list[dict[str, float]]] = {mode: [] for mode in ab.modes}
    for round_ in range(config.ab_rounds):
        for mode, mode_env in ab.modes.items():
            env = {"RECSYS_API_KEYS": json.dumps([API_KEY]), **mode_env}
            with server(command, env, catalog, 1) as (port, cpu):
                url = f"http://127.0.0.1:{port}"
                for result in _levels(config, url, cpu):
                    runs[mode].append(result)
                    say(
                        f"{ab.name} {mode} round {round_ + 1}: {int(result.level)} conn "
                        f"p50 {result.p50_ms:.2f} p99 {result.p99_ms:.2f} ms, "
                        f"{result.rate:.1f} req/s, errors {result.errors}"
                    )
                timings[mode].append(stage_timings(url, config))
    return {**summary(runs, ab), "timings_ms": {m: _mean(t) for m, t in timings.items()}}


def _levels(config, url: str, cpu: CpuMeter) -> Iterator[LoadResult]:
    closed_loop(url, 4, 2, config.users, config.k, config.candidates, cpu)  # warm-up
    for connections in config.connections:
        yield closed_loop(
            url, connections, config.seconds, config.users, config.k, config.candidates, cpu
        )


def stage_timings(url: str, config) -> dict[str, float]:
    """Mean ``timings_ms`` per stage over one client's answers for different users."""
    body = {"k": config.k, "candidates": config.candidates}
    sums: dict[str, float] = {}
    with httpx.Client(base_url=url, headers={"x-api-key": API_KEY}, timeout=10) as client:
        for n in range(TIMING_SAMPLES):
            answer = client.post("/v1/recommendations", json={**body, "user_id": f"u{n}"})
            answer.raise_for_status()
            for stage, ms in answer.json()["timings_ms"].items():
                sums[stage] = sums.get(stage, 0.0) + ms
    return {stage: total / TIMING_SAMPLES for stage, total in sums.items()}


def _mean(rounds: list[dict[str, float]]) -> dict[str, float]:
    stages = sorted({s for r in rounds for s in r})
    return {s: round(float(np.mean([r.get(s, 0.0) for r in rounds])), 3) for s in stages}


def summary(runs: dict[str, list[LoadResult]], ab: Comparison) -> dict:
    """Per level: median p50/p99/rate of each mode, the ratios of those medians and the
    median of the per-round p50 ratios (``runs[mode]`` in round order)."""
    base, variant = ab.modes
    levels = sorted({int(r.level) for r in runs[base]})
    out = {}
    for level in levels:
        row = {}
        for mode in (base, variant):
            at = [r for r in runs[mode] if int(r.level) == level]
            row[mode] = {
                "p50_ms": float(np.median([r.p50_ms for r in at])),
                "p99_ms": float(np.median([r.p99_ms for r in at])),
                "rate": float(np.median([r.rate for r in at])),
                "errors": sum(r.errors for r in at),
                "rounds": len(at),
            }
        pairs = zip(
            [r for r in runs[base] if int(r.level) == level],
            [r for r in runs[variant] if int(r.level) == level],
            strict=True,
        )
        row["p50_ratio_per_round"] = [v.p50_ms / b.p50_ms for b, v in pairs]
        row["p50_ratio_paired"] = float(np.median(row["p50_ratio_per_round"]))
        row["p50_ratio"] = row[variant]["p50_ms"] / row[base]["p50_ms"]
        row["p99_ratio"] = row[variant]["p99_ms"] / row[base]["p99_ms"]
        row["rate_ratio"] = row[variant]["rate"] / row[base]["rate"]
        out[str(level)] = row
    return {
        "name": ab.name,
        "base": base,
        "variant": variant,
        "levels": out,
        "p50_budget": ab.budget,
    }


def lines(result: dict) -> list[str]:
    base, variant, budget = result["base"], result["variant"], result["p50_budget"]
    out = []
    for level, row in result["levels"].items():
        line = (
            f"{result['name']} {variant}/{base} at {level} conn: "
            f"p50 x{row['p50_ratio_paired']:.3f} "
            f"(median of rounds {', '.join(f'{r:.3f}' for r in row['p50_ratio_per_round'])}; "
            f"of medians x{row['p50_ratio']:.3f}: {row[base]['p50_ms']:.2f} -> "
            f"{row[variant]['p50_ms']:.2f} ms), p99 x{row['p99_ratio']:.3f}, "
            f"req/s x{row['rate_ratio']:.3f}"
        )
        if budget is not None and row["p50_ratio_paired"] > budget:
            line += f"  (over the {round((budget - 1) * 100)}% budget)"
        out.append(line)
    for mode, stages in result.get("timings_ms", {}).items():
        out.append(
            f"{result['name']} {mode}: timings_ms "
            + ", ".join(f"{s} {ms:.2f}" for s, ms in stages.items())
        )
    return out
