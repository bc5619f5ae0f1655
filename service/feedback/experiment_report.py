"""`recsys experiment report`: per variant, from the impression log and the attributed events
in the store (so it matches the raw counts), impressions, items shown, positives and CTR with a
95% Wilson interval, and each variant's CTR difference with the control's, with a 95% normal
interval (unpooled standard error) and the two-proportion z-test (pooled).

CTR is positives / items shown, as everywhere in the feedback loop; a positive is a shown item
with an attributed positive event (the first per answer and item). The intervals treat shown
items as independent trials: items of one answer (and answers of one user) are correlated, so
the intervals are somewhat too narrow; read small differences with care.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from service.feedback.records import Feedback, Impression

Z95 = 1.959963984540054


@dataclass(frozen=True)
class VariantCounts:
    variant: str
    impressions: int
    items_shown: int
    positives: int


@dataclass(frozen=True)
class VariantRow:
    counts: VariantCounts
    ctr: float | None
    ctr_low: float | None
    ctr_high: float | None
    # against the control (None for the control itself or without data)
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    z: float | None = None
    p_value: float | None = None


def count(impressions: Iterable[Impression], feedback: Iterable[Feedback]) -> list[VariantCounts]:
    """Per variant (sorted by name): answers, items shown, and shown items with a positive."""
    answers: Counter[str] = Counter()
    shown: Counter[str] = Counter()
    variant_of: dict[str, str] = {}
    shown_in: dict[str, set[str]] = {}
    for imp in impressions:
        answers[imp.variant] += 1
        shown[imp.variant] += len(imp.items)
        variant_of[imp.request_id] = imp.variant
        shown_in[imp.request_id] = {s.item_id for s in imp.items}
    clicked = {
        (f.request_id, f.item_id)
        for f in feedback
        if f.positive and f.item_id in shown_in.get(f.request_id, ())
    }
    positives = Counter(variant_of[request_id] for request_id, _ in clicked)
    return [VariantCounts(v, answers[v], shown[v], positives[v]) for v in sorted(answers)]


def wilson(positives: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``positives / n`` (n > 0)."""
    p = positives / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference(
    pos_a: int, n_a: int, pos_b: int, n_b: int, z: float = Z95
) -> tuple[float, float, float, float | None, float | None]:
    """``p_b - p_a`` with its normal interval (unpooled SE), the pooled z statistic and its
    two-sided p-value (None when the pooled proportion is 0 or 1: nothing to test)."""
    p_a, p_b = pos_a / n_a, pos_b / n_b
    diff = p_b - p_a
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    pooled = (pos_a + pos_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se_pooled == 0:
        return diff, diff - z * se, diff + z * se, None, None
    stat = diff / se_pooled
    return diff, diff - z * se, diff + z * se, stat, math.erfc(abs(stat) / math.sqrt(2))


def report(counts: Sequence[VariantCounts], control: str) -> list[VariantRow]:
    """One row per variant, the control first; the others compared with it."""
    ordered = sorted(counts, key=lambda c: c.variant != control)
    base = next((c for c in ordered if c.variant == control), None)
    rows = []
    for c in ordered:
        if not c.items_shown:
            rows.append(VariantRow(c, None, None, None))
            continue
        ctr, (low, high) = c.positives / c.items_shown, wilson(c.positives, c.items_shown)
        if base is None or c is base or not base.items_shown:
            rows.append(VariantRow(c, ctr, low, high))
            continue
        d = difference(base.positives, base.items_shown, c.positives, c.items_shown)
        rows.append(VariantRow(c, ctr, low, high, *d))
    return rows


def plot(rows: Sequence[VariantRow], out: Path, title: str) -> None:
    """CTR per variant with its 95% interval, as a PNG. Needs matplotlib (the `train` extra:
    `pip install 'recsys[train]'`; the API image does not have it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.ctr is not None]
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(shown), 3.6))
    names = [r.counts.variant for r in shown]
    ctrs = [r.ctr for r in shown]
    errors = [[r.ctr - r.ctr_low for r in shown], [r.ctr_high - r.ctr for r in shown]]
    ax.bar(names, ctrs, yerr=errors, capsize=6, color="#4C78A8")
    for x, r in enumerate(shown):
        label = f"{r.counts.positives}/{r.counts.items_shown}"
        if r.diff is not None:
            label += f"\n{r.diff:+.4f} [{r.diff_low:+.4f}, {r.diff_high:+.4f}]"
        ax.annotate(label, (x, r.ctr_high or 0), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("CTR (positives / items shown), 95% Wilson")
    ax.set_title(title, fontsize=10)
    ax.margins(y=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
