"""The impression-cost figure of `recsys bench --impressions-ab`: medians per mode, ratios."""

from __future__ import annotations

import pytest

from service.bench.impressions import lines, summary
from service.bench.load import LoadResult


def run(p50: float, p99: float = 10.0, rate: float = 100.0, level: int = 1) -> LoadResult:
    return LoadResult("closed", level, 500, rate, p50, p99, 0, {})


def test_ratios_are_on_over_off_of_the_medians_per_level():
    result = summary(
        {
            "off": [run(10.0), run(12.0), run(11.0), run(20.0, level=8)],
            "on": [run(11.0), run(99.0), run(11.5), run(20.0, level=8)],
        }
    )
    one = result["levels"]["1"]
    assert one["off"]["p50_ms"] == 11.0 and one["on"]["p50_ms"] == 11.5  # medians: outliers out
    assert one["p50_ratio"] == pytest.approx(11.5 / 11.0)
    assert result["levels"]["8"]["p50_ratio"] == 1.0
    [first, second] = lines(result)
    assert "x1.045" in first and "over" not in first
    assert "x1.000" in second


def test_a_cost_past_five_percent_is_called_out():
    result = summary({"off": [run(10.0)], "on": [run(10.6)]})
    assert "over the 5% budget" in lines(result)[0]
