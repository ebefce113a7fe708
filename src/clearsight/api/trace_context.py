"""Trace ids for every HTTP response: taken from an incoming W3C ``traceparent`` (its trace id) or
generated, answered as ``X-Trace-Id`` and ``traceparent`` (the trace id with a span id of this
server), kept in ``scope["state"]["trace_id"]`` and in a context variable that ``TraceLogFilter``
adds to every log line the request's coroutine writes (``"trace_id"`` in the JSON log).

Pure ASGI and cheap: one header scan, 192 pseudo-random bits (unique, not secret: a trace id is no
credential) and two response headers per request. Work a
handler hands to a thread pool (``run_in_executor``) does not inherit the context variable; such
log lines carry no trace id.
"""

from __future__ import annotations

import logging
import random
import re
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACE_ID: ContextVar[str] = ContextVar("clearsight_trace_id", default="")
STATE_KEY = "trace_id"
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO = b"0" * 32
_random_bits = random.Random().getrandbits  # seeded from os.urandom once


def trace_id_of(traceparent: bytes | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header value (None when absent or invalid)."""
    if not traceparent:
        return None
    m = _TRACEPARENT.match(traceparent.strip().lower())
    if m is None or m.group(1) == _ZERO or traceparent.startswith(b"ff"):
        return None
    return m.group(1).decode()


def trace_id_of_scope(scope: Scope) -> str:
    state = scope.get("state")
    return str(state.get(STATE_KEY, "")) if state else ""


def new_trace(headers: list[tuple[bytes, bytes]]) -> tuple[str, list[tuple[bytes, bytes]]]:
    """A request's trace id (its ``traceparent``'s, or a new one) and the two response headers that
    carry it (``x-trace-id``, and ``traceparent`` with a span id of this server)."""
    incoming = None
    for name, value in headers:
        if name == b"traceparent":
            incoming = value
            break
    rnd = _random_bits(192).to_bytes(24, "big").hex()  # unique, not secret: no syscall per request
    trace_id = (trace_id_of(incoming) if incoming is not None else None) or rnd[:32]
    tid = trace_id.encode()
    return trace_id, [(b"x-trace-id", tid), (b"traceparent", b"00-" + tid + b"-" + rnd[32:].encode() + b"-01")]


class TraceMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        trace_id, extra = new_trace(scope["headers"])
        scope.setdefault("state", {})[STATE_KEY] = trace_id

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        token = TRACE_ID.set(trace_id)
        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            TRACE_ID.reset(token)


class TraceLogFilter(logging.Filter):
    """Adds ``trace_id`` to records written while a request is handled (on the event loop)."""

    def filter(self, record: logging.LogRecord) -> bool:
        tid = TRACE_ID.get()
        if tid and not hasattr(record, "trace_id"):
            record.trace_id = tid
        return True


def install_log_filter() -> None:
    """Puts ``TraceLogFilter`` on every handler of the root logger (once)."""
    for h in logging.getLogger().handlers:
        if not any(isinstance(f, TraceLogFilter) for f in h.filters):
            h.addFilter(TraceLogFilter())
