"""api/http_limits.py at the ASGI level: the bytes a request reserves are always given back (success,
a failing route, a refusal, a client that goes away), and the route gets the body in one piece."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from clearsight.api.http_limits import BodyLimitMiddleware, wire
from clearsight.http_answer import Answer


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/x", "headers": headers, "query_string": b""}


def _run(mw: BodyLimitMiddleware, headers: list[tuple[bytes, bytes]], messages: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(m: Message) -> None:
        sent.append(m)

    asyncio.run(mw(_scope(headers), receive, send))
    return sent


class Route:
    def __init__(self, fail: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.inflight_seen: list[int] = []
        self.fail = fail
        self.mw: BodyLimitMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        m = await receive()
        self.bodies.append(m["body"])
        assert self.mw is not None
        self.inflight_seen.append(self.mw.inflight_bytes)
        if self.fail:
            raise RuntimeError("route failed")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _mw(route: Route, **kw: Any) -> BodyLimitMiddleware:
    mw = BodyLimitMiddleware(route, **{"max_request_bytes": 100, "max_inflight_bytes": 150, "body_timeout": 30, **kw})
    route.mw = mw
    return mw


def test_body_in_one_piece_and_bytes_released() -> None:
    route = Route()
    mw = _mw(route)
    sent = _run(mw, [(b"content-length", b"10")], [
        {"type": "http.request", "body": b"01234", "more_body": True},
        {"type": "http.request", "body": b"56789", "more_body": False}])
    assert route.bodies == [b"0123456789"] and route.inflight_seen == [10]
    assert sent[0]["status"] == 200 and mw.inflight_bytes == 0


def test_chunked_body_counted_as_it_arrives_and_released() -> None:
    route = Route()
    mw = _mw(route)
    _run(mw, [(b"transfer-encoding", b"chunked")], [
        {"type": "http.request", "body": b"a" * 30, "more_body": True},
        {"type": "http.request", "body": b"b" * 40, "more_body": False}])
    assert route.bodies == [b"a" * 30 + b"b" * 40] and route.inflight_seen == [70]
    assert mw.inflight_bytes == 0


def test_failing_route_releases_its_bytes() -> None:
    route = Route(fail=True)
    mw = _mw(route)
    with pytest.raises(RuntimeError):
        _run(mw, [(b"content-length", b"5")], [{"type": "http.request", "body": b"12345", "more_body": False}])
    assert mw.inflight_bytes == 0


@pytest.mark.parametrize(
    ("headers", "messages", "status"),
    [
        ([(b"content-length", b"101")], [], 413),
        ([(b"transfer-encoding", b"chunked")], [{"type": "http.request", "body": b"x" * 60, "more_body": True},
                                                {"type": "http.request", "body": b"x" * 60, "more_body": True}], 413),
    ],
)
def test_over_the_request_cap_is_413_and_nothing_is_held(headers: list[tuple[bytes, bytes]],
                                                         messages: list[Message], status: int) -> None:
    route = Route()
    mw = _mw(route)
    sent = _run(mw, headers, messages)
    assert sent[0]["status"] == status and (b"connection", b"close") in sent[0]["headers"]
    assert route.bodies == [] and mw.inflight_bytes == 0


def test_over_the_global_cap_is_503_before_reading_and_held_bytes_stay_held() -> None:
    route = Route()
    mw = _mw(route)
    mw.inflight_bytes = 100  # another request holds 100 of the 150 bytes
    receive_calls: list[Message] = []
    sent = _run(mw, [(b"content-length", b"60")], receive_calls)
    assert sent[0]["status"] == 503 and (b"retry-after", b"1") in sent[0]["headers"]
    assert mw.inflight_bytes == 100 and route.bodies == []


def test_client_gone_mid_body_releases_and_skips_the_route() -> None:
    route = Route()
    mw = _mw(route)
    sent = _run(mw, [(b"transfer-encoding", b"chunked")], [
        {"type": "http.request", "body": b"a" * 30, "more_body": True}, {"type": "http.disconnect"}])
    assert sent == [] and route.bodies == [] and mw.inflight_bytes == 0


def test_body_deadline_is_408() -> None:
    route = Route()
    mw = _mw(route, body_timeout=0.05)
    sent = _run(mw, [(b"content-length", b"10")], [{"type": "http.request", "body": b"01234", "more_body": True}])
    assert sent[0]["status"] == 408 and route.bodies == [] and mw.inflight_bytes == 0


def test_requests_without_body_pass_through() -> None:
    route = Route()
    mw = _mw(route)
    _run(mw, [], [{"type": "http.request", "body": b"", "more_body": False}])
    assert route.bodies == [b""] and route.inflight_seen == [0]


def test_wire_writes_what_uvicorns_cycle_writes() -> None:
    """``wire``: status line, default headers (a new list each second: the date), the answer's
    headers in lower case, the outer layers' lines, ``connection: close`` unless kept alive."""
    answer = Answer(200, [(b"Content-Type", b"application/json"), (b"content-length", b"2")], b"{}")
    first = [(b"date", b"Sun, 06 Dec 2026 21:00:00 GMT")]
    assert wire(answer, first, True, b"x-trace-id: 1\r\n") == (
        b"HTTP/1.1 200 OK\r\ndate: Sun, 06 Dec 2026 21:00:00 GMT\r\ncontent-type: application/json\r\n"
        b"content-length: 2\r\nx-trace-id: 1\r\n\r\n{}", True)
    second = [(b"date", b"Sun, 06 Dec 2026 21:00:01 GMT")]
    assert wire(answer, second, False) == (
        b"HTTP/1.1 200 OK\r\ndate: Sun, 06 Dec 2026 21:00:01 GMT\r\ncontent-type: application/json\r\n"
        b"content-length: 2\r\nconnection: close\r\n\r\n{}", False)
    closing = Answer(503, [(b"Connection", b"keep-alive, Close")], b"")
    assert wire(closing, second, True) == (
        b"HTTP/1.1 503 Service Unavailable\r\ndate: Sun, 06 Dec 2026 21:00:01 GMT\r\nconnection: keep-alive, Close\r\n"
        b"\r\n", False)
    assert wire(answer, [*second, (b"connection", b"close")], True)[1] is False
