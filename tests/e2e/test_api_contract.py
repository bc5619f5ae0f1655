"""Bad input -> 4xx naming the field, in one stable error shape; API keys on and off."""

from __future__ import annotations

import pytest

from tests.bodies import item_body
from tests.e2e.support import serving

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/v1/recommendations", {"user_id": "u1", "k": 0}, 422, "k"),
        ("post", "/v1/recommendations", {"user_id": "u1", "k": 201}, 422, "k"),
        ("post", "/v1/recommendations", {"user_id": "u1", "candidates": 1001}, 422, "candidates"),
        ("post", "/v1/recommendations", {"k": 5}, 422, "user_id"),
        ("post", "/v1/recommendations", {"user_id": "bad\tid"}, 422, "user_id"),
        ("post", "/v1/recommendations", {"user_id": "x" * 257}, 422, "user_id"),
        ("post", "/v1/recommendations", {"user_id": "u1", "kk": 5}, 422, "kk"),
        (
            "post",
            "/v1/recommendations",
            {"user_id": "u1", "exclude_item_ids": ["p1"] * 1001},
            422,
            "exclude_item_ids",
        ),
        (
            "post",
            "/v1/recommendations",
            {"user_id": "u1", "filter": {"nope": ["a"]}},
            422,
            "filter.nope",
        ),
        (
            "post",
            "/v1/recommendations",
            {"user_id": "u1", "context": {"colour": "red"}},
            422,
            "context.colour",
        ),
        ("post", "/v1/users/u1/events", {"events": []}, 422, "events"),
        ("post", "/v1/users/u1/events", {"events": [{"type": "read"}]}, 422, "events[0].item_id"),
        ("put", "/v1/users/u1", {"features": {"post_id": "p1"}}, 422, "features.post_id"),
        (
            "put",
            "/v1/items",
            {"items": [{"features": {"topic_id": "t1"}}]},
            422,
            "items[0].item_id",
        ),
        ("put", "/v1/items", item_body("p1", post_id="p1"), 422, "items[0].features.post_id"),
        (
            "put",
            "/v1/items",
            item_body("p1", colour="red"),
            422,
            "items[0].features.colour",
        ),
        (
            "put",
            "/v1/items",
            item_body("p1", topic_id="t1", post_vec=[1.0, 2.0]),
            422,
            "items[0].features.post_vec",
        ),
        ("post", "/v1/admin/reload", {}, 422, "bundle"),
    ],
)
async def test_bad_input_names_the_field(client, method, path, body, status, field):
    response = await client.request(method, path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error", "request_id"}
    assert error["error"]["field"] == field, error
    assert error["error"]["code"] == "invalid_request"
    assert "Traceback" not in response.text


async def test_malformed_json_and_huge_bodies(client, deployment):
    bad = await client.post(
        "/v1/recommendations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "body"
    async with serving(deployment.settings(max_body_bytes=2048, index_worker=False)) as small:
        big = await small.post(
            "/v1/recommendations", json={"user_id": "u1", "exclude_item_ids": ["p1"] * 500}
        )
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "body_too_large"


async def test_unknown_route_and_method(client):
    assert (await client.get("/v1/nothing")).json()["error"]["code"] == "not_found"
    assert (await client.get("/v1/recommendations")).status_code == 405


async def test_api_keys_guard_routes_and_admin_routes(deployment):
    settings = deployment.settings(api_keys=["user-key"], admin_api_keys=["admin-key"])
    async with serving(settings) as c:
        body = {"user_id": "u1", "k": 3}
        missing = await c.post("/v1/recommendations", json=body)
        assert missing.status_code == 401 and missing.json()["error"]["field"] == "X-API-Key"
        wrong = await c.post("/v1/recommendations", json=body, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        ok = await c.post("/v1/recommendations", json=body, headers={"X-API-Key": "user-key"})
        assert ok.status_code == 200
        admin = await c.post(
            "/v1/admin/reload", json={"bundle": "/x"}, headers={"X-API-Key": "user-key"}
        )
        assert admin.status_code == 403
        admin_ok = await c.post(
            "/v1/admin/reload", json={"bundle": "/nonexistent"}, headers={"X-API-Key": "admin-key"}
        )
        # authorized; the path itself is refused (outside RECSYS_BUNDLES_ROOT)
        assert admin_ok.status_code == 403 and admin_ok.json()["error"]["field"] == "bundle"
        assert "bundles root" in admin_ok.json()["error"]["message"]
        assert (await c.get("/livez")).status_code == 200  # probes stay open
        assert (await c.get("/metrics")).status_code == 200


async def test_auth_off_without_keys(client):
    assert (await client.post("/v1/recommendations", json={"user_id": "u1", "k": 1})).is_success


async def test_openapi_documents_every_route_with_examples(client):
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/v1/recommendations",
        "/v1/users/{user_id}/events",
        "/v1/users/{user_id}",
        "/v1/items",
        "/v1/items/{item_id}",
        "/v1/models",
        "/v1/admin/reload",
        "/livez",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
        for operation in paths[path].values():
            assert operation.get("summary"), path
    schemas = spec["components"]["schemas"]
    assert schemas["RecommendationRequest"]["examples"]
    assert "ErrorResponse" in schemas
    assert "422" in paths["/v1/recommendations"]["post"]["responses"]


async def test_the_served_model_is_named_without_a_host_path(client, deployment):
    model = (await client.get("/v1/models")).json()
    root = deployment.settings().bundles_root
    assert model["path"] == deployment.bundle.relative_to(root).as_posix()  # what a reload takes
    assert str(deployment.bundle.parent) not in str(model)
