"""The figures of `recsys bench --impressions-ab` / `--sources-ab`: medians per mode, and the
median of the per-round ratios (the figure judged against the impressions' 5% budget)."""

from __future__ import annotations

import pytest

from service.bench.ab import IMPRESSIONS, SOURCES, lines, summary
from service.bench.load import LoadResult


def run(p50: float, p99: float = 10.0, rate: float = 100.0, level: int = 1) -> LoadResult:
    return LoadResult("closed", level, 500, rate, p50, p99, 0, {})


def test_ratios_pair_the_runs_of_each_round():
    result = summary(
        {
            # the machine got slower in round 2: both modes, so its ratio is still ~1
            "off": [run(10.0), run(20.0), run(11.0), run(20.0, level=8)],
            "on": [run(10.4), run(21.0), run(99.0), run(20.0, level=8)],
        },
        IMPRESSIONS,
    )
    one = result["levels"]["1"]
    assert one["p50_ratio_per_round"] == pytest.approx([1.04, 1.05, 9.0])
    assert one["p50_ratio_paired"] == pytest.approx(1.05)  # the outlier round is out
    assert one["off"]["p50_ms"] == 11.0 and one["on"]["p50_ms"] == 21.0
    assert one["p50_ratio"] == pytest.approx(21.0 / 11.0)  # medians mix rounds
    assert result["levels"]["8"]["p50_ratio_paired"] == 1.0
    [first, second] = lines(result)
    assert first.startswith("impressions on/off at 1 conn: p50 x1.050") and "over" not in first
    assert "x1.000" in second


def test_a_cost_past_five_percent_is_called_out():
    result = summary({"off": [run(10.0)], "on": [run(10.6)]}, IMPRESSIONS)
    assert "over the 5% budget" in lines(result)[0]


def test_the_sources_comparison_has_no_budget_and_lists_stage_timings():
    result = summary({"two_tower": [run(10.0)], "all": [run(13.0)]}, SOURCES)
    result["timings_ms"] = {
        "two_tower": {"search": 5.0},
        "all": {"search": 5.1, "item_to_item": 2.0},
    }
    first, *timings = lines(result)
    assert first.startswith("sources all/two_tower at 1 conn: p50 x1.300") and "budget" not in first
    assert timings == [
        "sources two_tower: timings_ms search 5.00",
        "sources all: timings_ms search 5.10, item_to_item 2.00",
    ]
