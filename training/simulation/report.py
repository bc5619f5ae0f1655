"""The simulation's figures as a table and a chart (docs/simulation.md shows both)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# round 0 serves the first bundle to everyone (variant `default`); later rounds split users
SERIES = {"default": "round-0 bundle", "round0": "round-0 bundle", "retrained": "retrained"}


def table(result: dict[str, Any]) -> str:
    lines = [
        "round  variant     answers  shown   clicks  CTR [95%]               "
        "diff vs round-0 [95%]       p        expected CTR  popularity"
    ]
    for r in result["rounds"]:
        for v in r["variants"]:
            ctr = f"{v['ctr']:.4f} [{v['ctr_low']:.4f}, {v['ctr_high']:.4f}]"
            diff = (
                f"{v['diff']:+.4f} [{v['diff_low']:+.4f}, {v['diff_high']:+.4f}]"
                if v["diff"] is not None
                else "-"
            )
            p = f"{v['p_value']:.2g}" if v["p_value"] is not None else "-"
            lines.append(
                f"{r['round']:>5}  {v['variant']:<10} {v['impressions']:>8} {v['items_shown']:>6} "
                f"{v['positives']:>7}  {ctr:<23} {diff:<27} {p:<8} {v['expected_ctr']:.4f}"
                f"        {r['popularity_expected_ctr']:.4f}"
            )
    return "\n".join(lines)


def chart(result: dict[str, Any], out: Path) -> None:
    """CTR per round and variant with its 95% interval, the latent truth's expected CTR of
    the same answers, and the popularity list's expected CTR on the same requests."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    offsets = {"round-0 bundle": -0.06, "retrained": 0.06}
    colours = {"round-0 bundle": "#4C78A8", "retrained": "#F58518"}
    for label, dx in offsets.items():
        points = [
            (r["round"], v)
            for r in result["rounds"]
            for v in r["variants"]
            if SERIES.get(v["variant"]) == label
        ]
        if not points:
            continue
        x = [n + dx for n, _ in points]
        ctr = [v["ctr"] for _, v in points]
        errors = [
            [v["ctr"] - v["ctr_low"] for _, v in points],
            [v["ctr_high"] - v["ctr"] for _, v in points],
        ]
        ax.errorbar(
            x,
            ctr,
            yerr=errors,
            fmt="o-",
            capsize=4,
            color=colours[label],
            label=f"{label}: CTR, 95%",
        )
        expected = [v["expected_ctr"] for _, v in points]
        ax.plot(
            x, expected, "x:", color=colours[label], label=f"{label}: expected CTR (latent truth)"
        )
    rounds = [r["round"] for r in result["rounds"]]
    popularity = [r["popularity_expected_ctr"] for r in result["rounds"]]
    ax.plot(rounds, popularity, "s--", color="#54A24B", label="popularity list: expected CTR")
    ax.set_xticks(rounds)
    ax.set_xlabel("round (0: the first bundle for everyone; then an A/B, 50/50 sticky)")
    ax.set_ylabel("CTR (clicks / items shown)")
    ax.set_title("recsys simulate: serve -> log -> export -> retrain -> gated reload", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
