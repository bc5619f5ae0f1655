"""The rollout gate: figures compared with margins, refusals, force, and the reload route."""

from __future__ import annotations

import dataclasses

import pytest

from service.online.gate import decide
from tests.fakes import FakeModel

pytestmark = pytest.mark.anyio
MARGINS = {"ranker_auc": 0.005, "recall@50": 0.005}


def scored(auc: float, recall: float, against: str = "serving_v") -> dict:
    return {
        "gate": {
            "baseline": {"version": against, "ranker_auc": 0.78, "recall@50": 0.25},
            "candidate": {"ranker_auc": auc, "recall@50": recall},
        }
    }


@pytest.mark.parametrize(
    ("metrics", "decision", "words"),
    [
        (scored(0.78, 0.25), "passed", "no worse"),
        (scored(0.776, 0.246), "passed", "no worse"),  # within the margins
        (scored(0.70, 0.25), "refused", "ranker_auc 0.7000 < 0.7800"),
        (scored(0.78, 0.10), "refused", "recall@50 0.1000 < 0.2500"),
        (scored(0.80, 0.30, against="other_v"), "refused", "not scored against"),
        ({}, "refused", "--baseline"),
    ],
)
def test_the_gate_compares_the_figures_with_margins(metrics, decision, words):
    got = decide(metrics, "new_v", "serving_v", MARGINS)
    assert got.decision == decision and words in got.reason
    forced = decide(metrics, "new_v", "serving_v", MARGINS, force=True)
    assert forced.decision == ("forced" if decision == "refused" else decision)


def test_nothing_serving_the_same_version_or_gate_off_pass():
    assert decide({}, "v1", None, MARGINS).decision == "passed"
    assert decide({}, "v1", "v1", MARGINS).decision == "passed"
    assert decide({}, "v1", "v0", MARGINS, enabled=False).decision == "off"


def with_metrics(model: FakeModel, metrics: dict) -> FakeModel:
    model.info = dataclasses.replace(model.info, metrics=metrics)
    return model


async def test_a_worse_bundle_is_refused_with_both_figures_unless_forced(serve, index):
    worse = with_metrics(FakeModel(index, {}, version="fake_worse"), scored(0.70, 0.25, "fake_1"))
    better = with_metrics(FakeModel(index, {}, version="fake_better"), scored(0.79, 0.26, "fake_1"))
    async with serve(models={"fake_worse": worse, "fake_better": better}) as c:
        r = await c.post("/v1/admin/reload", json={"bundle": "fake_worse"})
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "rollout_refused" and "0.7000 < 0.7800" in error["message"]
        model = (await c.get("/v1/models")).json()
        assert model["version"] == "fake_1" and "rollout gate refused" in model["last_reload_error"]

        r = await c.post("/v1/admin/reload", json={"bundle": "fake_better"})
        assert r.status_code == 200, r.text
        gate = r.json()["gate"]
        assert gate["decision"] == "passed" and gate["baseline"]["ranker_auc"] == 0.78
        assert gate["candidate"] == {"ranker_auc": 0.79, "recall@50": 0.26}
        assert (await c.get("/v1/models")).json()["version"] == "fake_better", r.json()

        r = await c.post("/v1/admin/reload", json={"bundle": "fake_worse", "force": True})
        assert r.status_code == 200 and r.json()["gate"]["decision"] == "forced"
        assert "not scored against the serving bundle fake_better" in r.json()["gate"]["reason"]
        assert (await c.get("/v1/models")).json()["version"] == "fake_worse"
