"""Property: no request body, however hostile, makes the API answer 5xx, and the service stays
ready (the app over the fakes: a real exact index and a real SQLite store)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings

from service.app import create_app
from service.index.exact import ExactIndex
from service.settings import Settings
from service.state import open_store
from tests import fuzz
from tests.fakes import SCHEMA, FakeModel, catalog, deploy, fake_loader

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'state.db'}"
    index, store = ExactIndex(), open_store(uri)
    items = catalog()
    model = FakeModel(index, items)
    deploy(model, store, items)
    app = create_app(
        Settings(
            bundle=Path("fake_1"),
            milvus_uri="memory://",
            store_uri=uri,
            log_level="ERROR",
            index_poll_s=0.01,
            sync_interval_s=0.05,
        ),
        adapters=lambda _settings: (index, store),
        load_model=fake_loader({"fake_1": model}),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
        assert client.get("/readyz").status_code == 200
        deadline = time.monotonic() + 5
        while store.pending_count() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.failed_items() == [], "an accepted item was refused by the index later"


def assert_no_5xx(response) -> None:
    assert response.status_code < 500, response.text


# the cases, always tried first; the strategies explore around them
NAN = float("nan")


@FUZZ
@example(body={"user_id": "u1", "filter": {"topic": ["\ud800"]}})
@example(body={"user_id": "u1", "user_features": {"favs": ["t3:1e39"]}})
@given(body=fuzz.recommendation_bodies(SCHEMA))
def test_recommendation_bodies(api: TestClient, body):
    assert_no_5xx(api.post("/v1/recommendations", content=fuzz.encode(body), headers=JSON))


@FUZZ
@example(user_id="u1", body={"features": {"age_band": 2**64}})
@example(user_id="u1", body={"features": {"age_band": "\ud800"}})
@given(user_id=fuzz.user_ids(), body=fuzz.profile_bodies(SCHEMA))
def test_profile_bodies_and_the_recommendation_after_them(api: TestClient, user_id, body):
    stored = api.put(fuzz.user_path(user_id), content=fuzz.encode(body), headers=JSON)
    assert_no_5xx(stored)
    if stored.status_code == 200:  # a stored profile is read by every later recommendation
        body = {"user_id": user_id, "k": 5}
        assert_no_5xx(api.post("/v1/recommendations", content=fuzz.encode(body), headers=JSON))


@FUZZ
@example(user_id="u1", body={"events": [{"item_id": "i1", "ts": NAN}]})
@given(user_id=fuzz.user_ids(), body=fuzz.event_bodies())
def test_event_bodies(api: TestClient, user_id, body):
    path = fuzz.user_path(user_id) + "/events"
    assert_no_5xx(api.post(path, content=fuzz.encode(body), headers=JSON))


@FUZZ
@example(body={"items": [{"item_id": "fz1", "topic": 10**30}]})
@example(body={"items": [{"item_id": "fz1", "features": {"topic": "\ud800"}}]})
@given(body=fuzz.item_bodies(SCHEMA))
def test_item_bodies(api: TestClient, body):
    assert_no_5xx(api.put("/v1/items", content=fuzz.encode(body), headers=JSON))
