"""A/B experiments: the assignment function (sticky, proportional), the experiment checks, and
the admin route on the fakes (variants in answers and impressions, processes following the
store, the shadow's totals)."""

from __future__ import annotations

import asyncio
from collections import Counter

import anyio
import pytest

from service.online.experiment import (
    InvalidExperiment,
    Variant,
    assign,
    bucket,
    checked,
    overlap_at_k,
)
from tests.fakes import FakeModel, deploy

USERS = [f"u{n}" for n in range(4000)]


def test_assignment_is_sticky_and_depends_on_the_experiment_name():
    weights = (0.5, 0.5)
    first = [assign("exp", u, weights) for u in USERS]
    assert first == [assign("exp", u, weights) for u in USERS]
    other = [assign("exp-2", u, weights) for u in USERS]
    assert 0.4 < sum(a != b for a, b in zip(first, other, strict=True)) / len(USERS) < 0.6
    assert all(0 <= bucket("exp", u) < 1 for u in USERS[:100])


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.8, 0.2), (0.1, 0.3, 0.6), (1.0, 0.0)])
def test_assignment_follows_the_weights(weights):
    counts = Counter(assign("exp", u, weights) for u in USERS)
    for i, weight in enumerate(weights):
        # 4000 users: a binomial share is within 3.5 standard deviations
        sd = (weight * (1 - weight) / len(USERS)) ** 0.5
        assert abs(counts[i] / len(USERS) - weight) <= 3.5 * sd + 1e-9


def test_raising_a_weight_moves_only_users_towards_that_variant():
    before = [assign("exp", u, (0.9, 0.1)) for u in USERS]
    after = [assign("exp", u, (0.8, 0.2)) for u in USERS]
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert moved and set(moved) == {(0, 1)}


def test_checked_normalizes_weights_and_refuses_bad_experiments():
    exp = checked("e", [Variant("a", "/b/a", 50), Variant("b", "/b/b", 50)], None)
    assert exp.weights == (0.5, 0.5)
    for name, variants, shadow, field in [
        ("bad name", [Variant("a", "/x", 1)], None, "name"),
        ("e", [], None, "variants"),
        ("e", [Variant("a", "/x", 0), Variant("b", "/y", 0)], None, "variants"),
        ("e", [Variant("a", "/x", float("nan"))], None, "variants"),
        ("e", [Variant("a", "/x", 1), Variant("a", "/y", 1)], None, "variants"),
        ("e", [Variant("a", "/x", 1)], Variant("a", "/y"), "variants"),
        ("e", [Variant("default", "/x", 1)], None, "variants"),
    ]:
        with pytest.raises(InvalidExperiment) as err:
            checked(name, variants, shadow)
        assert err.value.field == field


def test_overlap_at_k():
    assert overlap_at_k(["a", "b", "c"], ["c", "b", "a"], 3) == 1.0
    assert overlap_at_k(["a", "b"], ["b", "x"], 2) == 0.5
    assert overlap_at_k(["a", "b", "c"], ["a"], 2) == 0.5


AB = {
    "name": "ab1",
    "variants": [
        {"name": "control", "bundle": "fake_1", "weight": 3},
        {"name": "treatment", "bundle": "fake_2", "weight": 1},
    ],
}


@pytest.fixture
def both(index, store, items) -> dict[str, FakeModel]:
    """fake_2 with the same catalog in its own collection (as `recsys index` would)."""
    second = FakeModel(index, items, version="fake_2")
    deploy(second, store, items)
    return {"fake_2": second}


async def _answers(client, users):
    out = {}
    for user in users:
        r = await client.post("/v1/recommendations", json={"user_id": user, "k": 5})
        assert r.status_code == 200, r.text
        out[user] = r.json()
    return out


@pytest.mark.anyio
async def test_an_experiment_splits_users_sticky_and_every_process_follows(serve, store, both):
    users = [f"user{n}" for n in range(80)]
    async with serve(both) as a, serve(both) as b:
        r = await a.put("/v1/admin/experiment", json=AB)
        assert r.status_code == 200, r.text
        assert [(v["name"], v["weight"]) for v in r.json()["variants"]] == [
            ("control", 0.75),
            ("treatment", 0.25),
        ]
        first = await _answers(a, users)
        expected = {u: ("control", "treatment")[assign("ab1", u, (0.75, 0.25))] for u in users}
        assert {u: x["variant"] for u, x in first.items()} == expected
        version = {"control": "fake_1", "treatment": "fake_2"}
        assert all(x["model_version"] == version[x["variant"]] for x in first.values())
        await anyio.sleep(0.3)  # b's sync follows the record
        again = await _answers(b, users)
        assert {u: x["variant"] for u, x in again.items()} == expected
        assert (await b.get("/v1/experiments")).json()["name"] == "ab1"
        stats = (await a.get("/v1/experiments")).json()
        counted = {v["name"]: sum(r["impressions"] for r in v["online"]) for v in stats["variants"]}
        assert counted == dict(Counter(expected.values()))
        assert (await a.delete("/v1/admin/experiment")).status_code == 200
        await anyio.sleep(0.3)
        r = await b.post("/v1/recommendations", json={"user_id": users[0], "k": 5})
        assert r.json()["variant"] == "default"


@pytest.mark.anyio
async def test_an_experiment_that_cannot_start_changes_nothing(serve, both):
    async with serve(both) as c:
        missing = {**AB, "variants": [AB["variants"][0], {**AB["variants"][1], "bundle": "nope"}]}
        r = await c.put("/v1/admin/experiment", json=missing)
        assert r.status_code == 409 and r.json()["error"]["code"] == "experiment_refused"
        assert "treatment" in r.json()["error"]["message"]
        outside = {**AB, "variants": [{**AB["variants"][0], "bundle": "/etc"}]}
        r = await c.put("/v1/admin/experiment", json=outside)
        assert r.status_code == 403 and r.json()["error"]["field"] == "variants[0].bundle"
        dots = {**AB, "variants": [{**AB["variants"][0], "bundle": "../x"}]}
        assert (await c.put("/v1/admin/experiment", json=dots)).status_code == 422
        zero = {**AB, "variants": [{**v, "weight": 0} for v in AB["variants"]]}
        r = await c.put("/v1/admin/experiment", json=zero)  # the schema cannot rule it out
        assert r.status_code == 409 and r.json()["error"]["field"] == "variants"
        assert (await c.get("/v1/experiments")).json()["name"] is None


@pytest.mark.anyio
async def test_the_shadow_runs_off_the_answer_and_reports_latency_and_overlap(serve, both):
    body = {**AB, "variants": [AB["variants"][0]], "shadow": {"name": "s", "bundle": "fake_2"}}
    async with serve(both) as c:
        assert (await c.put("/v1/admin/experiment", json=body)).status_code == 200
        answers = await _answers(c, [f"user{n}" for n in range(10)])
        assert {x["variant"] for x in answers.values()} == {"control"}
        await asyncio.sleep(0.2)
        shadow = (await c.get("/v1/experiments")).json()["shadow"]
        assert shadow["name"] == "s" and shadow["model_version"] == "fake_2"
        assert shadow["runs"] == 10 and 0 <= shadow["mean_overlap_at_k"] <= 1
        metrics = (await c.get("/metrics")).text
        assert 'rec_shadow_duration_seconds_count{variant="s"} 10.0' in metrics


@pytest.mark.anyio
async def test_a_shadow_fraction_shadows_only_some_requests(serve, both):
    body = {**AB, "variants": [AB["variants"][0]], "shadow": {"name": "s", "bundle": "fake_2"}}
    async with serve(both, shadow_fraction=0.01) as c:
        assert (await c.put("/v1/admin/experiment", json=body)).status_code == 200
        await _answers(c, [f"user{n}" for n in range(40)])
        await asyncio.sleep(0.2)
        shadow = (await c.get("/v1/experiments")).json()["shadow"]
        assert shadow["runs"] < 10 and shadow["skipped"] == 0
