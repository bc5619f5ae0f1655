"""The REST API over the fakes (the real app, lifespan and middleware; a fake model): status
codes, the one error shape, auth, reload, readiness and the indexing worker."""

from __future__ import annotations

import time
from urllib.parse import quote

import anyio
import httpx
import pytest

from service.api.schemas import RecommendationResponse
from service.online.ports import RankerError
from tests.bodies import item_body

pytestmark = pytest.mark.anyio


def assert_error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code and body["error"]["field"] == field, body
    assert "Traceback" not in response.text


async def test_recommendations_over_http(client):
    r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 5 and body["model_version"] == "fake_1"
    assert body["ranker"] == "dot" and body["degraded"] is False
    assert body["request_id"] == r.headers["x-request-id"]
    assert RecommendationResponse.model_validate_json(r.content).model_dump() == body


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/v1/recommendations", {"user_id": "u", "k": 0}, "k"),
        ("post", "/v1/recommendations", {"user_id": "u\tv"}, "user_id"),
        ("post", "/v1/recommendations", {"user_id": "u", "context": {"x": 1}}, "context.x"),
        ("post", "/v1/recommendations", {"user_id": "u", "filter": {"x": ["a"]}}, "filter.x"),
        ("post", "/v1/users/u/events", {"events": []}, "events"),
        ("put", "/v1/users/u", {"features": {"user_id": "u"}}, "features.user_id"),
        ("put", "/v1/users/u", {"features": {"favs": ["t1:abc"]}}, "features.favs"),
        ("put", "/v1/items", {"items": [{"features": {"topic": "t1"}}]}, "items[0].item_id"),
        ("put", "/v1/items", {"items": [{"item_id": "x\ny"}]}, "items[0].item_id"),
        ("put", "/v1/items", {"items": [{"item_id": "x" * 257}]}, "items[0].item_id"),
        (
            "put",
            "/v1/items",
            {"items": [{"item_id": "a", "features": {"item_id": "a"}}]},
            "items[0].features.item_id",
        ),
        ("put", "/v1/items", item_body("a", colour=1), "items[0].features.colour"),
        ("put", "/v1/items", item_body("a", quality=[1, 2]), "items[0].features.quality"),
        ("put", "/v1/items", item_body("a", quality=[1e39]), "items[0].features.quality"),
        # longer than the index's attribute bound: refused here, not by the worker later
        ("put", "/v1/items", item_body("a", topic="t" * 300), "items[0].features.topic"),
        ("post", "/v1/admin/reload", {}, "bundle"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(client, method, path, body, field):
    assert_error(await client.request(method, path, json=body), 422, "invalid_request", field)


HUGE = "18446744073709551616"  # 2**64, valid JSON, past int64
LONE = '"\\ud800"'  # a lone surrogate, valid JSON, not Unicode a store can hold


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"),
    [
        ("post", "/v1/recommendations", '{"user_id":"u","user_features":{"favs":["t3:abc"]}}',
         "user_features.favs"),
        ("post", "/v1/recommendations", '{"user_id":"u","user_features":{"favs":["t3:nan"]}}',
         "user_features.favs"),
        ("post", "/v1/recommendations", '{"user_id":"u","user_features":{"favs":["t3:inf"]}}',
         "user_features.favs"),
        ("post", "/v1/recommendations", '{"user_id":"u","user_features":{"favs":["t3:1e39"]}}',
         "user_features.favs"),
        ("post", "/v1/recommendations", '{"user_id":"u","user_features":{"age_band":@HUGE@}}',
         "user_features.age_band"),
        ("post", "/v1/recommendations", '{"user_id":"u","context":{"device":@LONE@}}',
         "context.device"),
        ("post", "/v1/recommendations", '{"user_id":"u","context":{@LONE@:1}}', None),
        ("post", "/v1/recommendations", '{"user_id":"u","filter":{"topic":[@LONE@]}}',
         "filter.topic[0]"),
        ("post", "/v1/recommendations", '{"user_id":"u","filter":{"topic":[@HUGE@]}}',
         "filter.topic[0]"),
        ("post", "/v1/users/u/events", '{"events":[{"item_id":"i1","ts":NaN}]}', "events[0].ts"),
        ("post", "/v1/users/u/events", '{"events":[{"item_id":"i1","ts":1e400}]}', "events[0].ts"),
        ("post", "/v1/users/u/events", '{"events":[{"item_id":"i1","weight":NaN}]}',
         "events[0].weight"),
        ("put", "/v1/users/u", '{"features":{"age_band":1e39}}', "features.age_band"),
        ("put", "/v1/users/u", '{"features":{"age_band":@HUGE@}}', "features.age_band"),
        ("put", "/v1/users/u", '{"features":{"age_band":@LONE@}}', "features.age_band"),
        ("put", "/v1/users/u", '{"features":{"favs":[[1]]}}', "features.favs"),
        ("put", "/v1/items", '{"items":[{"item_id":"z","features":{"topic":@HUGE@}}]}',
         "items[0].features.topic"),
        ("put", "/v1/items",
         '{"items":[{"item_id":"z","features":{"topic":99999999999999999999999999}}]}',
         "items[0].features.topic"),
        ("put", "/v1/items", '{"items":[{"item_id":"z","features":{"topic":@LONE@}}]}',
         "items[0].features.topic"),
        ("put", "/v1/items", '{"items":[{"item_id":@LONE@}]}', "items[0].item_id"),
        ("put", "/v1/items", '{"items":[{"item_id":"z","features":{"quality":[NaN]}}]}',
         "items[0].features.quality"),
    ],
)  # fmt: skip
async def test_valid_json_the_service_cannot_hold_is_a_422(client, method, path, raw, field):
    """Each of these was a 500 (issue 13): numbers past int64 / float32, NaN, lone surrogates."""
    headers = {"content-type": "application/json"}
    raw = raw.replace("@HUGE@", HUGE).replace("@LONE@", LONE)
    r = await client.request(method, path, content=raw.encode(), headers=headers)
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "invalid_request"
    if field is not None:
        assert body["field"] == field, body


async def test_not_found_method_and_size_errors(client, serve):
    assert_error(await client.get("/v1/items/never"), 404, "not_found", "item_id")
    assert_error(await client.get("/v1/users/nobody"), 404, "not_found", "user_id")
    assert_error(await client.get("/v1/nothing"), 404, "not_found", None)
    assert_error(await client.get("/v1/recommendations"), 405, "method_not_allowed", None)
    async with serve(max_body_bytes=1024) as small:
        big = await small.post("/v1/recommendations", json={"user_id": "u", "context": "x" * 2000})
        assert_error(big, 413, "body_too_large", "body")


async def test_a_bug_is_a_500_in_the_error_shape(client, model):
    model.rank_error = TypeError("a programming error")
    r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 3})
    assert_error(r, 500, "internal_error", None)
    model.rank_error = RankerError("boom")  # a model failure is a fallback, not an error
    r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 3})
    assert r.json()["fallback_reason"] == "ranker_failed"


async def test_api_keys_guard_the_api_and_admin_routes(serve):
    async with serve(api_keys=["user-key"], admin_api_keys=["admin-key"]) as c:
        body = {"user_id": "known", "k": 2}
        assert_error(
            await c.post("/v1/recommendations", json=body), 401, "unauthorized", "X-API-Key"
        )
        wrong = await c.post("/v1/recommendations", json=body, headers={"X-API-Key": "nope"})
        assert_error(wrong, 401, "unauthorized", "X-API-Key")
        ok = await c.post("/v1/recommendations", json=body, headers={"X-API-Key": "user-key"})
        assert ok.status_code == 200
        user = {"X-API-Key": "user-key"}
        admin = await c.post("/v1/admin/reload", json={"bundle": "fake_2"}, headers=user)
        assert_error(admin, 403, "forbidden", "X-API-Key")
        for path in ("/livez", "/readyz", "/metrics"):
            assert (await c.get(path)).status_code == 200, path


async def test_reload_swaps_or_refuses_and_keeps_serving(client):
    failed = await client.post("/v1/admin/reload", json={"bundle": "missing"})
    assert_error(failed, 409, "reload_failed", "bundle")
    assert "still serving the previous model" in failed.json()["error"]["message"]
    model = (await client.get("/v1/models")).json()
    assert model["version"] == "fake_1" and model["last_reload_error"]
    assert model["catalog_items"] == 40
    swapped = await client.post("/v1/admin/reload", json={"bundle": "fake_2", "force": True})
    assert swapped.status_code == 200 and swapped.json()["version"] == "fake_2"
    r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 3})
    assert r.json()["model_version"] == "fake_2"
    assert (await client.get("/v1/models")).json()["last_reload_error"] is None


async def test_readiness_names_the_failing_dependency(client, index, store):
    assert (await client.get("/readyz")).json()["status"] == "ready"
    index.down = True
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503 and "unavailable" in not_ready.json()["checks"]["index"]
    index.down, store.down = False, True
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503 and "unavailable" in not_ready.json()["checks"]["store"]


async def test_a_put_item_is_indexed_by_the_worker_and_recommended(client):
    body = item_body("fresh", topic="fresh_topic", quality=[1.0])
    assert (await client.put("/v1/items", json=body)).status_code == 202
    started = time.monotonic()
    while (await client.get("/v1/items/fresh")).json()["state"] != "indexed":
        assert time.monotonic() - started < 10, "not indexed within 10 s"
        await anyio.sleep(0.01)
    body = {"user_id": "known", "k": 5, "filter": {"topic": ["fresh_topic"]}}
    got = (await client.post("/v1/recommendations", json=body)).json()["items"]
    assert [i["item_id"] for i in got] == ["fresh"] and got[0]["score"] is not None


async def test_profiles_and_events_round_trip(client):
    features = {"age_band": "old", "favs": ["t1:0.5"]}
    assert (await client.put("/v1/users/p1", json={"features": features})).status_code == 200
    assert (await client.get("/v1/users/p1")).json() == {"user_id": "p1", "features": features}
    events = {"events": [{"item_id": "i1", "type": "click"}]}
    r = await client.post("/v1/users/p1/events", json=events)
    assert r.json() == {"user_id": "p1", "accepted": 1, "attributed": 0, "unknown_item_ids": []}
    body = {"user_id": "p1", "k": 40, "candidates": 40}
    got = (await client.post("/v1/recommendations", json=body)).json()["items"]
    assert "i1" not in {i["item_id"] for i in got}


async def test_fewer_candidates_than_k_are_raised_to_k(client):
    body = {"user_id": "u", "k": 9, "candidates": 3}
    r = await client.post("/v1/recommendations", json=body)
    assert r.status_code == 200 and len(r.json()["items"]) == 9


async def test_a_store_outage_degrades_recommendations_over_http(client, store):
    store.down = True
    r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 3})
    assert r.status_code == 200 and r.json()["fallback_reason"] == "store_unavailable"
    RecommendationResponse.model_validate_json(r.content)  # a degraded answer keeps the schema


@pytest.mark.parametrize("user_id", ["a/b c", 'Müller\'s "x"', "%2F", "events"])
async def test_any_id_round_trips_through_paths_and_bodies(client, user_id):
    """Slashes, spaces, quotes, `%` and Unicode: percent-encoded in paths, as-is in bodies."""
    path = "/v1/users/" + quote(user_id, safe="")
    features = {"age_band": "old"}
    assert (await client.put(path, json={"features": features})).status_code == 200
    assert (await client.get(path)).json() == {"user_id": user_id, "features": features}
    r = await client.post(f"{path}/events", json={"events": [{"item_id": "i1"}]})
    assert r.json()["user_id"] == user_id
    body = {"user_id": user_id, "k": 40, "candidates": 40}
    got = (await client.post("/v1/recommendations", json=body)).json()["items"]
    assert got and "i1" not in {i["item_id"] for i in got}


async def test_an_item_id_with_a_slash_is_queued_found_and_deleted(client):
    item_id = "sku/7 'ü'"
    path = "/v1/items/" + quote(item_id, safe="")
    assert (await client.put("/v1/items", json=item_body(item_id, topic="t1"))).status_code == 202
    assert (await client.get(path)).json()["item_id"] == item_id
    assert (await client.delete(path)).status_code == 202
    assert_error(await client.get("/v1/items/sku%2F8"), 404, "not_found", "item_id")
    assert_error(await client.get("/v1/items/a%0Ab"), 422, "invalid_request", "item_id")


async def test_stored_rows_that_no_longer_encode_degrade_not_fail(client, store):
    """A bad stored profile or catalog row: 200s (the profile named in `fallback_reason`), the
    catalog sync goes on and counts the row it skipped."""
    store.put_profile("known", {"favs": ["t1:1e39"]})
    store.put_items([("i900", {"item_id": "i900", "topic": "t1", "quality": "high"})])
    store.put_items([("i901", {"item_id": "i901", "topic": "t1", "quality": [1.0]})])
    r = await client.post("/v1/recommendations", json={"user_id": "known", "k": 3})
    assert r.status_code == 200, r.text
    assert r.json()["fallback_reason"] == "profile_unencodable" and r.json()["degraded"]
    for _ in range(100):
        text = (await client.get("/metrics")).text
        if "rec_item_table_unencodable 1.0" in text:
            break
        await anyio.sleep(0.02)
    assert "rec_item_table_unencodable 1.0" in text
    assert 'rec_fallbacks_total{reason="profile_unencodable"} 1.0' in text


async def test_a_model_loaded_while_the_index_was_away_serves_popular_until_it_answers(
    serve, model, index
):
    """Started with Milvus down: not ready, popular items (degraded), ready once it answers."""
    model.collection_ready, index.down = False, True
    async with serve() as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "not open yet" in ready.json()["checks"]["index"]
        r = (await client.post("/v1/recommendations", json={"user_id": "known", "k": 5})).json()
        assert r["fallback_reason"] == "index_unavailable"
        assert {i["source"] for i in r["items"]} == {"popular"} and len(r["items"]) == 5
        index.down = False
        for _ in range(200):
            if (await client.get("/readyz")).status_code == 200:
                break
            await anyio.sleep(0.02)
        assert model.collection_ready and (await client.get("/readyz")).status_code == 200
        r = (await client.post("/v1/recommendations", json={"user_id": "known", "k": 5})).json()
        assert not r["degraded"]


async def test_similar_items_over_http(client, index, model):
    r = await client.get("/v1/items/i3/similar", params={"k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [i["item_id"] for i in body["items"]]
    assert len(ids) == 5 and "i3" not in ids and body["model_version"] == "fake_1"
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    exact = [h.item_id for h in index.search("fake_1", index.vectors("fake_1", ["i3"])["i3"], 6)]
    assert ids == [i for i in exact if i != "i3"][:5]
    r = await client.get(
        "/v1/items/i3/similar",
        params={"k": 5, "filter": '{"topic": ["t2"]}', "exclude_item_ids": [ids[0]]},
    )
    kept = [i["item_id"] for i in r.json()["items"]]
    assert r.status_code == 200 and ids[0] not in kept and len(kept) == 5
    assert all(model.items.attributes(i)["topic"] == "t2" for i in kept)
    assert (await client.get("/v1/items/nope/similar")).status_code == 404
    bad = await client.get("/v1/items/i3/similar", params={"filter": "{oops"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "filter"


async def test_sources_session_and_explanations_over_http(client):
    r = await client.post(
        "/v1/recommendations",
        json={
            "user_id": "known",
            "k": 5,
            "candidates": 10,
            "sources": {"two_tower": 0.5, "item_to_item": 0.5},
            "session_events": [{"item_id": "i5"}],
            "diversity": {"attribute": "topic", "max_per_value": 2},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert RecommendationResponse.model_validate_json(r.content).model_dump() == body
    assert body["failed_sources"] == {} and "i5" not in [i["item_id"] for i in body["items"]]
    reasons = {i["explanation"]["reason"] for i in body["items"]}
    assert reasons <= {"for_you", "similar_to"} and "similar_to" in reasons
    bad = await client.post("/v1/recommendations", json={"user_id": "u", "sources": {"x": 1}})
    assert bad.status_code == 422 and "sources" in bad.json()["error"]["field"]
