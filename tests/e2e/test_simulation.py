"""`recsys simulate` at a small size: a real `recsys serve` (Lite server, SQLite) answers the
simulated users over HTTP for a round, the traffic is exported and retrained on, the gate
decides, and an A/B of both bundles runs. What a small run can prove is the bookkeeping (the
CTR figures need the full size of docs/simulation.md): every answer logged, every click
attributed, the split sticky, the report's counts the raw ones, the worse bundle refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need_tensorflow

pytestmark = pytest.mark.slow


def test_a_round_of_the_loop_logs_attributes_splits_and_gates(tmp_path: Path):
    need_tensorflow()
    from training.simulation.loop import SimulationSettings, run_simulation

    settings = SimulationSettings(tmp_path, rounds=1, users=400, items=300, epochs=2)
    result = run_simulation(settings, print)

    totals = result["totals"]
    assert totals["answers"] == 2 * 400 * 2  # two requests per user, rounds 0 and 1
    assert totals["impressions_logged"] == totals["answers"]
    assert totals["clicks_posted"] > 0
    assert totals["clicks_attributed"] == totals["clicks_posted"]
    assert totals["variant_sticky_per_user"]

    zero, one = result["rounds"]
    assert [v["variant"] for v in zero["variants"]] == ["default"]
    assert [v["variant"] for v in one["variants"]] == ["round0", "retrained"]
    for r in (zero, one):
        assert sum(v["impressions"] for v in r["variants"]) == 400 * 2
        assert sum(v["items_shown"] for v in r["variants"]) == 400 * 2 * 10
    assert (
        sum(v["positives"] for r in (zero, one) for v in r["variants"]) == totals["clicks_posted"]
    )
    assert 0.3 < one["variants"][0]["impressions"] / 800 < 0.7  # a 50/50 split of 400 users
    assert all(v["impressions"] % 2 == 0 for v in one["variants"])  # both requests, one arm

    retrained, worse = result["gate"]
    assert retrained["status"] in (200, 409)
    assert worse["bundle"] == "worse" and worse["status"] == 409, worse
    assert "rollout gate refused" in worse["message"]
