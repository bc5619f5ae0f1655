"""The report's maths, checked against values computed by hand, and its counts against the
raw records."""

from __future__ import annotations

from statistics import NormalDist

import pytest

from service.feedback.experiment_report import VariantCounts, count, difference, report, wilson
from service.feedback.records import Feedback, Impression, ShownItem


def test_wilson_interval_by_hand():
    # p = 0.1, n = 100, z = 1.96: centre (0.1 + 0.019208) / 1.038416, half 0.059599 / 1.038416
    low, high = wilson(10, 100)
    assert low == pytest.approx(0.05523, abs=1e-4) and high == pytest.approx(0.17437, abs=1e-4)
    assert wilson(0, 50) == pytest.approx((0.0, 1.959964**2 / (50 + 1.959964**2)))


def test_difference_by_hand():
    diff, low, high, z, p = difference(10, 100, 20, 100)
    # unpooled SE sqrt(0.1*0.9/100 + 0.2*0.8/100) = 0.05; pooled 0.15: SE 0.0504975
    assert diff == pytest.approx(0.1)
    assert (low, high) == pytest.approx((0.1 - 1.959964 * 0.05, 0.1 + 1.959964 * 0.05))
    assert z == pytest.approx(0.1 / 0.0504975, rel=1e-5)
    assert p == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-9)
    assert difference(0, 10, 0, 10)[3:] == (None, None)


def imp(request_id: str, variant: str, items: list[str]) -> Impression:
    shown = tuple(ShownItem(i, n, 0.5, "two_tower") for n, i in enumerate(items, start=1))
    return Impression(request_id, 1.0, "u", "v1", variant, shown)


def fb(request_id: str, item_id: str, positive: bool = True) -> Feedback:
    return Feedback(request_id, "u", item_id, "click", 1.0, 2.0, positive, 1, "v1", "?")


def test_counts_match_the_raw_records():
    impressions = [imp("r1", "a", ["x", "y"]), imp("r2", "a", ["x"]), imp("r3", "b", ["x", "z"])]
    feedback = [
        fb("r1", "x"),
        fb("r1", "x"),  # a click then a like: one positive
        fb("r1", "y", positive=False),
        fb("r2", "q"),  # not shown by r2
        fb("r3", "z"),
        fb("gone", "x"),  # its impression is outside the window read
    ]
    assert count(impressions, feedback) == [
        VariantCounts("a", 2, 3, 1),
        VariantCounts("b", 1, 2, 1),
    ]


def test_report_puts_the_control_first_and_compares_the_others():
    rows = report([VariantCounts("b", 50, 100, 20), VariantCounts("a", 50, 100, 10)], "a")
    assert [r.counts.variant for r in rows] == ["a", "b"]
    assert rows[0].diff is None and rows[0].ctr == pytest.approx(0.1)
    assert rows[1].diff == pytest.approx(0.1) and rows[1].p_value == pytest.approx(0.0477, abs=1e-3)
    assert report([VariantCounts("a", 0, 0, 0)], "a")[0].ctr is None
