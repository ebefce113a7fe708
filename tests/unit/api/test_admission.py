"""api/admission.py: requests refused from their headers before any route runs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from clearsight.api.admission import AdmissionMiddleware, host_is_served, served_hosts


def _app(seen: list[str]) -> Starlette:
    async def echo(request: Request) -> Response:
        seen.append(request.headers.get("x-scope-orgid", "default"))
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/x", echo, methods=["GET", "POST"])])


def _request(app: ASGIApp, method: str, headers: dict[str, str], host: str = "127.0.0.1:9800") -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}") as c:
            return await c.request(method, "/x", headers=headers, content=b"body")

    return asyncio.run(go())


def test_invalid_tenant_header_is_400_before_any_route() -> None:
    seen: list[str] = []
    app = AdmissionMiddleware(_app(seen), tenant_header="X-Scope-OrgID")
    for bad in ("../../etc", "x" * 8000, "..", "a b"):
        r = _request(app, "POST", {"X-Scope-OrgID": bad})
        assert r.status_code == 400
        assert r.json()["errorType"] == "bad_data" and "invalid tenant header" in r.json()["error"]
        assert r.headers["connection"] == "close"
    assert seen == []
    assert _request(app, "GET", {"X-Scope-OrgID": "team-a"}).status_code == 200
    assert seen == ["team-a"]


def test_tenant_header_ignored_when_not_trusted() -> None:
    seen: list[str] = []
    app = AdmissionMiddleware(_app(seen), tenant_header=None)
    assert _request(app, "GET", {"X-Scope-OrgID": "../../etc"}).status_code == 200


SERVED = served_hosts(["127.0.0.1", "0.0.0.0"], "metrics.internal, Grafana.Example.")


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:9800", "localhost:9800", "LOCALHOST", "[::1]:9800", "[::1]", "metrics.internal:80",
     "grafana.example", "grafana.example.:9800", "10.1.2.3:9800", "[fe80::1]:9800", "0.0.0.0:9800"],
)
def test_served_hosts(host: str) -> None:
    assert host_is_served(host, SERVED)


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:9800", "127.0.0.1.evil.example", "localhost.evil.example:80",
     "metrics.internal:x", "[::1", "[::1]x", "", "sub.metrics.internal"],
)
def test_unserved_hosts(host: str) -> None:
    assert not host_is_served(host, SERVED)


def test_star_serves_every_host() -> None:
    assert served_hosts(["127.0.0.1"], "a.example,*") is None
    assert host_is_served("evil.example", None)


def test_dns_rebinding_host_is_421_before_any_route() -> None:
    seen: list[str] = []
    app = AdmissionMiddleware(_app(seen), tenant_header=None, served=served_hosts(["127.0.0.1"], ""))
    r = _request(app, "POST", {}, host="rebind.evil.example:9800")
    assert r.status_code == 421
    assert "not served here" in r.json()["error"] and "server.allowed_hosts" in r.json()["error"]
    assert seen == []
    assert _request(app, "GET", {}, host="127.0.0.1:9800").status_code == 200
    assert _request(app, "GET", {}, host="localhost:9800").status_code == 200
    assert seen == ["default", "default"]


def test_http_bounds_config_is_validated() -> None:
    from clearsight.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="header_read_timeout: must be longer than 0s"):
        load_config(env={}, overrides={"server.header_read_timeout": "0s"})
    with pytest.raises(ConfigError, match="max_inflight_body_bytes: must be at least"):
        load_config(env={}, overrides={"server.max_inflight_body_bytes": "1000"})
    cfg = load_config(env={}, overrides={"server.allowed_hosts": "a.example,b.example"})
    assert cfg.server.allowed_hosts == "a.example,b.example"


def test_a_served_host_remembered_does_not_let_another_one_in() -> None:
    """``check`` skips parsing a Host value it found served just before: the next request with
    another value (or an empty one, or a second Host header) is still judged."""
    gate = AdmissionMiddleware(_app([]), tenant_header=None, served=SERVED)
    ok = [(b"host", b"127.0.0.1:9800")]
    assert gate.check(ok) is None
    assert gate.check(ok) is None
    for bad in ([(b"host", b"evil.example")], [(b"host", b"")], [*ok, (b"host", b"evil.example:9800")]):
        refused = gate.check(bad)
        assert refused is not None and refused.status == 421
    assert gate.check(ok) is None
