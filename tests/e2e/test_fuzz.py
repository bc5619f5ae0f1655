"""Property: no hostile body makes the API answer 5xx, with the real parts (a trained bundle,
Milvus Lite, SQLite), and the service stays ready; an item it accepted is never refused by
the index later."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from service.app import create_app
from service.bundle import load_bundle
from service.features import FeatureSchema
from service.state import open_store
from tests import fuzz
from tests.e2e.support import deploy

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def schema(posts_bundle: Path) -> FeatureSchema:
    return load_bundle(posts_bundle).encoder.schema


@pytest.fixture(scope="module")
def api(posts_bundle: Path, posts_dir: Path, tmp_path_factory) -> Iterator[TestClient]:
    workdir = tmp_path_factory.mktemp("fuzz")
    dep = deploy(
        posts_bundle, posts_dir, workdir, str(workdir / "m.db"), f"sqlite:///{workdir}/s.db"
    )
    with TestClient(create_app(dep.settings()), raise_server_exceptions=False) as client:
        yield client
        assert client.get("/readyz").status_code == 200
    store = open_store(dep.store_uri)
    deadline = time.monotonic() + 5
    while store.pending_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.failed_items() == [], "an accepted item was refused by the index later"
    store.close()


def test_hostile_bodies_never_get_a_5xx(api: TestClient, schema):
    @FUZZ
    @given(body=fuzz.recommendation_bodies(schema))
    def recommendations(body):
        r = api.post("/v1/recommendations", content=fuzz.encode(body), headers=JSON)
        assert r.status_code < 500, r.text

    @FUZZ
    @given(user_id=fuzz.user_ids(), body=fuzz.profile_bodies(schema))
    def profiles(user_id, body):
        r = api.put(fuzz.user_path(user_id), content=fuzz.encode(body), headers=JSON)
        assert r.status_code < 500, r.text
        if r.status_code == 200:
            again = {"user_id": user_id, "k": 5}
            r = api.post("/v1/recommendations", content=fuzz.encode(again), headers=JSON)
            assert r.status_code < 500, r.text

    @FUZZ
    @given(user_id=fuzz.user_ids(), body=fuzz.event_bodies())
    def events(user_id, body):
        r = api.post(fuzz.user_path(user_id) + "/events", content=fuzz.encode(body), headers=JSON)
        assert r.status_code < 500, r.text

    @FUZZ
    @given(body=fuzz.item_bodies(schema))
    def items(body):
        r = api.put("/v1/items", content=fuzz.encode(body), headers=JSON)
        assert r.status_code < 500, r.text

    for run in (recommendations, profiles, events, items):
        run()
