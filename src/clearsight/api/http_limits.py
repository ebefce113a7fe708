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
  was opened (or after the first byte of its next request) is closed (slowloris); one
  periodic sweep per listener checks the deadlines (a quarter of the deadline apart, at most 5 s),
  not a timer per request. The protocol also sends a response's status line and headers together
  with its body (one send instead of two).
  Idle keep-alive connections are closed by uvicorn's ``timeout_keep_alive`` and the number of
  connections is bounded by its ``limit_concurrency`` (503 beyond); ``server.py`` sets both.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

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
        self._inflight = [0]  # bytes reserved by requests being read or handled (event loop only)

    @property
    def inflight_bytes(self) -> int:
        return self._inflight[0]

    @inflight_bytes.setter
    def inflight_bytes(self, value: int) -> None:
        self._inflight[0] = value

    def sibling(self, app: ASGIApp) -> BodyLimitMiddleware:
        """The same limits in front of ``app``, sharing this one's in-flight bytes (one global cap
        over both: api/read_lane.py builds two chains)."""
        other = BodyLimitMiddleware(app, max_request_bytes=self.max_request_bytes,
                                    max_inflight_bytes=self.max_inflight_bytes, body_timeout=self.body_timeout,
                                    retry_after=self.retry_after)
        other._inflight = self._inflight
        return other

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
        releases ``len(body)`` (or what was counted, on a refusal: see ``finally``).

        One deadline for the whole body (``asyncio.timeout_at``: a timer on this task), not a
        ``wait_for`` per message: that wrapped each ``receive()`` in a task of its own, ~0.1 ms of
        CPU on a small form POST (Grafana sends its queries so) and on every remote-write."""
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        chunks: list[bytes] = []
        size = 0
        counted = 0
        refusal: tuple[int, str, list[tuple[bytes, bytes]]]
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    while True:
                        message: Message = await receive()
                        if message["type"] == "http.disconnect":
                            return None
                        chunk: bytes = message.get("body", b"")
                        size += len(chunk)
                        if size > self.max_request_bytes:
                            refusal = (413, f"request body exceeds the limit of {self.max_request_bytes} bytes", [])
                            break
                        if count_as_arriving and chunk:
                            if self.inflight_bytes + len(chunk) > self.max_inflight_bytes:
                                refusal = self._busy()
                                break
                            self.inflight_bytes += len(chunk)
                            counted += len(chunk)
                        if chunk:
                            chunks.append(chunk)
                        if not message.get("more_body", False):
                            counted = 0  # the caller releases len(body) from now on
                            return b"".join(chunks)
            except TimeoutError:
                refusal = (408, f"request body not received within {self.body_timeout:g}s (server.body_read_timeout)",
                           [])
            await refuse(send, *refusal)
            return None
        finally:
            self.inflight_bytes -= counted


class _HeadThenBody:
    """A response's transport for uvicorn's request cycle: the status line and headers (the cycle's
    first write) are held until the body's first write or the end of the event-loop step, whichever
    comes first, so a small response leaves in one send (one syscall, one segment) instead of two.
    A streamed response whose body comes later still gets its headers at the end of the step."""

    __slots__ = ("_fresh", "_head", "_loop", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._fresh = True

    def write(self, data: bytes) -> None:
        if self._fresh:
            self._fresh = False
            self._head = data
            self._loop.call_soon(self._flush)
            return
        head, self._head = self._head, None
        if head is None:
            self._transport.write(data)
        else:
            self._transport.writelines((head, data))

    def _flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeaderSweep:
    """One timer per listener and event loop (not one per request) closing the connections whose
    headers are overdue: checked every ``period`` seconds, so a deadline of ``timeout`` closes a
    connection between ``timeout`` and ``timeout + period`` after its request began."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.period = min(max(timeout / 4, 0.05), 5.0)
        self.connections: set[Any] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handle: asyncio.TimerHandle | None = None

    def add(self, protocol: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.connections.add(protocol)
        if self.handle is None or self.loop is not loop or loop.is_closed():
            self.loop = loop
            self.handle = loop.call_later(self.period, self.sweep)

    def sweep(self) -> None:
        assert self.loop is not None
        overdue = self.loop.time() - self.timeout
        for protocol in [p for p in self.connections if p.header_since is not None and p.header_since <= overdue]:
            protocol.header_overdue()
        self.handle = self.loop.call_later(self.period, self.sweep) if self.connections else None


def header_deadline_protocol(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing connections whose request headers are not complete
    ``timeout`` seconds after the connection opened or the request began (checked by one periodic
    sweep, ``_HeaderSweep``), and sending each response's head with its body (``_HeadThenBody``)."""
    sweep = _HeaderSweep(timeout)

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        header_since: float | None = None  # loop time the awaited headers were due from

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.header_since = self.loop.time()
            sweep.add(self, self.loop)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self.header_since is None:
                self.header_since = self.loop.time()

        def on_headers_complete(self) -> None:
            self.header_since = None
            previous = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and cycle is not previous and not self.expect_100_continue:
                cycle.transport = cast("asyncio.Transport", _HeadThenBody(self.transport, self.loop))  # duck-typed

        def connection_lost(self, exc: Exception | None) -> None:
            self.header_since = None
            sweep.connections.discard(self)
            super().connection_lost(exc)

        def header_overdue(self) -> None:
            self.header_since = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
