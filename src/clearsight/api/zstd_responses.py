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


class ZstdMiddleware:
    def __init__(self, app: ASGIApp, *, minimum_size: int, thread_minimum_size: int) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.thread_minimum_size = thread_minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if not any(k == b"accept-encoding" and accepts_zstd(v) for k, v in headers):
            await self.app(scope, receive, send)
            return
        inner = dict(scope)
        inner["headers"] = [(k, v) for k, v in headers if k != b"accept-encoding"]
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
            out_headers = list(start.get("headers", []))
            if any(k.lower() == b"content-encoding" for k, _ in out_headers) or (
                not more and len(body) < self.minimum_size
            ):
                mode = "pass"  # already encoded, or small: as it is
                await send(start)
                await send(message)
                return
            vary = [v for k, v in out_headers if k.lower() == b"vary"]
            out_headers = [(k, v) for k, v in out_headers if k.lower() not in (b"vary", b"content-length")]
            if not vary or b"accept-encoding" not in vary[0].lower():
                vary = [vary[0] + b", Accept-Encoding" if vary else b"Accept-Encoding"]
            out_headers += [(b"vary", vary[0]), (b"content-encoding", b"zstd")]
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

        await self.app(inner, receive, compressing_send)
