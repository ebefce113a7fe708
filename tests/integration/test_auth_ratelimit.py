"""Rate limits on the server's real middleware stack: per client address (before authentication, so
credential guessing is limited), per API key and per organisation, each a 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.server import _guarded, build, rate_buckets


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    opened: list[Any] = []

    def _make(**limits: str) -> tuple[Any, Any]:
        overrides = {"storage.data_dir": str(tmp_path / f"data{len(opened)}"), **{f"auth.{k}": v for k, v in limits.items()}}
        cfg = load_config(env={}, overrides=overrides)
        built = build(cfg)
        opened.append(built)
        # the buckets' clock stands still: a slow request on a loaded machine (an Argon2 check per
        # failed login) must not refill them between the requests under test
        buckets = rate_buckets(cfg)
        for b in buckets:
            b.clock = lambda: 1000.0
        return built, _guarded(create_app(built.services), cfg, built.auth, buckets=buckets)

    yield _make
    for built in opened:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        built.auth.close()


def _client(app: Any, host: str) -> TestClient:
    return TestClient(app, client=(host, 40000), base_url="http://127.0.0.1")


def test_per_address_limit_stops_credential_guessing(make: Any) -> None:
    _, app = make(rate_limit_ip="1", rate_limit_ip_burst="3")
    c = _client(app, "10.0.0.20")
    codes = [c.post("/api/v1/auth/login", json={"username": "admin", "password": f"guess {i} xxxxxxxx"}).status_code
             for i in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
    r = c.get("/health")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["errorType"] == "too_many_requests" and "auth.rate_limit_ip" in r.json()["error"]
    assert _client(app, "10.0.0.21").get("/health").status_code == 200  # another address


def test_per_key_and_per_org_limits(make: Any) -> None:
    built, app = make(rate_limit_key="1", rate_limit_key_burst="2", rate_limit_org="1", rate_limit_org_burst="3")
    built.auth.directory.create_org("team-b")
    a1 = {"Authorization": f"Bearer {built.auth.keys.create('default', 'a1', 'viewer')[1]}"}
    a2 = {"Authorization": f"Bearer {built.auth.keys.create('default', 'a2', 'viewer')[1]}"}
    b1 = {"Authorization": f"Bearer {built.auth.keys.create('team-b', 'b1', 'viewer')[1]}"}
    c = _client(app, "10.0.0.30")
    q = {"query": "1"}
    assert [c.get("/api/v1/query", params=q, headers=a1).status_code for _ in range(3)] == [200, 200, 429]
    r = c.get("/api/v1/query", params=q, headers=a2)  # another key of the same organisation: the org's 3rd
    assert r.status_code == 200
    r = c.get("/api/v1/query", params=q, headers=a2)
    assert r.status_code == 429 and "auth.rate_limit_org" in r.json()["error"] and r.headers["retry-after"]
    assert c.get("/api/v1/query", params=q, headers=b1).status_code == 200  # another organisation
    assert c.get("/api/v1/query", params=q, headers={"Authorization": "Bearer cs_" + "x" * 40}).status_code == 401


def test_limits_off_by_default(make: Any) -> None:
    built, app = make()
    key = {"Authorization": f"Bearer {built.auth.keys.create('default', 'k', 'viewer')[1]}"}
    c = _client(app, "10.0.0.40")
    assert {c.get("/api/v1/query", params={"query": "1"}, headers=key).status_code for _ in range(150)} == {200}
