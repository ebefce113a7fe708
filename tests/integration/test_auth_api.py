"""The identity endpoints on the real app stack (in process): login/logout/me, and the admin API's
bad input (precise 4xx, nothing written) and privilege escalation attempts (403, nothing written)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.auth.system import AuthSystem
from clearsight.config import load_config
from clearsight.server import Built, _guarded, build

PW = "correct horse battery"


@dataclass
class Env:
    built: Built
    auth: AuthSystem
    client: TestClient

    def key(self, role: str, org: str = "default") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth.keys.create(org, role + '-k', role)[1]}"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    assert built.auth is not None
    app = _guarded(create_app(built.services), cfg, built.auth)
    try:
        with TestClient(app, client=("10.0.0.5", 40000), base_url="http://127.0.0.1") as c:
            yield Env(built, built.auth, c)
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        built.auth.close()


def _err(r: Any, status: int, fragment: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error" and fragment in body["error"], body


def test_login_me_logout(env: Env) -> None:
    env.auth.directory.create_user("alice", PW, "default", "viewer")
    c = env.client
    _err(c.post("/api/v1/auth/login", content=b"{}", headers={"Content-Type": "text/plain"}), 415, "application/json")
    _err(c.post("/api/v1/auth/login", content=b"{nope", headers={"Content-Type": "application/json"}), 400, "invalid JSON")
    _err(c.post("/api/v1/auth/login", json=["alice"]), 400, "JSON object")
    _err(c.post("/api/v1/auth/login", json={"username": "alice"}), 400, '"password"')
    _err(c.post("/api/v1/auth/login", json={"username": "alice", "password": 5}), 400, '"password"')
    _err(c.post("/api/v1/auth/login", json={"username": "nobody", "password": PW}), 401, "invalid username or password")
    _err(c.post("/api/v1/auth/login", json={"username": "alice", "password": PW, "org": "elsewhere"}), 403, "not a member")
    r = c.post("/api/v1/auth/login", json={"username": "alice", "password": PW})
    assert r.status_code == 200
    token = r.json()["data"]["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    me = c.get("/api/v1/auth/me", headers=bearer).json()["data"]
    assert me["kind"] == "user" and me["name"] == "alice" and me["roles"] == ["viewer"] and not me["anonymous"]
    assert "metrics:write" not in me["permissions"]
    assert c.post("/api/v1/auth/logout", headers=bearer).status_code == 200
    _err(c.get("/api/v1/auth/me", headers=bearer), 401, "invalid credentials")
    _err(c.get("/api/v1/auth/me"), 401, "authentication required")


def test_admin_bad_input_writes_nothing(env: Env) -> None:
    admin = env.key("admin")
    c = env.client
    before_users = env.auth.directory.list_members("default")
    for body, fragment in (({"username": "bob", "password": "short", "role": "viewer"}, "at least 12"),
                           ({"username": "bad name", "password": PW}, "username"),
                           ({"username": "bob", "password": PW, "role": "nope"}, "unknown role"),
                           ({"password": PW}, '"username"')):
        _err(c.post("/api/v1/admin/users", json=body, headers=admin), 400, fragment)
    assert env.auth.directory.list_members("default") == before_users
    before_keys = env.auth.keys.list("default")
    for body, fragment in (({"name": "k", "role": "viewer", "allowed_cidrs": ["10.0.0.0/33"]}, "invalid CIDR"),
                           ({"name": "k", "role": "viewer", "allowed_cidrs": "10.0.0.0/8"}, "list of CIDRs"),
                           ({"name": "k", "role": "viewer", "expires_in": "soon"}, "expires_in"),
                           ({"name": "", "role": "viewer"}, '"name"'),
                           ({"name": "k", "role": "nope"}, "unknown role")):
        _err(c.post("/api/v1/admin/apikeys", json=body, headers=admin), 400, fragment)
    _err(c.post("/api/v1/admin/apikeys", content=b"name=k", headers={**admin, "Content-Type": "application/x-www-form-urlencoded"}),
         415, "application/json")
    assert env.auth.keys.list("default") == before_keys
    _err(c.post("/api/v1/admin/roles", json={"name": "r", "permissions": ["metrics:delete"]}, headers=admin), 400,
         "unknown permissions")
    _err(c.post("/api/v1/admin/roles", json={"name": "r", "permissions": "metrics:read"}, headers=admin), 400,
         "list of permission")
    _err(c.delete("/api/v1/admin/apikeys/abc", headers=admin), 404, "not found")
    _err(c.delete("/api/v1/admin/roles/viewer", headers=admin), 400, "built in")
    assert [r["name"] for r in c.get("/api/v1/admin/roles", headers=admin).json()["data"] if not r["builtin"]] == []


def test_no_privilege_escalation(env: Env) -> None:
    admin = env.key("admin")  # admin of its organisation, without orgs:cross
    c = env.client
    before = env.auth.keys.list("default")
    _err(c.post("/api/v1/admin/apikeys", json={"name": "up", "role": "superadmin"}, headers=admin), 403, "orgs:cross")
    _err(c.post("/api/v1/admin/roles", json={"name": "gw", "permissions": ["orgs:cross"]}, headers=admin), 403,
         "orgs:cross")
    _err(c.post("/api/v1/admin/users", json={"username": "mallory", "password": PW, "role": "superadmin"},
                headers=admin), 403, "orgs:cross")
    assert env.auth.keys.list("default") == before
    assert [m.username for m in env.auth.directory.list_members("default")] == ["admin"]
    # keys:manage alone cannot mint a key stronger than itself
    env.auth.directory.create_role("default", "keymaster", ["keys:manage"])
    km = env.key("keymaster")
    _err(c.post("/api/v1/admin/apikeys", json={"name": "w", "role": "editor"}, headers=km), 403, "metrics:write")
    ok = c.post("/api/v1/admin/apikeys", json={"name": "same", "role": "keymaster"}, headers=km)
    assert ok.status_code == 200 and ok.json()["data"]["key"].startswith("cs_")


def test_admin_changes_apply_at_once(env: Env) -> None:
    admin = env.key("admin")
    c = env.client
    r = c.post("/api/v1/admin/users", json={"username": "carol", "password": PW, "role": "editor"}, headers=admin)
    assert r.status_code == 200
    carol = {"Authorization": f"Bearer {c.post('/api/v1/auth/login', json={'username': 'carol', 'password': PW}).json()['data']['token']}"}
    assert c.post("/api/v1/write", content=b"", headers={**carol, "Content-Type": "text/plain"}).status_code == 415
    r = c.put("/api/v1/admin/memberships", json={"username": "carol", "role": "viewer"}, headers=admin)
    assert r.status_code == 200
    _err(c.post("/api/v1/write", content=b"", headers=carol), 403, "metrics:write")  # the cache was cleared
    uid = r.json()["data"]["id"]
    assert c.delete(f"/api/v1/admin/users/{uid}", headers=admin).status_code == 200
    _err(c.get("/api/v1/auth/me", headers=carol), 401, "invalid credentials")
