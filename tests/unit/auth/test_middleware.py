"""The HTTP seam (AuthMiddleware + Authenticator) in front of a small app: anonymous rules, every
credential form, bad credentials, caching and revocation, IP allowlists, X-Scope-OrgID, WebSocket."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from clearsight.auth.directory import Directory, now_ms
from clearsight.auth.keys import ApiKeys
from clearsight.auth.middleware import AuthMiddleware
from clearsight.auth.models import ApiKey
from clearsight.auth.principal import principal_of_scope
from clearsight.auth.resolver import Authenticator
from clearsight.auth.sessions import Sessions
from clearsight.auth.state import StateDb

PW = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def whoami(request: Request) -> Response:
    p = principal_of_scope(request.scope)
    return JSONResponse(p.describe() if p is not None else None)


async def ws_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    p = principal_of_scope(ws.scope)
    await ws.send_json({"org": p.org if p else None})
    await ws.close()


APP = Starlette(routes=[
    Route("/api/v1/query", whoami, methods=["GET"]), Route("/api/v1/write", whoami, methods=["POST"]),
    Route("/health", whoami, methods=["GET"]), WebSocketRoute("/ws/metrics", ws_endpoint),
])


class Env:
    def __init__(self, tmp: Path, *, anonymous: bool = True, trust: bool = False) -> None:
        self.db = StateDb(f"sqlite:///{tmp / 'auth.db'}")
        self.directory = Directory(self.db)
        self.directory.create_org("default")
        self.directory.create_org("team-b")
        self.keys = ApiKeys(self.directory)
        self.sessions = Sessions(self.directory, 3_600_000)
        self.clock = Clock()
        self.auth = Authenticator(self.directory, self.keys, self.sessions, default_org="default", anonymous=anonymous,
                                  anonymous_role="editor", trust_tenant_header=trust, cache_ttl_s=10.0, clock=self.clock)
        self.app = AuthMiddleware(APP, self.auth)

    def client(self, host: str = "127.0.0.1") -> TestClient:
        return TestClient(self.app, client=(host, 40000), base_url="http://127.0.0.1")

    def key(self, role: str, org: str = "default", **kw: object) -> str:
        return self.keys.create(org, f"k{now_ms()}{role}{len(self.keys.list(org))}", role, **kw)[1]  # type: ignore[arg-type]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.db.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def assert_401(r: Response | object) -> None:
    assert r.status_code == 401, r.text  # type: ignore[attr-defined]
    assert r.headers["www-authenticate"].startswith("Bearer")  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["status"] == "error" and body["errorType"] == "unauthorized"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.6.7", "::1"])
def test_loopback_without_credentials_is_the_anonymous_editor(env: Env, host: str) -> None:
    r = env.client(host).get("/api/v1/query")
    assert r.status_code == 200
    assert r.json()["kind"] == "anonymous" and r.json()["org"] == "default" and r.json()["roles"] == ["editor"]
    assert env.client(host).post("/api/v1/write").status_code == 200


@pytest.mark.parametrize("header", [{"X-Forwarded-For": "10.0.0.1"}, {"Forwarded": "for=10.0.0.1"},
                                    {"X-Real-IP": "10.0.0.1"}])
def test_loopback_through_a_proxy_is_not_anonymous(env: Env, header: dict[str, str]) -> None:
    assert_401(env.client().get("/api/v1/query", headers=header))


def test_remote_without_credentials_is_401_but_public_paths_answer(env: Env) -> None:
    c = env.client("10.1.2.3")
    assert_401(c.get("/api/v1/query"))
    assert_401(c.post("/api/v1/write", content=b"x"))
    assert_401(c.get("/no/such/path"))
    r = c.get("/health")
    assert r.status_code == 200 and r.json() is None  # public: no principal


def test_anonymous_off_needs_credentials_everywhere(tmp_path: Path) -> None:
    e = Env(tmp_path, anonymous=False)
    try:
        assert_401(e.client().get("/api/v1/query"))
        assert e.client().get("/api/v1/query", headers=bearer(e.key("viewer"))).status_code == 200
    finally:
        e.db.close()


@pytest.mark.parametrize("authz", [
    "Bearer cs_" + "x" * 40,  # unknown key
    "Bearer css_" + "x" * 40,  # unknown session
    "Bearer", "Bearer ", "Digest abc", "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
    "Basic " + base64.b64encode(b"user:").decode(), "Bearer " + "y" * 5000, "garbage",
])
def test_bad_credentials_are_401_even_from_loopback(env: Env, authz: str) -> None:
    assert_401(env.client().get("/api/v1/query", headers={"Authorization": authz}))


def test_bad_session_cookie_is_401_even_from_loopback(env: Env) -> None:
    assert_401(env.client().get("/api/v1/query", headers={"Cookie": "clearsight_session=css_nope"}))


def test_key_as_bearer_and_as_basic_password_with_any_username(env: Env) -> None:
    key = env.key("viewer")
    c = env.client("10.1.2.3")
    for headers in (bearer(key), basic("prometheus", key), basic("x", key), {"Authorization": f"bearer {key}"}):
        r = c.get("/api/v1/query", headers=headers)
        assert r.status_code == 200, headers
        assert r.json()["kind"] == "apikey" and r.json()["org"] == "default" and r.json()["roles"] == ["viewer"]


def test_user_password_as_basic_auth(env: Env) -> None:
    env.directory.create_user("alice", PW, "team-b", "viewer")
    c = env.client("10.1.2.3")
    r = c.get("/api/v1/query", headers=basic("alice", PW))
    assert r.status_code == 200 and r.json()["kind"] == "user" and r.json()["org"] == "team-b"
    assert_401(c.get("/api/v1/query", headers=basic("alice", "wrong password!")))
    assert c.post("/api/v1/write", headers=basic("alice", PW)).status_code == 403


def test_brute_force_basic_auth_is_locked_out_with_429(env: Env) -> None:
    env.directory.create_user("bob", PW, "default", "viewer")
    c = env.client("10.1.2.3")
    for _ in range(5):
        assert_401(c.get("/api/v1/query", headers=basic("bob", "wrong password!")))
    r = c.get("/api/v1/query", headers=basic("bob", PW))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_permissions_are_enforced_with_403(env: Env) -> None:
    c = env.client("10.1.2.3")
    r = c.post("/api/v1/write", headers=bearer(env.key("viewer")))
    assert r.status_code == 403 and r.json()["errorType"] == "forbidden" and "metrics:write" in r.json()["error"]
    assert c.get("/api/v1/query", headers=bearer(env.key("ingest"))).status_code == 403
    assert c.post("/api/v1/write", headers=bearer(env.key("ingest"))).status_code == 200


def test_revocation_takes_effect_within_the_cache_ttl(env: Env) -> None:
    view, key = env.keys.create("default", "rev", "viewer")
    c = env.client("10.1.2.3")
    assert c.get("/api/v1/query", headers=bearer(key)).status_code == 200
    env.keys.revoke("default", view.id)
    assert c.get("/api/v1/query", headers=bearer(key)).status_code == 200  # cached
    env.clock.t += 10.5
    assert_401(c.get("/api/v1/query", headers=bearer(key)))


def test_unknown_keys_are_cached_as_bad(env: Env) -> None:
    c = env.client("10.1.2.3")
    bad = "cs_" + "z" * 40
    assert_401(c.get("/api/v1/query", headers=bearer(bad)))
    env.keys.create("default", "late", "viewer", value=bad)
    assert_401(c.get("/api/v1/query", headers=bearer(bad)))  # the negative answer is cached for the TTL
    env.clock.t += 11
    assert c.get("/api/v1/query", headers=bearer(bad)).status_code == 200


def test_expired_key_is_401(env: Env) -> None:
    view, key = env.keys.create("default", "exp", "viewer", expires_ms=now_ms() + 60_000)
    with env.db.session() as s, s.begin():
        s.execute(update(ApiKey).where(ApiKey.id == view.id).values(expires_ms=now_ms() - 1))
    assert_401(env.client("10.1.2.3").get("/api/v1/query", headers=bearer(key)))


def test_ip_allowlist(env: Env) -> None:
    key = env.key("viewer", allowed_cidrs=["10.0.0.0/8", "2001:db8::/32"])
    assert env.client("10.9.8.7").get("/api/v1/query", headers=bearer(key)).status_code == 200
    assert env.client("2001:db8::5").get("/api/v1/query", headers=bearer(key)).status_code == 200
    r = env.client("192.168.1.1").get("/api/v1/query", headers=bearer(key))
    assert r.status_code == 403 and "address" in r.json()["error"]


def test_last_use_is_recorded_in_batches(env: Env) -> None:
    view, key = env.keys.create("default", "used", "viewer")
    env.client("10.1.2.3").get("/api/v1/query", headers=bearer(key))
    assert env.keys.list("default")[0].last_used_ms is None  # not a write per request
    env.auth.flush_last_used()
    used = env.keys.list("default")[0].last_used_ms
    assert used is not None and used >= view.created_ms


def test_tenant_header_needs_orgs_cross(env: Env) -> None:
    c = env.client("10.1.2.3")
    viewer = env.key("viewer")
    r = c.get("/api/v1/query", headers={**bearer(viewer), "X-Scope-OrgID": "team-b"})
    assert r.status_code == 403 and "orgs:cross" in r.json()["error"]
    assert c.get("/api/v1/query", headers={**bearer(viewer), "X-Scope-OrgID": "default"}).json()["org"] == "default"
    gateway = env.key("superadmin")
    r = c.get("/api/v1/query", headers={**bearer(gateway), "X-Scope-OrgID": "team-b"})
    assert r.status_code == 200 and r.json()["org"] == "team-b" and r.json()["home_org"] == "default"
    r = c.get("/api/v1/query", headers={**bearer(gateway), "X-Scope-OrgID": "../etc"})
    assert r.status_code == 400 and "invalid tenant header" in r.json()["error"]


def test_anonymous_and_the_legacy_trusted_header(env: Env, tmp_path: Path) -> None:
    # header not trusted: ignored for the anonymous principal (as before authentication existed)
    assert env.client().get("/api/v1/query", headers={"X-Scope-OrgID": "team-b"}).json()["org"] == "default"
    (tmp_path / "t").mkdir()
    trusting = Env(tmp_path / "t", trust=True)
    try:
        r = trusting.client().get("/api/v1/query", headers={"X-Scope-OrgID": "team-b"})
        assert r.json()["org"] == "team-b" and r.json()["kind"] == "anonymous"
        key = trusting.key("viewer")  # trust does not extend to keys
        assert trusting.client().get("/api/v1/query", headers={**bearer(key), "X-Scope-OrgID": "team-b"}).status_code == 403
    finally:
        trusting.db.close()


def test_sessions_via_cookie_and_bearer(env: Env) -> None:
    u = env.directory.create_user("carol", PW, "team-b", "editor")
    token = env.sessions.create(u.id, "team-b").access
    c = env.client("10.1.2.3")
    r = c.get("/api/v1/query", headers={"Cookie": f"other=1; clearsight_session={token}"})
    assert r.status_code == 200 and r.json()["name"] == "carol" and r.json()["org"] == "team-b"
    assert c.get("/api/v1/query", headers=bearer(token)).json()["kind"] == "user"


def test_websocket_needs_a_principal(env: Env) -> None:
    with pytest.raises(WebSocketDisconnect) as e, env.client("10.1.2.3").websocket_connect("/ws/metrics"):
        pass
    assert e.value.code == 1008
    key = env.key("viewer", org="team-b")
    with env.client("10.1.2.3").websocket_connect("/ws/metrics", headers=bearer(key)) as ws:
        assert ws.receive_json() == {"org": "team-b"}
    with env.client().websocket_connect("/ws/metrics") as ws:
        assert ws.receive_json() == {"org": "default"}


def test_grpc_org_allowlist_and_narrowed_reads(tmp_path: Path) -> None:
    """The gRPC interceptor applies the organisation's IP allowlist; a narrowed role's reads are
    refused unless their handler narrows them (the event Query)."""
    from clearsight.auth.errors import Forbidden
    from clearsight.auth.grpc_interceptor import METHODS, NARROWED_BY_HANDLER, AuthInterceptor
    from clearsight.auth.org_networks import OrgNetworks

    e = Env(tmp_path)
    try:
        e.auth.org_networks = OrgNetworks(e.db, ttl_s=0.0)
        e.auth.org_networks.set(e.directory.get_org("default").id, ["10.0.0.0/8"])
        interceptor = AuthInterceptor(e.auth)
        export = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        meta = (("authorization", "Bearer " + e.key("ingest")),)
        assert interceptor.resolve(export, meta, "ipv4:10.1.2.3:5555").org == "default"
        with pytest.raises(Forbidden, match="does not accept requests from this address"):
            interceptor.resolve(export, meta, "ipv4:192.0.2.7:5555")
        other = (("authorization", "Bearer " + e.key("ingest", org="team-b")),)
        assert interceptor.resolve(export, other, "ipv4:192.0.2.7:5555").org == "team-b"
        e.directory.create_role("team-b", "pay", ["events:read"], '{team="payments"}')
        narrowed = (("authorization", "Bearer " + e.key("pay", org="team-b")),)
        reads = [m for m, need in METHODS.items() if need.endswith(":read")]
        assert reads
        for method in reads:  # each gRPC read is narrowed by its handler or refused
            if method in NARROWED_BY_HANDLER:
                assert interceptor.resolve(method, narrowed, "ipv4:192.0.2.7:5555").selector == '{team="payments"}'
            else:
                with pytest.raises(Forbidden, match="narrowed"):
                    interceptor.resolve(method, narrowed, "ipv4:192.0.2.7:5555")
    finally:
        e.db.close()
