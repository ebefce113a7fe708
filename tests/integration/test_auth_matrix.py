"""The authorization matrix: every route of the live app (main port and OTLP/HTTP port, read from
their route tables, so a new route without a rule in auth/route_permissions.py fails here) x every
principal (admin, editor, viewer, ingest keys in two organisations, anonymous from loopback and from
the network) gets the answer its permissions say: 401 without credentials from the network, 403
without the permission, neither (and no 5xx) with it. Then: data written as organisation A is not
visible to organisation B, and B's administrator cannot reach A's objects by id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from clearsight.api.app import create_app
from clearsight.auth.permissions import BUILTIN_ROLES
from clearsight.auth.route_permissions import AUTHENTICATED, PUBLIC, declared
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import Built, _guarded, build

ORG_A, ORG_B = "default", "team-b"
ROLES = ("admin", "editor", "viewer", "ingest")
PARAMS = {"name": "x", "id": "999999", "namespace": "ns", "group": "g", "index": "idx", "path": "index.html"}
AUTH_REASONS = ("permission ", "authentication required", "invalid credentials")
RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}


@dataclass
class Stack:
    built: Built
    main: Any
    otlp: Any
    keys: dict[tuple[str, str], str]  # (org, role) -> key

    def client(self, app: Any, host: str = "10.0.0.5") -> TestClient:
        return TestClient(app, client=(host, 40000), base_url="http://127.0.0.1")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    cfg.server.enable_admin_api = True  # its handlers run (and must not fail) instead of a stub
    built = build(cfg)
    assert built.auth is not None
    built.auth.directory.create_org(ORG_B)
    keys = {(org, role): built.auth.keys.create(org, f"{role}-key", role)[1] for org in (ORG_A, ORG_B) for role in ROLES}
    main = _guarded(create_app(built.services), cfg, built.auth)
    otlp = _guarded(built.otlp_route_app, cfg, built.auth)
    try:
        yield Stack(built, main, otlp, keys)
    finally:
        built.close_stores()


def _routes(app: Any) -> list[BaseRoute]:
    return list(app.router.routes)


def _endpoints(stack: Stack) -> list[tuple[Any, str, str, bool]]:
    """(app, method, path template, is_websocket) of every route of both listeners."""
    main_app = stack.main.app  # Admission -> Auth -> BodyLimit -> FastAPI
    while not hasattr(main_app, "router"):
        main_app = main_app.app
    out: list[tuple[Any, str, str, bool]] = []
    for app, router_app in ((stack.main, main_app), (stack.otlp, stack.built.otlp_route_app)):
        for r in _routes(router_app):
            if isinstance(r, WebSocketRoute):
                out.append((app, "WS", r.path, True))
            elif isinstance(r, Route):
                for m in sorted((r.methods or set()) - {"HEAD"}):
                    out.append((app, m, r.path, False))
    return sorted(out, key=lambda e: e[3])  # WebSockets last: a stream may hold query slots a while


def _concrete(template: str) -> str:
    path = template
    for k, v in PARAMS.items():
        path = path.replace("{" + k + ":path}", v).replace("{" + k + "}", v)
    return path


def test_every_route_has_a_rule(stack: Stack) -> None:
    missing = sorted({f"{m} {t}" for _, m, t, _ in _endpoints(stack) if declared(m, t) is None})
    assert not missing, f"routes without an entry in auth/route_permissions.py: {missing}"


def _principals(stack: Stack) -> list[tuple[str, dict[str, str], str, frozenset[str] | None]]:
    """(label, headers, client host, permissions or None for no principal)."""
    out: list[tuple[str, dict[str, str], str, frozenset[str] | None]] = [
        ("anonymous-remote", {}, "10.0.0.5", None),
        ("anonymous-loopback", {}, "127.0.0.1", BUILTIN_ROLES["editor"]),
    ]
    for (org, role), key in stack.keys.items():
        out.append((f"{role}@{org}", {"Authorization": f"Bearer {key}"}, "10.0.0.5", BUILTIN_ROLES[role]))
    return out


def _denied_by_auth(r: Any) -> int | None:
    """401/403 when the auth middleware refused (its envelope), None otherwise."""
    if r.status_code == 401:
        return 401
    if r.status_code == 403 and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        if body.get("errorType") == "forbidden" and str(body.get("error", "")).startswith("permission "):
            return 403
    return None


def test_matrix(stack: Stack) -> None:
    failures: list[str] = []
    checked = 0
    for app, method, template, ws in _endpoints(stack):
        rule = declared(method, template)
        assert rule is not None
        path = _concrete(template)
        for label, headers, host, perms in _principals(stack):
            if rule == PUBLIC:
                expect: int | None = None
            elif perms is None:
                expect = 401
            elif rule == AUTHENTICATED or rule in perms:
                expect = None
            else:
                expect = 403
            c = stack.client(app, host)
            if ws:
                try:
                    with c.websocket_connect(path, headers=headers):
                        got: int | None = None
                except WebSocketDisconnect as e:  # the middleware's refusal names the reason
                    got = 403 if e.code == 1008 and str(e.reason).startswith(AUTH_REASONS) else None
                if (expect is None) != (got is None):
                    failures.append(f"WS {template} as {label}: expected {expect}, got {got}")
                checked += 1
                continue
            kwargs: dict[str, Any] = {"headers": headers}
            if method in ("POST", "PUT"):
                kwargs["content"] = b""
            r = c.request(method, path, **kwargs)
            got = _denied_by_auth(r)
            checked += 1
            if got != expect:
                failures.append(f"{method} {template} as {label}: expected {expect or 'allowed'}, got {r.status_code} {r.text[:120]}")
            elif expect is None and r.status_code >= 500 and r.status_code != 501:  # 501: not implemented
                failures.append(f"{method} {template} as {label}: {r.status_code} {r.text[:120]}")
    assert checked > 500
    assert not failures, "\n".join(failures)


def _write(stack: Stack, key: str, name: str) -> None:
    t = int(time.time() * 1000)
    body = encode_snappy(WriteRequest([TimeSeries([("__name__", name), ("job", "iso")], [(t, 1.0)])], []))
    r = stack.client(stack.main).post("/api/v1/write", content=body, headers={**RW, "Authorization": f"Bearer {key}"})
    assert r.status_code == 204, r.text


def test_organisations_do_not_see_each_others_data(stack: Stack) -> None:
    _write(stack, stack.keys[(ORG_A, "ingest")], "only_in_a")
    c = stack.client(stack.main)

    def series(org: str) -> list[dict[str, str]]:
        r = c.get("/api/v1/series", params={"match[]": '{job="iso"}'},
                  headers={"Authorization": f"Bearer {stack.keys[(org, 'viewer')]}"})
        assert r.status_code == 200
        data: list[dict[str, str]] = r.json()["data"]
        return data

    assert [s["__name__"] for s in series(ORG_A)] == ["only_in_a"]
    assert series(ORG_B) == []
    r = c.get("/api/v1/query", params={"query": "only_in_a"},
              headers={"Authorization": f"Bearer {stack.keys[(ORG_B, 'admin')]}"})
    assert r.status_code == 200 and r.json()["data"]["result"] == []
    # the tenant header cannot lift B into A without orgs:cross
    r = c.get("/api/v1/query", params={"query": "only_in_a"},
              headers={"Authorization": f"Bearer {stack.keys[(ORG_B, 'admin')]}", "X-Scope-OrgID": ORG_A})
    assert r.status_code == 403


def test_logs_are_per_organisation(stack: Stack) -> None:
    c = stack.client(stack.main)
    ns = str(time.time_ns())
    push = {"streams": [{"stream": {"app": "iso"}, "values": [[ns, "secret line of A"]]}]}
    r = c.post("/loki/api/v1/push", json=push, headers={"Authorization": f"Bearer {stack.keys[(ORG_A, 'ingest')]}"})
    assert r.status_code == 204, r.text

    def lines(org: str) -> int:
        r = c.get("/loki/api/v1/query_range", params={"query": '{app="iso"}', "limit": "10"},
                  headers={"Authorization": f"Bearer {stack.keys[(org, 'viewer')]}"})
        assert r.status_code == 200, r.text
        return sum(len(s["values"]) for s in r.json()["data"]["result"])

    assert lines(ORG_A) == 1
    assert lines(ORG_B) == 0


def test_admin_of_b_cannot_reach_objects_of_a_by_id(stack: Stack) -> None:
    assert stack.built.auth is not None
    a_keys = stack.built.auth.keys.list(ORG_A)
    admin_b = {"Authorization": f"Bearer {stack.keys[(ORG_B, 'admin')]}"}
    c = stack.client(stack.main)
    listed = c.get("/api/v1/admin/apikeys", headers=admin_b).json()["data"]
    assert {k["org"] for k in listed} == {ORG_B}
    assert not {k["id"] for k in listed} & {k.id for k in a_keys}
    victim = a_keys[0]
    r = c.delete(f"/api/v1/admin/apikeys/{victim.id}", headers=admin_b)
    assert r.status_code == 404
    assert stack.built.auth.keys.list(ORG_A)[0].revoked_ms is None
    admin_user = stack.built.auth.directory.list_members(ORG_A)[0]
    assert c.get(f"/api/v1/admin/users/{admin_user.id}", headers=admin_b).status_code == 404
    assert c.delete(f"/api/v1/admin/users/{admin_user.id}", headers=admin_b).status_code == 404
    users_b = c.get("/api/v1/admin/users", headers=admin_b).json()["data"]
    assert users_b == []
    # organisation administration needs orgs:cross (superadmin), not admin
    assert c.get("/api/v1/admin/orgs", headers=admin_b).status_code == 403
