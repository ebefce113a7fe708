"""Audit, trace ids, security headers and CSRF on the server's real middleware stack (build() and
_guarded(), as serve() runs them): logins and failures, key changes and cross-organisation reads are
recorded with actor, organisation, IP, user agent and trace id; GET /api/v1/audit filters and is
scoped to the caller's organisation; every answer carries X-Trace-Id, traceparent and the security
headers; cookie sessions need X-CSRF-Token for changes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.api.trace_context import TraceLogFilter
from clearsight.auth.audit import AuditLog
from clearsight.config import load_config
from clearsight.server import Built, _guarded, build

PW = "correct horse battery staple"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass
class Stack:
    built: Built
    app: Any
    admin_key: str
    viewer_key: str
    b_admin_key: str

    def client(self, host: str = "10.0.0.7") -> TestClient:
        return TestClient(self.app, client=(host, 40000), base_url="http://127.0.0.1")

    @property
    def audit(self) -> AuditLog:
        assert self.built.auth is not None
        return AuditLog(self.built.auth.db)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    auth = built.auth
    assert auth is not None
    auth.directory.create_org("team-b")
    auth.directory.create_user("alice", PW, "default", "admin")
    auth.directory.create_user("root", PW, "default", "superadmin")
    stack = Stack(built, _guarded(create_app(built.services), cfg, auth),
                  auth.keys.create("default", "admin-key", "admin")[1],
                  auth.keys.create("default", "viewer-key", "viewer")[1],
                  auth.keys.create("team-b", "b-admin", "admin")[1])
    try:
        yield stack
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        auth.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_logins_and_failures_are_audited_with_ip_agent_and_trace(stack: Stack) -> None:
    c = stack.client()
    tp = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "User-Agent": "audit-test/1"}
    r = c.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong password here"}, headers=tp)
    assert r.status_code == 401
    assert r.headers["x-trace-id"] == TRACE and r.headers["traceparent"].startswith(f"00-{TRACE}-")
    r = c.post("/api/v1/auth/login", json={"username": "alice", "password": PW}, headers={"User-Agent": "audit-test/1"})
    assert r.status_code == 200
    rows = stack.audit.query("default", action="auth.login")
    assert [(x["actor"], x["outcome"]) for x in rows] == [("user:alice", "success"), ("user:alice", "failure")]
    fail = rows[1]
    assert fail["source_ip"] == "10.0.0.7" and fail["user_agent"] == "audit-test/1" and fail["trace_id"] == TRACE
    assert fail["detail"]["status"] == 401 and "password" not in fail["detail"]
    assert rows[0]["trace_id"] == r.headers["x-trace-id"]
    assert stack.audit.verify().ok


def test_key_changes_are_audited_without_the_secret(stack: Stack) -> None:
    c = stack.client()
    r = c.post("/api/v1/admin/apikeys", json={"name": "ci", "role": "ingest"}, headers=bearer(stack.admin_key))
    assert r.status_code == 200
    key, key_id = r.json()["data"]["key"], r.json()["data"]["id"]
    assert c.delete(f"/api/v1/admin/apikeys/{key_id}", headers=bearer(stack.admin_key)).status_code == 200
    r = c.post("/api/v1/admin/roles", json={"name": "bad", "permissions": ["nope"]}, headers=bearer(stack.admin_key))
    assert r.status_code == 400
    rows = stack.audit.query("default")
    actions = [(x["action"], x["outcome"], x["actor"]) for x in rows]
    assert actions[:3] == [("role.create", "failure", "apikey:admin-key"), ("apikey.revoke", "success", "apikey:admin-key"),
                           ("apikey.create", "success", "apikey:admin-key")]
    assert rows[2]["detail"]["name"] == "ci" and rows[2]["detail"]["role"] == "ingest"
    assert all(key not in str(x) for x in rows)


def test_audit_api_filters_and_is_scoped_to_the_callers_org(stack: Stack) -> None:
    c = stack.client()
    c.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong password here"})
    c.post("/api/v1/admin/apikeys", json={"name": "b-ci", "role": "viewer"}, headers=bearer(stack.b_admin_key))
    r = c.get("/api/v1/audit", headers=bearer(stack.admin_key))
    assert r.status_code == 200
    assert [x["action"] for x in r.json()["data"]] == ["auth.login"]
    r = c.get("/api/v1/audit", params={"outcome": "success"}, headers=bearer(stack.admin_key))
    assert r.json()["data"] == []
    r = c.get("/api/v1/audit", headers=bearer(stack.b_admin_key))
    assert [x["action"] for x in r.json()["data"]] == ["apikey.create"]  # not default's login
    r = c.get("/api/v1/audit", params={"actor": "user:alice", "since": "0", "until": "4102444800"},
              headers=bearer(stack.admin_key))
    assert len(r.json()["data"]) == 1
    assert c.get("/api/v1/audit", headers=bearer(stack.viewer_key)).status_code == 403
    for bad in ({"since": "yesterday"}, {"outcome": "maybe"}, {"limit": "0"}, {"limit": "x"}):
        r = c.get("/api/v1/audit", params=bad, headers=bearer(stack.admin_key))
        assert r.status_code == 400, bad


def test_a_users_read_in_another_organisation_is_audited(stack: Stack) -> None:
    c = stack.client()
    token = c.post("/api/v1/auth/login", json={"username": "root", "password": PW}).json()["data"]["token"]
    r = c.get("/api/v1/query", params={"query": "up"}, headers={**bearer(token), "X-Scope-OrgID": "team-b"})
    assert r.status_code == 200
    rows = stack.audit.query("team-b", action="org.cross_access")
    assert len(rows) == 1 and rows[0]["actor"] == "user:root" and rows[0]["detail"]["home_org"] == "default"
    c.get("/api/v1/query", params={"query": "up"}, headers=bearer(token))  # own org: not recorded
    assert len(stack.audit.query(None, action="org.cross_access")) == 1


def test_every_answer_has_a_trace_id_and_security_headers(stack: Stack) -> None:
    c = stack.client()
    seen = set()
    for r in (c.get("/api/v1/query", params={"query": "up"}, headers=bearer(stack.viewer_key)),
              c.get("/api/v1/query"),  # 401 from the auth middleware
              c.get("/health"), c.get("/", headers={"Accept": "text/html"}),
              c.get("/health", headers={"Host": "evil.example"})):  # 421 from admission
        assert len(r.headers["x-trace-id"]) == 32 and r.headers["x-trace-id"] not in seen
        seen.add(r.headers["x-trace-id"])
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] in ("no-referrer", "same-origin")  # the UI page sets its own
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "strict-transport-security" not in r.headers  # plain HTTP
    html = c.get("/", headers={"Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in html.headers["content-security-policy"]
    r = c.get("/health", headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})  # invalid: all zeros
    assert r.headers["x-trace-id"] != "0" * 32


def test_hsts_over_tls(stack: Stack) -> None:
    c = TestClient(stack.app, client=("10.0.0.7", 40000), base_url="https://127.0.0.1")
    assert c.get("/health").headers["strict-transport-security"] == "max-age=31536000"


def test_log_lines_of_a_request_carry_its_trace_id(stack: Stack) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    h = Keep()
    h.addFilter(TraceLogFilter())
    logging.getLogger().addHandler(h)
    try:
        c = stack.client()
        # a log line written by the request's coroutine (the audit hook, made to log) carries the trace id
        from clearsight.api import audit_routes

        orig = audit_routes.record_async

        async def logging_record(audit: Any, ev: Any) -> None:
            logging.getLogger("clearsight.audit").warning("recording %s", ev.action)
            await orig(audit, ev)

        audit_routes.record_async = logging_record
        try:
            r = c.post("/api/v1/auth/login", json={"username": "alice", "password": PW},
                       headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
        finally:
            audit_routes.record_async = orig
    finally:
        logging.getLogger().removeHandler(h)
    assert r.status_code == 200
    mine = [x for x in records if x.getMessage() == "recording auth.login"]
    assert mine and all(getattr(x, "trace_id", None) == TRACE for x in mine)


def test_cookie_sessions_need_the_csrf_token_for_changes(stack: Stack) -> None:
    c = stack.client()
    r = c.post("/api/v1/auth/login", json={"username": "alice", "password": PW})
    csrf = r.json()["data"]["csrf_token"]
    assert c.cookies.get("clearsight_csrf") == csrf and c.cookies.get("clearsight_session")
    body = {"name": "from-cookie", "role": "viewer"}
    r = c.post("/api/v1/admin/apikeys", json=body)  # no header
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.post("/api/v1/admin/apikeys", json=body, headers={"X-CSRF-Token": "0" * 40})
    assert r.status_code == 403
    assert all(k.name != "from-cookie" for k in stack.built.auth.keys.list("default"))  # type: ignore[union-attr]
    assert c.get("/api/v1/admin/apikeys").status_code == 200  # reads need no token
    assert c.post("/api/v1/query", data={"query": "up"}).status_code == 200  # a read by POST neither
    r = c.post("/api/v1/admin/apikeys", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    # bearer credentials are exempt (a browser never adds them by itself)
    token = stack.client().post("/api/v1/auth/login", json={"username": "alice", "password": PW}).json()["data"]["token"]
    r = stack.client().post("/api/v1/admin/apikeys", json={"name": "by-bearer", "role": "viewer"}, headers=bearer(token))
    assert r.status_code == 200
    assert c.post("/api/v1/auth/logout").status_code == 403
    assert c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200


def test_log_exports_are_audited(stack: Stack) -> None:
    c = stack.client()
    r = c.get("/api/v1/logs/export", params={"format": "csv"}, headers=bearer(stack.viewer_key))
    assert r.status_code == 200, r.text
    assert c.get("/api/v1/logs/export", params={"format": "xml"}, headers=bearer(stack.viewer_key)).status_code == 400
    entries = stack.audit.query("default", action="logs.export")
    assert [e["outcome"] for e in entries] == ["failure", "success"]
    assert all(e["actor"].startswith("apikey:") and e["target"] == "/api/v1/logs/export" for e in entries)
