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
  was opened (or after the first byte of its next request) is closed (slowloris), and so is a
  keep-alive connection idle for uvicorn's ``timeout_keep_alive`` after its last answer. One
  periodic sweep per listener checks both (a quarter of the shorter of the two apart, at most
  5 s), not a timer per request: uvicorn's protocol re-arms a keep-alive timer at every answer.
  The protocol also sends a response's status line and headers together with its body (one send
  instead of two). The number of connections is bounded by uvicorn's ``limit_concurrency`` (503
  beyond); ``server.py`` sets it and the keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import math
import urllib.parse
from typing import TYPE_CHECKING, Any, cast

import httptools
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from clearsight.api.admission import refuse
from clearsight.auth.replay import replay_body
from clearsight.http_answer import Answer

try:  # a plain GET or form POST parsed whole in one C pass (the lane's "express"); httptools without it
    from clearsight.api._reqhead import parse_request
except ImportError:  # pragma: no cover - the native module is built by make setup
    parse_request = None

if TYPE_CHECKING:
    from clearsight.api.fast_lane import FastLane
    from clearsight.api.idle_spin import IdleSpin


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


def _sweep_period(timeout: float) -> float:
    return min(max(timeout / 4, 0.05), 5.0)


class _Sweep:
    """One timer per listener and event loop (not one per request) closing the connections whose
    headers are overdue and the keep-alive connections idle too long: checked every ``period``
    seconds, so a deadline of ``timeout`` closes a connection between ``timeout`` and ``timeout +
    period`` after its request began, and an idle connection is closed between ``keep_alive`` and
    ``keep_alive + period`` after its last answer (uvicorn's ``timeout_keep_alive``, read from the
    first connection's protocol: one configuration per listener)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.keep_alive: float | None = None
        self.period = _sweep_period(timeout)
        self.connections: set[Any] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handle: asyncio.TimerHandle | None = None

    def add(self, protocol: Any, loop: asyncio.AbstractEventLoop) -> None:
        if self.keep_alive is None:
            self.keep_alive = float(protocol.timeout_keep_alive)
            self.period = min(self.period, _sweep_period(self.keep_alive))
        self.connections.add(protocol)
        if self.handle is None or self.loop is not loop or loop.is_closed():
            self.loop = loop
            self.handle = loop.call_later(self.period, self.sweep)

    def sweep(self) -> None:
        assert self.loop is not None and self.keep_alive is not None
        now = self.loop.time()
        overdue, stale = now - self.timeout, now - self.keep_alive
        for protocol in [p for p in self.connections if (p.header_since is not None and p.header_since <= overdue)
                         or (p.idle_since is not None and p.idle_since <= stale)]:
            if protocol.idle_since is not None:
                protocol.idle_too_long()
            else:
                protocol.header_overdue()
        self.handle = self.loop.call_later(self.period, self.sweep) if self.connections else None


# How long a form POST the fast lane may answer waits for the rest of a body that did not come with
# its headers (a client writing them apart) before the usual path takes it.
BODY_WAIT_S = 0.05


def header_deadline_protocol(timeout: float, lane: FastLane | None = None,
                             spin: IdleSpin | None = None) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing connections whose request headers are not complete
    ``timeout`` seconds after the connection opened or the request began, and keep-alive
    connections idle for uvicorn's ``timeout_keep_alive`` (both checked by one periodic sweep,
    ``_Sweep``, instead of uvicorn's timer re-armed at every answer), and sending each response's
    head with its body (``_HeadThenBody``).
    With ``lane``, the requests it takes are answered from ``on_headers_complete`` (api/fast_lane.py),
    or, for a form POST, from ``on_message_complete``: its body is collected here meanwhile, for at
    most ``BODY_WAIT_S`` after the read that completed its headers; a POST the lane does not answer
    then is handed to the usual path with the body that arrived, as if it had not waited. A GET or
    form POST that comes whole in one read is parsed without httptools and answered from
    ``data_received`` (``_express``), or handed to httptools as it came.
    With ``spin``, the loop polls for the next request for a moment after a lane's answer
    (api/idle_spin.py)."""
    sweep = _Sweep(timeout)
    express = lane is not None and parse_request is not None

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        header_since: float | None = None  # loop time the awaited headers were due from
        idle_since: float | None = None  # loop time of the last answer, while no byte of a next request came
        laned = False  # the request being parsed was answered by the fast lane
        # a form POST the lane may answer, its body so far (answered when whole: on_message_complete)
        deferred: bytearray | None = None
        deferred_route: Any = None  # its FastLane.route_of
        deferred_timer: asyncio.TimerHandle | None = None  # when its body did not come with its headers

        # httptools' parser is between messages: no request partly read (``_express`` may read one)
        between = True

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.header_since = self.loop.time()
            sweep.add(self, self.loop)

        def data_received(self, data: bytes) -> None:
            self.idle_since = None
            if express and self.between:
                read = parse_request(data)
                if read is not None and self._express(*read):
                    return
            super().data_received(data)
            if self.deferred is not None and self.transport.is_closing():  # answered 400: not HTTP
                self.deferred = self.deferred_route = None
            if self.deferred is not None and self.deferred_timer is None:
                # the body did not all come with its headers: it has BODY_WAIT_S more to arrive
                self.deferred_timer = self.loop.call_later(BODY_WAIT_S, self._undefer)

        def _undefer(self) -> None:
            """The deferred POST to the usual path, with the body that has arrived, as if it had
            never been deferred (its guards, body limits and deadline; a client gone meanwhile is
            then seen by it as a disconnect)."""
            if self.deferred_timer is not None:
                self.deferred_timer.cancel()
                self.deferred_timer = None
            deferred = self.deferred
            if deferred is None:
                return
            self.deferred = self.deferred_route = None
            if self.parser is None:
                return
            self._usual_headers()
            if deferred:
                super().on_body(bytes(deferred))

        def on_message_begin(self) -> None:
            self.between = False
            super().on_message_begin()
            self.idle_since = None  # a pipelined request after an answer (in the same read)
            self.laned = False
            self.deferred = None
            if self.header_since is None:
                self.header_since = self.loop.time()

        def on_headers_complete(self) -> None:
            self.header_since = None
            if lane is not None:
                if self._fast() is not None:
                    return
            self._usual_headers()

        def _usual_headers(self) -> None:
            previous = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and cycle is not previous and not self.expect_100_continue:
                self._head_then_body(cycle)

        def _head_then_body(self, cycle: RequestResponseCycle) -> None:
            cycle.transport = cast("asyncio.Transport", _HeadThenBody(self.transport, self.loop))  # duck-typed

        def scope_extras(self, scope: dict[str, Any]) -> None:
            """Adds what a subclass puts into every request's scope at its ``on_headers_complete``
            (api/mtls.py: the client certificate's organisation) to the scope of a request read by
            ``_express``, which has no such call."""

        def _express(self, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]],
                     keep_alive: bool, body: bytes | None) -> bool:
            """Answers in the lane a read that is one plain GET's whole head, or one POST's whole
            head and body (``body``; ``_reqhead.parse_request``: what httptools and uvicorn's
            callbacks would have made of it), without httptools; False (nothing done) when the lane
            does not take it: the read then goes to httptools."""
            assert lane is not None
            if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline \
                    or self.flow.write_paused or self.access_log or self.root_path or self.parser is None \
                    or self.transport.is_closing():
                return False
            if body is not None and not lane.takes_form(headers):
                return False
            path = raw_path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            found = lane.route_of(path)
            if found is None:
                return False
            if self.limit_concurrency is not None and (len(self.connections) >= self.limit_concurrency
                                                       or len(self.tasks) >= self.limit_concurrency):
                return False
            previous = self.scope, self.headers
            self.headers = headers
            scope: dict[str, Any] = {  # (uvicorn's on_message_begin and on_headers_complete)
                "type": "http", "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
                "http_version": "1.1", "server": self.server, "client": self.client, "scheme": self.scheme,
                "root_path": "", "headers": headers, "state": self.app_state.copy(),
                "method": "GET" if body is None else "POST", "path": path, "raw_path": raw_path, "query_string": query,
            }
            self.scope_extras(scope)
            self.scope = scope  # type: ignore[assignment]  # uvicorn's HTTPScope
            if self._serve(found, body, keep_alive) is None:
                self.scope, self.headers = previous
                return False
            self.header_since = None
            lane.express += 1
            return True

        def _fast(self) -> bool | None:
            """Serves the request in the fast lane if it takes it, or defers a form POST until its
            body is complete (True); None: the usual path."""
            assert lane is not None
            method = self.parser.get_method()
            if (method != b"GET" and method != b"POST") or self.expect_100_continue or self.parser.should_upgrade() \
                    or (self.cycle is not None and not self.cycle.response_complete) or self.pipeline \
                    or self.flow.write_paused or self.access_log:
                return None  # write_paused: a client not reading its answers waits in uvicorn's cycle
            parsed = httptools.parse_url(self.url)
            raw_path = parsed.path
            path = raw_path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            found = None if self.root_path else lane.route_of(path)
            if found is None:
                return None
            if self.limit_concurrency is not None and (len(self.connections) >= self.limit_concurrency
                                                       or len(self.tasks) >= self.limit_concurrency):
                return None  # uvicorn's 503
            http_version = self.parser.get_http_version()
            scope = self.scope
            scope["method"] = "GET" if method == b"GET" else "POST"
            if http_version != "1.1":
                scope["http_version"] = http_version
            scope["path"] = path
            scope["raw_path"] = raw_path
            scope["query_string"] = parsed.query or b""
            if method == b"POST":
                if not lane.takes_form(self.headers):
                    return None
                self.deferred = bytearray()  # answered at on_message_complete
                self.deferred_route = found
                return True
            return self._serve(found, None)

        def _serve(self, found: Any, body: bytes | None, express_keep_alive: bool | None = None) -> bool | None:
            """The lane's answer to the request (``body``: a form POST's), or None. ``express_keep_alive``:
            the request was read by ``_express`` (whole, httptools never saw it), and whether its
            connection is kept alive."""
            assert lane is not None
            scope: dict[str, Any] = self.scope  # type: ignore[assignment]  # uvicorn's HTTPScope
            try:
                served = lane.serve(scope, found, body)
            except Exception:  # a bug: answered as uvicorn answers an application that raised
                self.logger.exception("Exception in the fast lane")
                self.laned = True
                self.transport.write(STATUS_LINE[500] + b"content-type: text/plain; charset=utf-8\r\n"
                                     b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error")
                self.transport.close()
                return True
            if served is None:
                return None
            if express_keep_alive is not None:
                keep_alive = express_keep_alive
            else:
                keep_alive = scope["http_version"] != "1.0" and self.parser.should_keep_alive()
            if served.tail is not None:  # finished by a request cycle of uvicorn's, as any request
                self.cycle = cycle = RequestResponseCycle(
                    scope=self.scope, transport=self.transport, flow=self.flow, logger=self.logger,
                    access_logger=self.access_logger, access_log=self.access_log,
                    default_headers=self.server_state.default_headers, message_event=asyncio.Event(),
                    expect_100_continue=False, keep_alive=keep_alive, on_response=self.on_response_complete)
                if body is not None or express_keep_alive is not None:
                    cycle.more_body = False  # read whole: the cycle's receive() has no more body to wait for
                    self.laned = True
                if express_keep_alive is not None:  # (what httptools' on_message_complete does next)
                    cycle.message_event.set()
                self._head_then_body(cycle)
                self._start_asgi_task(cycle, cast("Any", served.tail))  # an ASGI app, typed by Starlette
                return True
            assert served.answer is not None
            self.laned = True
            data, keep_alive = wire(served.answer, self.server_state.default_headers, keep_alive, served.outer)
            self.transport.write(data)
            if not keep_alive:
                self.transport.close()
            if served.after is not None:  # the answer's bookkeeping, once it is written
                try:
                    served.after()
                except Exception:  # a bug: logged; the answer is out
                    self.logger.exception("Exception after a fast-lane answer")
            self.on_response_complete()
            if spin is not None:
                spin.after_answer(self.loop)
            return True

        def on_body(self, body: bytes) -> None:
            if self.deferred is not None:
                self.deferred += body
            elif not self.laned:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self.between = True
            deferred = self.deferred
            if deferred is not None:
                self.deferred = None
                if self.deferred_timer is not None:
                    self.deferred_timer.cancel()
                    self.deferred_timer = None
                body = bytes(deferred)
                if self._serve(self.deferred_route, body) is None:  # the usual path, all of it arrived
                    self._usual_headers()
                    if body:
                        super().on_body(body)
                    super().on_message_complete()
                self.deferred_route = None
            elif not self.laned:
                super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.header_since = None
            sweep.connections.discard(self)
            self._undefer()  # a client gone before its body was whole: what the usual path sees
            super().connection_lost(exc)

        def shutdown(self) -> None:
            self._undefer()  # a request in progress: answered before the connection closes
            super().shutdown()

        def header_overdue(self) -> None:
            self.header_since = None
            if not self.transport.is_closing():
                self.transport.close()

        def idle_too_long(self) -> None:
            self.idle_since = None
            self.timeout_keep_alive_handler()

        def on_response_complete(self) -> None:
            """uvicorn's, but the keep-alive timeout is the sweep's (``idle_since``): no timer armed
            at every answer and cancelled at the next request's first byte."""
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:  # the next pipelined request
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            else:
                self.idle_since = self.loop.time()

    return HeaderDeadlineProtocol


def wire(answer: Answer, default_headers: list[tuple[bytes, bytes]], keep_alive: bool,
         outer: bytes = b"") -> tuple[bytes, bool]:
    """``answer`` as uvicorn's request cycle writes it (``RequestResponseCycle.send``): the status
    line, the server's default headers, the answer's headers (names in lower case), then ``outer``
    (header lines already encoded, names in lower case, no ``connection``: the outermost layers'),
    ``connection: close`` unless kept alive or already there; then the body (the answer has a
    content-length). And whether the connection is kept alive."""
    known, default_lines, default_close = _defaults[0]
    if known is not default_headers:  # uvicorn's list, a new one each second (its date header)
        default_lines, default_close = _lines(default_headers)
        _defaults[0] = (default_headers, default_lines, default_close)
    lines, close = _lines(answer.headers)
    content = [STATUS_LINE[answer.status], default_lines, lines, outer]
    close = close or default_close
    if not keep_alive and not close:
        content.append(b"connection: close\r\n")
    content += (b"\r\n", answer.body)
    return b"".join(content), keep_alive and not close


# wire(): the last default headers seen, their lines and whether one closes (one tuple: read whole)
_defaults: list[tuple[list[tuple[bytes, bytes]] | None, bytes, bool]] = [(None, b"", False)]


def _lines(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
    """``headers`` as the lines of an HTTP/1.1 head (names in lower case, as uvicorn writes them),
    and whether one is a ``connection: close``."""
    close = False
    content: list[bytes] = []
    for name, value in headers:
        name = name.lower()
        if name == b"connection" and b"close" in [t.lower().strip() for t in value.split(b",")]:
            close = True
        content += (name, b": ", value, b"\r\n")
    return b"".join(content), close
