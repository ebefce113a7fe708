"""Bounded HTTP: how long a client may take to send a request and how many body bytes may be held.

- ``BodyLimitMiddleware`` (ASGI, on every HTTP listener) reads a request's body before the route
  runs, and

  * answers **413** when ``Content-Length`` exceeds the per-request cap (nothing read), or when a
    chunked body grows past it;
  * answers **503** with ``Retry-After`` when the bytes of all bodies in flight would exceed the
    global cap: judged by ``Content-Length`` before any byte of the body is read, and counted as
    they arrive for chunked bodies. A body's bytes count until its request is answered;
  * answers **408** when the whole body has not arrived within the body deadline (a client
    trickling a body is cut off).

  Refusals close the connection. The route then gets the body in one piece.
- ``header_deadline_protocol(seconds)`` is uvicorn's httptools protocol with a deadline for the
  request line and headers: a connection that has not completed its headers that long after it
  was opened (or after its previous response, for the next request) is closed (slowloris).
  Idle keep-alive connections are closed by uvicorn's ``timeout_keep_alive`` and the number of
  connections is bounded by its ``limit_concurrency`` (503 beyond); ``server.py`` sets both.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from clearsight.api.admission import refuse
from clearsight.auth.replay import replay_body


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_inflight_bytes: int,
                 body_timeout: float, retry_after: float = 1.0) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_inflight_bytes = max_inflight_bytes
        self.body_timeout = body_timeout
        self.retry_after = retry_after
        self.inflight_bytes = 0  # reserved by requests being read or handled (event loop only)

    def _busy(self) -> tuple[int, str, list[tuple[bytes, bytes]]]:
        return (503, f"too many request bytes in flight (limit {self.max_inflight_bytes} bytes, "
                     "server.max_inflight_body_bytes): retry later",
                [(b"retry-after", str(max(1, math.ceil(self.retry_after))).encode())])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length" and value.strip().isdigit():
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked and not length:
            await self.app(scope, receive, send)  # no body
            return
        if length is not None and length > self.max_request_bytes:
            await refuse(send, 413, f"request body of {length} bytes exceeds the limit of "
                                    f"{self.max_request_bytes} bytes")
            return
        reserved = 0
        if length is not None:
            if self.inflight_bytes + length > self.max_inflight_bytes:
                await refuse(send, *self._busy())
                return
            reserved = length
            self.inflight_bytes += length
        try:
            body = await self._read(receive, length is None, send)
            if body is None:
                return
            reserved = max(reserved, len(body))  # chunked bodies reserved as they arrived
            await self.app(scope, replay_body(body, receive), send)
        finally:
            self.inflight_bytes -= reserved

    async def _read(self, receive: Receive, count_as_arriving: bool, send: Send) -> bytes | None:
        """The whole body, or None after answering 408/413/503 (or when the client went away).
        For chunked bodies the bytes are added to ``inflight_bytes`` as they arrive; the caller
        releases ``len(body)`` (or what was counted, on a refusal: see ``finally``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        chunks: list[bytes] = []
        size = 0
        counted = 0
        try:
            while True:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    message: Message = await asyncio.wait_for(receive(), remaining)
                except TimeoutError:
                    await refuse(send, 408, f"request body not received within {self.body_timeout:g}s "
                                            "(server.body_read_timeout)")
                    return None
                if message["type"] == "http.disconnect":
                    return None
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > self.max_request_bytes:
                    await refuse(send, 413, f"request body exceeds the limit of {self.max_request_bytes} bytes")
                    return None
                if count_as_arriving and chunk:
                    if self.inflight_bytes + len(chunk) > self.max_inflight_bytes:
                        await refuse(send, *self._busy())
                        return None
                    self.inflight_bytes += len(chunk)
                    counted += len(chunk)
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    counted = 0  # the caller releases len(body) from now on
                    return b"".join(chunks)
        finally:
            self.inflight_bytes -= counted


def header_deadline_protocol(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing connections whose request headers are not complete
    ``timeout`` seconds after the connection opened or the request began."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._disarm_header_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(timeout, self._header_deadline_passed)

        def _disarm_header_deadline(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_deadline_passed(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
