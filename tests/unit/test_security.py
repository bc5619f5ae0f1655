"""Secrets and reload safety on the fakes: credentials never shown, reloads confined to the
bundles root, error bodies free of absolute paths."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import orjson
import pytest

from service.logs import JsonFormatter
from service.redact import public, redact
from service.settings import Settings, reload_root
from service.validation import InvalidInput, check_bundle_path
from tests.bodies import item_body

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis store redis://:s3cret@10.0.0.5:6379/0: down", "redis://:***@10.0.0.5:6379/0"),
        ("rediss://app:s3cret@h:6380/1", "rediss://app:***@h:6380/1"),
        ("Milvus at http://root:s3cret@milvus:19530 unavailable", "http://root:***@milvus:19530"),
        ("unix://:s3cret@/run/redis.sock", "unix://:***@/run/redis.sock"),
        ("http://s3cret@host", "http://***@host"),
    ],
)
def test_credentials_in_uris_are_hidden(text: str, shown: str):
    assert shown in redact(text) and "s3cret" not in redact(text)


def test_uris_without_credentials_and_other_text_are_kept():
    text = "redis://127.0.0.1:6379/0 and http://host:19530/a/b, user@example.org"
    assert redact(text) == text


def test_public_text_has_no_absolute_paths():
    text = "bundle /srv/bundles/v7: /srv/bundles/v7/ranker.onnx; see http://h:1/x and data/s.db"
    assert public(text) == "bundle v7: ranker.onnx; see http://h:1/x and data/s.db"


def test_log_lines_redact_messages_and_tracebacks():
    try:
        raise ConnectionError("cannot reach redis://:pw@h:1/0")
    except ConnectionError:
        record = logging.makeLogRecord(
            {"msg": "store %s down", "args": ("redis://:pw@h:1/0",), "exc_info": sys.exc_info()}
        )
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "store redis://:***@h:1/0 down"
    assert "redis://:***@h:1/0" in line["exc"] and ":pw@" not in line["exc"]


def test_the_reload_root_defaults_to_the_configured_bundles_folder(tmp_path: Path):
    assert reload_root(Settings(bundle=tmp_path / "b" / "v1")) == (tmp_path / "b").resolve()
    assert (
        reload_root(Settings(bundle=tmp_path / "v1", bundles_root=tmp_path / "r"))
        == (tmp_path / "r").resolve()
    )
    with pytest.raises(InvalidInput, match="reloads are off"):
        check_bundle_path("v1", reload_root(Settings(bundle=None)))


def test_bundle_paths_inside_the_root_resolve(tmp_path: Path, monkeypatch):
    root = (tmp_path / "bundles").resolve()
    (root / "v2").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert check_bundle_path("bundles/v2", root) == root / "v2"  # from the working directory
    assert check_bundle_path("v2", root) == root / "v2"  # a bare version name
    assert check_bundle_path(str(root / "v2"), root) == root / "v2"


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path):
    root = (tmp_path / "bundles").resolve()
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="not a folder inside the bundles root"):
        check_bundle_path(str(root / "escape"), root)


@pytest.mark.parametrize(
    ("bundle", "status", "rule"),
    [
        ("../../etc", 422, "without '.' or '..' components"),
        (".", 422, "without '.' or '..' components"),
        ("fake_1/../..", 422, "without '.' or '..' components"),
        ("/proc/self", 403, "not a folder inside the bundles root"),
        ("/etc", 403, "not a folder inside the bundles root"),
        ("fake\x00_2", 422, "without control characters"),
        ("a\nb", 422, "without control characters"),
        ("x" * 256, 422, "at most 255 bytes"),
        ("ok/" + "é" * 128, 422, "at most 255 bytes"),
        ("ok/é", 422, "letters, digits"),
        ("\ud800", 422, "unicode string"),
    ],
)
async def test_a_reload_outside_the_bundles_root_is_refused(
    client, bundle: str, status: int, rule: str
):
    """A path that breaks the rule the OpenAPI declares is a 422; a well-formed one that
    points outside the bundles root a 403."""
    raw = json.dumps({"bundle": bundle}).encode()  # \ud800 escaped, as a client sends it
    r = await client.post(
        "/v1/admin/reload", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == "bundle" and rule in error["message"]
    assert (await client.get("/v1/models")).json()["version"] == "fake_1"
    assert client.loads == ["fake_1"]  # nothing else was even read


async def test_the_model_description_shows_no_absolute_path(client):
    model = (await client.get("/v1/models")).json()
    assert model["path"] == "fake_1"  # the fake's bundle is /bundles/fake_1


async def test_a_failed_reload_shows_no_absolute_path(client):
    r = await client.post("/v1/admin/reload", json={"bundle": str(Path.cwd() / "missing")})
    assert r.status_code == 409, r.text
    assert str(Path.cwd()) not in r.text and "/" not in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/users/u1/events", {"events": [{"item_id": "i1"}]}),
        ("put", "/v1/users/u1", {"features": {"age_band": "old"}}),
        ("get", "/v1/users/u1", None),
        ("put", "/v1/items", item_body("i1", topic="t1", quality=[0.0])),
        ("delete", "/v1/items/i1", None),
        ("get", "/v1/items/i1", None),
    ],
)
async def test_a_store_outage_on_writes_and_reads_is_a_503_with_retry_after(
    client, store, method, path, body
):
    store.down = True
    r = await client.request(method, path, json=body)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "unavailable"
    store.down = False
    assert (await client.request(method, path, json=body)).status_code in (200, 202, 404)


async def test_the_key_is_checked_before_the_body_is_read(serve):
    async with serve(api_keys=["user-key"]) as c:
        for body in (b"{not json", b'{"user_id": 5}', b"\xff" * 10):
            r = await c.post("/v1/recommendations", content=body)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


PREFLIGHT = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}


async def test_cors_is_off_unless_origins_are_configured(serve):
    async with serve() as c:
        r = await c.options("/v1/recommendations", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in r.headers
        r = await c.post(
            "/v1/recommendations", json={"user_id": "known", "k": 1}, headers=PREFLIGHT
        )
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_configured_origins_and_only_they_get_cors_headers(serve):
    async with serve(cors_origins=["https://shop.example"]) as c:
        allowed = await c.options("/v1/recommendations", headers=PREFLIGHT)
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        other = {**PREFLIGHT, "Origin": "https://evil.example"}
        refused = await c.options("/v1/recommendations", headers=other)
        assert "access-control-allow-origin" not in refused.headers
