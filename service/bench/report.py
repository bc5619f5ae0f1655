"""The benchmark's outputs: the goal lines, the JSON, the latency-throughput chart, and the
comparison with an earlier run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def goal_lines(result: dict) -> list[str]:
    g = result["goals"]
    if not g:
        return []
    rates, cpu = g["max_sustained_rate"], g["api_cpu_ms_per_request"]
    ratio = g["max_sustained_ratio"]
    return [
        f"1 client p50: {g['one_client_p50_ratio']:.2f}x the prototype's (goal <= 1.0x)",
        f"1 client p99: {g['one_client_p99_ratio']:.2f}x the prototype's (goal <= 1.2x)",
        f"max sustained (p99 <= 100 ms, 0 errors): recsys {_num(rates['recsys'])} req/s, "
        f"prototype {_num(rates['prototype'])} req/s: "
        f"{'n/a' if ratio is None else f'{ratio:.2f}x'} (goal >= 2x)",
        f"API process CPU per request at that rate: recsys {_num(cpu['recsys'], 2)} ms, "
        f"prototype {_num(cpu['prototype'], 2)} ms (goal <= 3 ms)",
    ]


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def write(result: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "").replace("-", "")[:15]
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def chart(result: dict, path: Path) -> Path | None:
    """p50 and p99 against answered requests/s for every server; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    modes = (("closed", "closed loop: 1-64 connections"), ("open", "open loop: fixed rates"))
    for ax, (mode, title) in zip(axes, modes, strict=True):
        for name, runs in result["servers"].items():
            points = sorted((p for p in runs[mode] if p["requests"]), key=lambda r: r["level"])
            rates = [p["rate"] for p in points]
            line = ax.plot(rates, [p["p99_ms"] for p in points], "x--", label=f"{name} p99")
            ax.plot(rates, [p["p50_ms"] for p in points], "o-", color=line[0].get_color())
        ax.set_yscale("log")
        ax.set_xlabel("answered requests/s")
        ax.set_title(title, fontsize=10)
        ax.axhline(100, color="grey", linewidth=0.8)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("latency, ms (log): p50 solid, p99 dashed")
    c = result["config"]
    fig.suptitle(f"{c['items']} items, k={c['k']} of N={c['candidates']}, {result['date'][:10]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


COMPARED: dict[str, Callable[[dict], Any]] = {
    "floor p50 ms": lambda r: r["floor"]["p50_ms"],
    "1 client p50 / prototype": lambda r: r["goals"].get("one_client_p50_ratio"),
    "1 client p99 / prototype": lambda r: r["goals"].get("one_client_p99_ratio"),
    "max sustained req/s / prototype": lambda r: r["goals"].get("max_sustained_ratio"),
    "API CPU ms/request": lambda r: r["goals"].get("api_cpu_ms_per_request", {}).get("recsys"),
}


def compare(result: dict, baseline: dict) -> list[str]:
    """Each compared figure now and in ``baseline`` (ratios to the prototype are comparable
    across runs on a shared machine; absolute figures less so)."""
    lines = [f"{'':34} {'baseline':>10} {'now':>10}"]
    for name, pick in COMPARED.items():
        before, now = _safe(pick, baseline), _safe(pick, result)
        lines.append(f"{name:34} {_num(before, 2):>10} {_num(now, 2):>10}")
    return lines


def _safe(pick: Callable[[dict], Any], result: dict) -> float | None:
    try:
        return pick(result)
    except (KeyError, TypeError):
        return None
