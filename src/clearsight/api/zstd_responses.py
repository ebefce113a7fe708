"""zstd-compressed responses for clients that prefer it (``Accept-Encoding: zstd``: curl
``--compressed``, browsers over HTTPS), beside gzip (``http_middleware``).

``ZstdMiddleware`` sits outside the gzip layers. When the request's ``Accept-Encoding`` accepts
zstd (q > 0), it hides that header from the layers inside (so they do not gzip) and compresses the
answer itself unless it carries a ``Content-Encoding`` already (remote-read's snappy) or is a
single body under ``minimum_size`` bytes: a body sent in one message as one zstd frame (off the
event loop from ``thread_minimum_size`` bytes), a streamed answer (log exports) as one zstd frame
flushed after every piece, so the client gets each piece as it comes. Requests not accepting zstd
pass through untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import cramjam
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.http_answer import Answer

# zstd level 3 (zstd's default): smaller than gzip level 6 on JSON for less CPU.
ZSTD_LEVEL = 3


def accepts_zstd(accept_encoding: bytes) -> bool:
    """Whether an ``Accept-Encoding`` value accepts zstd (listed without ``q=0``)."""
    for part in accept_encoding.split(b","):
        coding, _, params = part.strip().partition(b";")
        if coding.strip().lower() != b"zstd":
            continue
        for p in params.split(b";"):
            name, _, value = p.strip().partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    return float(value.strip()) > 0
                except ValueError:
                    return False
        return True
    return False


def zstd_body(body: bytes) -> bytes:
    return bytes(cramjam.zstd.compress(body, level=ZSTD_LEVEL))


def zstd_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers of an answer compressed with zstd (without its new ``content-length``)."""
    vary = [v for k, v in headers if k.lower() == b"vary"]
    out = [(k, v) for k, v in headers if k.lower() not in (b"vary", b"content-length")]
    if not vary or b"accept-encoding" not in vary[0].lower():
        vary = [vary[0] + b", Accept-Encoding" if vary else b"Accept-Encoding"]
    out += [(b"vary", vary[0]), (b"content-encoding", b"zstd")]
    return out


def wants_zstd(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request with these headers accepts zstd."""
    return any(k == b"accept-encoding" and accepts_zstd(v) for k, v in headers)


def without_accept_encoding(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A request's headers as the layers inside see them when zstd is accepted (they do not gzip)."""
    return [(k, v) for k, v in headers if k != b"accept-encoding"]


class ZstdMiddleware:
    def __init__(self, app: ASGIApp, *, minimum_size: int, thread_minimum_size: int) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.thread_minimum_size = thread_minimum_size

    def _as_is(self, headers: list[tuple[bytes, bytes]], length: int, more: bool) -> bool:
        """Whether an answer is sent as it is: encoded already, or a single small body."""
        return any(k.lower() == b"content-encoding" for k, _ in headers) or (not more and length < self.minimum_size)

    def encode_now(self, answer: Answer) -> Answer | None:
        """A single-body ``answer`` to a request accepting zstd as it is sent, or None when its body
        is compressed on a thread (from ``thread_minimum_size`` bytes)."""
        if self._as_is(answer.headers, len(answer.body), False):
            return answer
        if len(answer.body) >= self.thread_minimum_size:
            return None
        body = zstd_body(answer.body)
        return Answer(answer.status, [*zstd_headers(answer.headers), (b"content-length", str(len(body)).encode())],
                      body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.around(self.app, scope, receive, send)

    async def around(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """``app`` behind this layer (``__call__`` with ``self.app``)."""
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if not wants_zstd(headers):
            await app(scope, receive, send)
            return
        inner = dict(scope)
        inner["headers"] = without_accept_encoding(headers)
        start: Message | None = None
        mode = ""  # "" until the first body message; then "pass", "whole" or "stream"
        stream: Any = None

        async def compressing_send(message: Message) -> None:
            nonlocal start, mode, stream
            if mode == "pass" or message["type"] not in ("http.response.start", "http.response.body"):
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if mode == "stream":  # the next piece of a streamed answer
                stream.compress(body)
                out = bytes(stream.flush()) if more else bytes(stream.finish())
                await send({"type": "http.response.body", "body": out, "more_body": more})
                return
            assert start is not None
            if self._as_is(list(start.get("headers", [])), len(body), more):
                mode = "pass"  # already encoded, or small: as it is
                await send(start)
                await send(message)
                return
            out_headers = zstd_headers(list(start.get("headers", [])))
            if more:  # streamed: one zstd frame, flushed piece by piece
                mode = "stream"
                stream = cramjam.zstd.Compressor(level=ZSTD_LEVEL)
                stream.compress(body)
                await send({**start, "headers": out_headers})
                await send({"type": "http.response.body", "body": bytes(stream.flush()), "more_body": True})
                return
            mode = "whole"
            if len(body) >= self.thread_minimum_size:
                body = await asyncio.get_running_loop().run_in_executor(None, zstd_body, body)
            else:
                body = zstd_body(body)
            out_headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": out_headers})
            await send({"type": "http.response.body", "body": body})

        await app(inner, receive, compressing_send)
