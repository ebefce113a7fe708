"""Plain reads take the guard chain without the layers that act only on writes (api/read_lane.py):
which requests take it, and that the two chains of the real server's stack answer every request the
lane may send down the short one exactly alike (status, body, headers but the random trace ids)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.api.http_limits import BodyLimitMiddleware
from clearsight.api.read_lane import ReadLane, is_plain_read
from clearsight.config import load_config
from clearsight.server import Built, _guarded, build


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None, kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "method": method, "path": path, "headers": headers or []}


@pytest.mark.parametrize(("scope", "plain"), [
    (_scope("GET", "/api/v1/query"), True),
    (_scope("HEAD", "/api/v1/labels"), True),
    (_scope("OPTIONS", "/api/v1/write"), True),  # a CORS preflight: nothing is written
    (_scope("POST", "/api/v1/query"), True),  # Grafana's form POST
    (_scope("POST", "/api/v1/query_range"), True),
    (_scope("POST", "/api/v1/series"), True),
    (_scope("POST", "/loki/api/v1/query_range"), False),  # no such route: "authenticated", not a read
    (_scope("POST", "/api/v1/write"), False),
    (_scope("POST", "/loki/api/v1/push"), False),
    (_scope("POST", "/api/v1/admin/tsdb/delete_series"), False),
    (_scope("DELETE", "/api/v1/silence/abc"), False),
    (_scope("GET", "/api/v1/query", [(b"x-org-key", b"csk_x")]), False),
    (_scope("GET", "/api/v1/query", [(b"x-idempotency-key", b"k1")]), False),
    (_scope("POST", "/api/v1/query", [(b"x-idempotency-key", b"k1")]), False),
    (_scope("GET", "/api/v1/query", kind="websocket"), False),
])
def test_which_requests_are_plain_reads(scope: dict[str, Any], plain: bool) -> None:
    assert is_plain_read(scope) is plain


def test_the_lane_sends_plain_reads_down_the_read_chain() -> None:
    seen: list[str] = []

    def recorder(name: str) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(name)
        return app

    lane = ReadLane(recorder("full"), recorder("read"))
    for scope in (_scope("GET", "/api/v1/query"), _scope("POST", "/api/v1/write"),
                  _scope("GET", "/api/v1/query", [(b"x-org-key", b"csk_x")]), _scope("POST", "/api/v1/query")):
        asyncio.run(lane(scope, None, None))  # type: ignore[arg-type]
    assert seen == ["read", "full", "full", "read"]


def test_body_limit_siblings_share_one_in_flight_cap() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    a = BodyLimitMiddleware(app, max_request_bytes=100, max_inflight_bytes=150, body_timeout=1.0)
    b = a.sibling(app)
    a.inflight_bytes = 120
    assert b.inflight_bytes == 120
    b.inflight_bytes -= 20
    assert a.inflight_bytes == 100
    assert (b.max_request_bytes, b.max_inflight_bytes, b.body_timeout) == (100, 150, 1.0)


@dataclass
class Stack:
    built: Built
    lane: ReadLane
    viewer: str
    writer: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    assert built.auth is not None
    org = cfg.tenancy.default_tenant
    viewer = built.auth.keys.create(org, "viewer-key", "viewer")[1]
    writer = built.auth.keys.create(org, "writer-key", "editor")[1]
    lane = _guarded(create_app(built.services), cfg, built.auth)
    assert isinstance(lane, ReadLane)
    try:
        yield Stack(built, lane, viewer, writer)
    finally:
        built.close_stores()


_RANDOM = {"x-trace-id", "traceparent", "date"}


def _answer(app: Any, host: str, method: str, path: str, **kw: Any) -> tuple[int, bytes, list[tuple[str, str]]]:
    with TestClient(app, client=(host, 40000), base_url="http://127.0.0.1") as c:
        r = c.request(method, path, **kw)
    headers = sorted((k, v) for k, v in r.headers.items() if k not in _RANDOM)
    return r.status_code, r.content, headers


def test_both_chains_answer_plain_reads_alike(stack: Stack) -> None:
    """Every kind of plain read (anonymous from loopback, a key, a wrong key, no key from afar, a
    forbidden write-only route read, a form POST, a session cookie without a CSRF token, a bad Host)
    gets the same answer from the full chain as from the read chain."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("127.0.0.1", "GET", "/api/v1/query?query=1&time=1000", {}),
        ("10.0.0.5", "GET", "/api/v1/query?query=vector(2)&time=1000",
         {"headers": {"Authorization": f"Bearer {stack.viewer}"}}),
        ("10.0.0.5", "GET", "/api/v1/labels", {"headers": {"Authorization": "Bearer cs_wrong"}}),
        ("10.0.0.5", "GET", "/api/v1/labels", {}),
        ("10.0.0.5", "POST", "/api/v1/query",
         {"headers": {**form, "Authorization": f"Bearer {stack.viewer}"}, "content": b"query=up&time=1000"}),
        ("10.0.0.5", "POST", "/api/v1/query",
         {"headers": {**form, "Cookie": "clearsight_session=not-a-session"}, "content": b"query=up"}),
        ("127.0.0.1", "GET", "/api/v1/query?query=sum(", {}),
        ("127.0.0.1", "GET", "/api/v1/status/buildinfo", {"headers": {"Host": "evil.example"}}),
        ("10.0.0.5", "GET", "/api/v1/series?match[]=up", {"headers": {"Authorization": f"Bearer {stack.writer}"}}),
    ]
    for host, method, path, kw in cases:
        full = _answer(stack.lane.full, host, method, path, **kw)
        read = _answer(stack.lane.read, host, method, path, **kw)
        assert full == read, (method, path, kw)
    statuses = [_answer(stack.lane, h, m, p, **kw)[0] for h, m, p, kw in cases]
    assert statuses[0] == 200 and statuses[1] == 200 and statuses[2] == 401 and statuses[3] == 401
    assert statuses[7] == 421


def test_requests_with_write_headers_still_meet_their_layers(stack: Stack) -> None:
    """A signed-ingestion header on a read is refused by signed ingestion (full chain), not ignored."""
    status, body, _ = _answer(stack.lane, "10.0.0.5", "GET", "/api/v1/labels",
                              headers={"x-org-key": "csk_abc", "x-timestamp": "1", "x-signature": "sha256=" + "0" * 64})
    assert status == 400 and b"ingest endpoints only" in body
