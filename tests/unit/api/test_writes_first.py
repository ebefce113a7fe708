"""WritesFirstMiddleware (api/writes_first.py): a POST to a write path counts as in flight from
its headers (a body in one part) or its complete body (a body in parts) to its sent response;
other requests, bodies still arriving and requests that fail are handled so the count always
returns to zero."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from clearsight.api.writes_first import WRITE_PATHS, WritesFirstMiddleware
from clearsight.query.write_priority import WritePriority


class App:
    """Reads the whole body, records the in-flight count at each step, answers 204 (or raises)."""

    def __init__(self, wp: WritePriority, fail: bool = False, read: bool = True) -> None:
        self.wp, self.fail, self.read = wp, fail, read
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append(("called", self.wp.in_flight))
        more = self.read
        while more:
            message = await receive()
            more = message.get("more_body", False)
            self.seen.append(("body part" if more else "body", self.wp.in_flight))
        if self.fail:
            raise RuntimeError("handler failed")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        self.seen.append(("started", self.wp.in_flight))
        await send({"type": "http.response.body", "body": b""})


def call(mw: Any, method: str, path: str, parts: list[bytes]) -> list[Message]:
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(mw({"type": "http", "method": method, "path": path, "headers": []}, receive, send))
    return sent


def test_a_write_in_parts_counts_from_its_complete_body_to_its_response() -> None:
    wp = WritePriority(max_pause_s=0.05)
    app = App(wp)
    sent = call(WritesFirstMiddleware(app, wp), "POST", "/api/v1/write", [b"ab", b"cd", b"ef"])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    # A body still arriving is not counted (a slow upload holds no query back).
    assert app.seen == [("called", 1), ("body part", 0), ("body part", 0), ("body", 1), ("started", 1)]
    assert wp.in_flight == 0


def test_a_write_in_one_part_counts_from_its_headers() -> None:
    wp = WritePriority(max_pause_s=0.05)
    app = App(wp)
    call(WritesFirstMiddleware(app, wp), "POST", "/api/v1/write", [b"abcd"])
    assert app.seen == [("called", 1), ("body", 1), ("started", 1)]
    assert wp.in_flight == 0
    app = App(wp, read=False)  # answered before its body is read (415)
    call(WritesFirstMiddleware(app, wp), "POST", "/api/v1/write", [b"abcd"])
    assert app.seen == [("called", 1), ("started", 1)]
    assert wp.in_flight == 0


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/write"), ("POST", "/api/v1/query"),
                                              ("POST", "/api/v1/push")])
def test_other_requests_are_not_counted(method: str, path: str) -> None:
    wp = WritePriority(max_pause_s=0.05)
    app = App(wp)
    call(WritesFirstMiddleware(app, wp), method, path, [b"x"])
    assert app.seen == [("called", 0), ("body", 0), ("started", 0)]


def test_every_metrics_write_path_is_counted() -> None:
    for path in sorted(WRITE_PATHS):
        wp = WritePriority(max_pause_s=0.05)
        app = App(wp)
        call(WritesFirstMiddleware(app, wp), "POST", path, [b"x"])
        assert app.seen == [("called", 1), ("body", 1), ("started", 1)], path


def test_a_failing_write_is_no_longer_counted() -> None:
    wp = WritePriority(max_pause_s=0.05)
    with pytest.raises(RuntimeError):
        call(WritesFirstMiddleware(App(wp, fail=True), wp), "POST", "/api/v1/write", [b"x"])
    assert wp.in_flight == 0
