"""Per-organisation IP allowlists on the server's real middleware stack: set through
``PUT /api/v1/admin/ip_allowlist`` (org:manage, audited, refusing a list that would lock the caller
out), then every credential of that organisation (API key, password session, basic auth, signed
ingestion) is refused (403) from other addresses, while other organisations are unaffected."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from clearsight.auth.audit import AuditLog
from clearsight.auth.signing import SigningSecrets, signature
from tests.support.auth_stack import PW, Stack, auth_stack

INSIDE, OUTSIDE = "10.0.0.9", "192.0.2.7"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with auth_stack(tmp_path, **{"auth.anonymous": "off"}) as s:
        yield s


def _client(stack: Stack, host: str) -> TestClient:
    return TestClient(stack.app, client=(host, 40000), base_url="http://127.0.0.1")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_organisation_allowlist_applies_to_all_its_credentials(stack: Stack) -> None:
    auth = stack.built.auth
    assert auth is not None
    admin = auth.keys.create("default", "admin", "admin")[1]
    other = auth.keys.create("team-b", "b", "viewer")[1]
    inside, outside = _client(stack, INSIDE), _client(stack, OUTSIDE)
    q = {"query": "vector(1)"}
    assert inside.get("/api/v1/admin/ip_allowlist", headers=_bearer(admin)).json()["data"] == {"cidrs": []}
    # bad input: nothing written
    for body, why in (
        ({"cidrs": ["192.0.2.0/24"]}, "lock you out"),
        ({"cidrs": ["10.0.0.0/8", "nope"]}, "invalid CIDR"),
        ({"cidrs": "10.0.0.0/8"}, "list"),
        ({}, "list"),
    ):
        r = inside.put("/api/v1/admin/ip_allowlist", json=body, headers=_bearer(admin))
        assert r.status_code == 400 and why in r.json()["error"], r.text
    assert outside.get("/api/v1/query", params=q, headers=_bearer(admin)).status_code == 200
    viewer = auth.keys.create("default", "v", "viewer")[1]
    assert (
        inside.put(
            "/api/v1/admin/ip_allowlist", json={"cidrs": ["10.0.0.0/8"]}, headers=_bearer(viewer)
        ).status_code
        == 403
    )  # org:manage only
    r = inside.put(
        "/api/v1/admin/ip_allowlist", json={"cidrs": ["10.0.0.0/8", "2001:db8::/32"]}, headers=_bearer(admin)
    )
    assert r.status_code == 200 and r.json()["data"] == {"cidrs": ["10.0.0.0/8", "2001:db8::/32"]}

    assert inside.get("/api/v1/query", params=q, headers=_bearer(admin)).status_code == 200
    r = outside.get("/api/v1/query", params=q, headers=_bearer(admin))
    assert r.status_code == 403 and "does not accept requests from this address" in r.json()["error"]
    assert (
        outside.get("/api/v1/query", params=q, headers=_bearer(other)).status_code == 200
    )  # team-b: no list
    # a password session made inside is refused outside; basic auth too
    session = inside.post("/api/v1/auth/login", json={"username": "alice", "password": PW}).json()["data"][
        "token"
    ]
    inside.cookies.clear()
    assert inside.get("/api/v1/auth/me", headers=_bearer(session)).status_code == 200
    assert outside.get("/api/v1/auth/me", headers=_bearer(session)).status_code == 403
    basic = {"Authorization": "Basic " + base64.b64encode(f"alice:{PW}".encode()).decode()}
    assert outside.get("/api/v1/query", params=q, headers=basic).status_code == 403
    # signed ingestion of the organisation from outside: refused, nothing written
    key_id, secret = SigningSecrets(auth.db).create("default", "edge")
    body = orjson.dumps({"streams": [{"stream": {"app": "fenced"}, "values": [[str(time.time_ns()), "x"]]}]})
    t = str(int(time.time()))
    signed = {
        "Content-Type": "application/json",
        "x-org-key": secret_key_id(key_id),
        "x-timestamp": t,
        "x-signature": signature(secret.encode(), t, body),
    }
    assert outside.post("/loki/api/v1/push", content=body, headers=signed).status_code == 403
    t2 = str(int(time.time()) + 1)
    signed_in = {**signed, "x-timestamp": t2, "x-signature": signature(secret.encode(), t2, body)}
    assert inside.post("/loki/api/v1/push", content=body, headers=signed_in).status_code == 204
    # removing the list opens it again; both changes are audited
    assert (
        inside.put("/api/v1/admin/ip_allowlist", json={"cidrs": []}, headers=_bearer(admin)).status_code
        == 200
    )
    assert outside.get("/api/v1/query", params=q, headers=_bearer(admin)).status_code == 200
    entries = AuditLog(auth.db).query("default", action="org.ip_allowlist")
    assert [e["outcome"] for e in entries].count("success") == 2


def secret_key_id(view: object) -> str:
    return str(view.key_id)  # type: ignore[attr-defined]


def test_each_organisation_sets_only_its_own_list(stack: Stack) -> None:
    auth = stack.built.auth
    assert auth is not None
    admin_b = auth.keys.create("team-b", "b-admin", "admin")[1]
    admin = auth.keys.create("default", "admin", "admin")[1]
    inside = _client(stack, INSIDE)
    assert (
        inside.put(
            "/api/v1/admin/ip_allowlist", json={"cidrs": ["10.0.0.9/32"]}, headers=_bearer(admin_b)
        ).status_code
        == 200
    )
    assert inside.get("/api/v1/admin/ip_allowlist", headers=_bearer(admin)).json()["data"] == {"cidrs": []}
    assert _client(stack, OUTSIDE).get("/api/v1/auth/me", headers=_bearer(admin)).status_code == 200
    assert _client(stack, OUTSIDE).get("/api/v1/auth/me", headers=_bearer(admin_b)).status_code == 403
