"""The app on the fakes behind a real uvicorn on loopback: what only real sockets show
(keep-alive after an error, overload, slow clients)."""

from __future__ import annotations

import httpx

from tests.live import live


def test_a_500_keeps_its_request_id_and_closes_the_connection_cleanly(make_app, model):
    """A client with a connection pool must not see the next, unrelated request fail."""
    with live(make_app()) as url, httpx.Client(base_url=url, timeout=10) as client:
        body = {"user_id": "known", "k": 3}
        assert client.post("/v1/recommendations", json=body).status_code == 200
        model.rank_error = TypeError("a programming error")
        r = client.post("/v1/recommendations", json=body, headers={"X-Request-ID": "bug-1"})
        assert r.status_code == 500
        assert r.json()["request_id"] == "bug-1" and r.headers["x-request-id"] == "bug-1"
        assert r.headers["connection"] == "close"
        model.rank_error = None
        for _ in range(3):  # the pool's next requests, on a fresh connection
            assert client.post("/v1/recommendations", json=body).status_code == 200
