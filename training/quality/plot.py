"""The quality chart: Recall@50 / NDCG@10 per arm, and NDCG@10 against intra-list diversity
for each diversity knob (means over seeds, bars for the spread). matplotlib, headless."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def chart(doc: dict[str, Any], path: Path) -> Path | None:
    """Write the PNG; None without matplotlib (the ``train`` extra)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    _retrieval_panel(left, doc["summary"]["retrieval"], doc["settings"]["candidates"])
    _diversity_panel(right, doc["summary"]["diversity"])
    fig.suptitle(f"{doc['dataset']} ({doc['split']} split), {doc['date'][:10]}, {_seeds(doc)}")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _seeds(doc: dict[str, Any]) -> str:
    seeds = [str(r["seed"]) for r in doc["runs"]]
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"


def _retrieval_panel(ax, retrieval: dict[str, Any], candidates: int) -> None:
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for name, figures in retrieval.items():
        if "two_tower order recall@50" in figures and name.endswith(f"@{candidates}"):
            rows.append(
                (
                    "two-tower search alone",
                    figures["two_tower order recall@50"],
                    figures["two_tower order ndcg@10"],
                )
            )
    for name, figures in retrieval.items():
        if name.endswith(f"@{candidates}"):
            label = f"{name.rsplit('@', 1)[0]} + ranker"
            rows.append((label, figures["final recall@50"], figures["final ndcg@10"]))
    for name, figures in retrieval.items():
        if name.endswith("@50") and f"@{candidates}" != "@50":
            label = f"{name.rsplit('@', 1)[0]}: 50 candidates"
            rows.append((label, figures["candidates recall@50"], None))
    y = np.arange(len(rows))
    for offset, index, label in ((-0.2, 1, "Recall@50"), (0.2, 2, "NDCG@10")):
        values = [r[index]["mean"] if r[index] else np.nan for r in rows]
        errors = [r[index]["std"] if r[index] else 0 for r in rows]
        ax.barh(y + offset, values, 0.4, xerr=errors, label=label)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("held-out test positives")
    ax.set_title("retrieval and ranking through the online path")
    ax.legend(loc="lower right")


def _diversity_panel(ax, points: list[dict[str, Any]]) -> None:
    ild = next(k for k in points[0] if k.startswith("ild@"))
    plain = next(p for p in points if p["knob"] == "none")
    for knob, marker in (("mmr", "o-"), ("cap", "s--")):
        mine = [plain] + [p for p in points if p["knob"] == knob]
        xs = [p[ild]["mean"] for p in mine]
        ys = [p["ndcg@10"]["mean"] for p in mine]
        name = "MMR weight" if knob == "mmr" else f"cap per {mine[-1].get('attribute', 'value')}"
        ax.plot(xs, ys, marker, label=name)
        for p, x, yv in zip(mine[1:], xs[1:], ys[1:], strict=True):
            ax.annotate(str(p["value"]), (x, yv), textcoords="offset points", xytext=(4, 4))
    ax.annotate(
        "off",
        (plain[ild]["mean"], plain["ndcg@10"]["mean"]),
        xytext=(4, -12),
        textcoords="offset points",
    )
    ax.set_xlabel(f"intra-list diversity ({ild}: mean pairwise 1 - cosine)")
    ax.set_ylabel("NDCG@10")
    ax.set_title("diversity trade-off (top 10 of 200)")
    ax.legend()
