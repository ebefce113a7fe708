"""HTTP behaviour shared by every route of the main port: Prometheus' error envelope for unknown
paths and wrong methods under ``/api/``, gzip responses, CORS, the access log and the slow-query log.

``install_http_middleware(app, ...)`` is called once by ``api/app.py``. Order (outermost first): the
request log (sees the final status and the bytes on the wire), CORS, zstd (``zstd_responses.py``),
the hot routes, gzip, the routes.

The hot routes (``HotRoutes``: the query and read endpoints a dashboard calls most) are answered in
one pass by their handler, with gzip applied as ``GZipMiddleware`` would: Starlette's exception
layer, FastAPI's exit-stack layer, the router's scan and the gzip responder cost about as much as a
small query's evaluation. Every middleware registered outside them (request log, CORS, and any
added later, e.g. authentication) still runs; when middleware was registered before them (it would
sit inside and be skipped) they are not installed at all.

``HotLaneApp`` (the application class ``api/app.py`` builds) goes one step further: a request to a
hot route (exact path, GET or POST) does not enter FastAPI's and Starlette's own outer layers
(server-error, exception-telemetry and body-limit wrappers, each a coroutine and some a send
wrapper per request) but a lane built from the same middleware: every layer registered outside
``HotRoutes``, in the same order, around the same ``HotRoutes``. The server's guard chain (admission,
authentication, rate limits, body limits) sits outside the application and applies to both.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.api.common import SEND_BYTES, PartsResponse, json_response, send_parts
from clearsight.api.zstd_responses import ZstdMiddleware
from clearsight.config import Config, parse_duration_ms
from clearsight.http_answer import Answer, send_answer

# Bodies smaller than this are sent as they are (gzip would not pay for its header and CPU).
GZIP_MINIMUM_BYTES = 1024
# zlib level of responses the hot routes compress (Go's and Prometheus' default; level 9, Starlette's
# default, costs about twice the CPU for a few percent smaller JSON).
GZIP_LEVEL = 6
# Hot-route bodies at least this large are compressed on the default executor, not on the event loop.
GZIP_THREAD_MINIMUM_BYTES = 128 * 1024
HOT_METHODS = frozenset({"GET", "POST"})
# Paths whose queries the slow-query log records (the query text is read from the query string or
# from the urlencoded POST body, up to this many bytes).
SLOW_QUERY_PATHS = frozenset({"/api/v1/query", "/api/v1/query_range"})
MAX_LOGGED_BODY = 64 * 1024
SLOW_QUERY_PARAMS = ("query", "time", "start", "end", "step", "timeout", "limit")

Handler = Callable[[Request], Awaitable[Response]]
access_log = logging.getLogger("clearsight.access")
log = logging.getLogger("clearsight.api.http")
slow_query_log = logging.getLogger("clearsight.slow_query")


def parse_origins(text: str) -> list[str]:
    """``server.cors_origins`` as a list (``""`` -> no CORS)."""
    return [o.strip() for o in text.split(",") if o.strip()]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods: Prometheus' envelope under ``/api/``, FastAPI's elsewhere."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if not request.url.path.startswith("/api/"):
        return json_response({"detail": exc.detail}, exc.status_code, headers or None)
    if exc.status_code == 404:
        body = {"status": "error", "errorType": "not_found", "error": f"path {request.url.path} not found"}
    elif exc.status_code == 405:
        # Each method is its own route (unique OpenAPI operation ids): Allow lists them all.
        allowed = _allowed_methods(request)
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
        if allowed:
            headers["Allow"] = allowed
        body = {"status": "error", "errorType": "bad_data",
                "error": f"method {request.method} not allowed for {request.url.path}"
                         + (f" (allowed: {allowed})" if allowed else "")}
    else:
        body = {"status": "error", "errorType": "bad_data", "error": str(exc.detail)}
    return json_response(body, exc.status_code, headers or None)


def _allowed_methods(request: Request) -> str:
    path = request.url.path
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


class RequestLogMiddleware:
    """The access log (one INFO line per request) and the slow-query log (one WARNING line per query
    slower than the threshold), as structured records through the logging setup (JSON lines)."""

    def __init__(self, app: ASGIApp, *, access: bool, slow_query_ms: int | None) -> None:
        self.app = app
        self.access = access
        self.slow_query_ms = slow_query_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 0
        sent = 0
        path: str = scope.get("path", "")
        watch_query = self.slow_query_ms is not None and path in SLOW_QUERY_PATHS
        body = bytearray()

        async def tee_receive() -> Message:
            msg = await receive()
            if msg["type"] == "http.request" and len(body) < MAX_LOGGED_BODY:
                body.extend(msg.get("body", b"")[: MAX_LOGGED_BODY - len(body)])
            return msg

        async def counting_send(msg: Message) -> None:
            nonlocal status, sent
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            elif msg["type"] == "http.response.body":
                sent += len(msg.get("body", b""))
            await send(msg)

        try:
            await self.app(scope, tee_receive if watch_query else receive, counting_send)
        finally:
            self.record(scope, bytes(body), status, sent, time.perf_counter() - t0)

    def record(self, scope: Scope, body: bytes, status: int, sent: int, seconds: float) -> None:
        """The log lines of a request answered ``status`` with ``sent`` body bytes after ``seconds``
        (``body``: the start of a form body, for the slow-query log)."""
        if self.access:
            self._log_access(scope, status, sent, seconds)
        if self.slow_query_ms is not None and seconds * 1000 >= self.slow_query_ms \
                and scope.get("path", "") in SLOW_QUERY_PATHS:
            self._log_slow(scope, body, status, seconds)

    @staticmethod
    def _log_access(scope: Scope, status: int, sent: int, seconds: float) -> None:
        headers = _headers(scope)
        client = scope.get("client")
        access_log.info("request", extra={
            "method": scope.get("method", ""), "path": scope.get("path", ""),
            "query_string": scope.get("query_string", b"").decode("latin-1"),
            "status": status, "bytes_sent": sent, "duration_seconds": round(seconds, 6),
            "remote": f"{client[0]}:{client[1]}" if client else "",
            "user_agent": headers.get("user-agent", ""),
        })

    @staticmethod
    def _log_slow(scope: Scope, body: bytes, status: int, seconds: float) -> None:
        params: dict[str, str] = {}
        pairs = urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        ctype = _headers(scope).get("content-type", "")
        if body and ctype.startswith("application/x-www-form-urlencoded"):
            pairs += urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        for k, v in pairs:
            if k in SLOW_QUERY_PARAMS:
                params.setdefault(k, v)
        slow_query_log.warning("slow query", extra={
            "path": scope.get("path", ""), "method": scope.get("method", ""), **params,
            "status": status, "duration_seconds": round(seconds, 6),
        })


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding" and value.find(b"gzip") >= 0:  # (not ``in``: fast_lane.py says why)
            return True
    return False


def gzip_body(body: bytes) -> bytes:
    """``body`` as one gzip member (level ``GZIP_LEVEL``)."""
    c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(body) + c.flush()


def gzip_parts(parts: list[bytes]) -> bytes:
    """The concatenation of ``parts`` as one gzip member (level ``GZIP_LEVEL``)."""
    c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join([*map(c.compress, parts), c.flush()])


def handler_failed(path: str, error: BaseException) -> Response:
    """The 500 of a hot route whose handler raised ``error`` (logged, as Starlette's
    ``ServerErrorMiddleware`` does)."""
    log.error("unhandled error in %s", path, exc_info=error)
    return Response("Internal Server Error", status_code=500, media_type="text/plain")


def hot_headers(raw_headers: list[tuple[bytes, bytes]], length: int) -> tuple[list[tuple[bytes, bytes]], bool]:
    """A hot route's response headers for a single body of ``length`` bytes, and whether it may be
    gzip compressed: from ``GZIP_MINIMUM_BYTES`` on, when not encoded already, with ``Vary:
    Accept-Encoding`` added."""
    headers = raw_headers
    if length < GZIP_MINIMUM_BYTES or any(k == b"content-encoding" for k, _ in headers):
        return headers, False
    vary = [v for k, v in headers if k == b"vary"]
    headers = [(k, v) for k, v in headers if k != b"vary"]
    headers.append((b"vary", vary[0] + b", Accept-Encoding" if vary else b"Accept-Encoding"))
    return headers, True


def gzipped_headers(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    """``headers`` of a body gzip compressed to ``length`` bytes."""
    return [*((k, v) for k, v in headers if k != b"content-length"),
            (b"content-encoding", b"gzip"), (b"content-length", str(length).encode())]


def path_template(template: str) -> tuple[str, str, str]:
    """The fixed prefix, the parameter's name and the fixed suffix of a route template with one
    ``{parameter}`` (``/api/v1/label/{name}/values``)."""
    at, end = template.index("{"), template.index("}")
    return template[:at], template[at + 1:end], template[end + 1:]


def template_value(path: str, prefix: str, suffix: str) -> str | None:
    """The parameter's value in ``path`` for a template's ``prefix`` and ``suffix``: one non-empty
    path segment, as Starlette's ``{name}`` matches it; None when ``path`` does not match."""
    if len(path) > len(prefix) + len(suffix) and path.startswith(prefix) and path.endswith(suffix):
        value = path[len(prefix):len(path) - len(suffix)]
        if "/" not in value:
            return value
    return None


class HotRoutes:
    """Answers requests to ``routes`` (exact paths, or templates with one ``{parameter}``, put into
    the scope's ``path_params`` as Starlette's router does; GET and POST, or the methods ``methods``
    names for a path) by calling their handler directly; everything else goes on to ``app``. Responses of at least ``GZIP_MINIMUM_BYTES`` get
    ``Vary: Accept-Encoding`` and, when the client accepts gzip, are compressed (as
    ``GZipMiddleware`` does). An exception escaping a handler is logged and answered 500, like
    Starlette's ``ServerErrorMiddleware``."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, Handler],
                 methods: Mapping[str, frozenset[str]] | None = None) -> None:
        self.app = app
        self.routes = dict(routes)
        self.methods = {path: HOT_METHODS & (methods or {}).get(path, HOT_METHODS) for path in self.routes}
        self.exact = frozenset(path for path in self.routes if "{" not in path)
        self.templated = [(*path_template(path), path) for path in self.routes if "{" in path]

    def route_of(self, path: str) -> tuple[str, dict[str, str] | None] | None:
        """The route (its path or template) answering ``path`` and its path parameters (None for
        an exact path), or None."""
        if path in self.exact:
            return path, None
        for prefix, name, suffix, template in self.templated:
            value = template_value(path, prefix, suffix)
            if value is not None:
                return template, {name: value}
        return None

    def hot_methods(self, path: str) -> frozenset[str]:
        """The methods answered here for ``path`` (none when it is not a hot route's)."""
        found = self.route_of(path)
        return self.methods[found[0]] if found is not None else frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.route_of(scope["path"]) if scope["type"] == "http" else None
        if found is None or scope["method"] not in self.methods[found[0]]:
            await self.app(scope, receive, send)
            return
        handler = self.routes[found[0]]
        if found[1] is not None:
            scope["path_params"] = found[1]
        try:
            response = await handler(Request(scope, receive))
        except Exception as e:
            response = handler_failed(scope["path"], e)
        await self.respond(scope, send, response)

    async def respond(self, scope: Scope, send: Send, response: Response) -> None:
        """Sends a handler's ``response``, gzip compressed as the class says."""
        now = self.respond_now(scope, response)
        if now is not None:
            await send_answer(send, now)
        elif isinstance(response, PartsResponse):
            await self._send_parts(scope, send, response)
        else:  # a body to compress from GZIP_THREAD_MINIMUM_BYTES on: on a thread
            body = await asyncio.get_running_loop().run_in_executor(None, gzip_body, bytes(response.body))
            headers = gzipped_headers(hot_headers(response.raw_headers, len(response.body))[0], len(body))
            await send_answer(send, Answer(response.status_code, headers, body))

    @staticmethod
    def respond_now(scope: Scope, response: Response) -> Answer | None:
        """What ``respond`` sends, when it can be had without waiting (a single body compressed, if
        at all, on the event loop); None for a body in parts or one compressed on a thread."""
        if isinstance(response, PartsResponse):
            return None
        body = bytes(response.body)
        headers, compress = hot_headers(response.raw_headers, len(body))
        if compress and _accepts_gzip(scope):
            if len(body) >= GZIP_THREAD_MINIMUM_BYTES:
                return None
            body = gzip_body(body)
            headers = gzipped_headers(headers, len(body))
        return Answer(response.status_code, headers, body)

    @staticmethod
    async def _send_parts(scope: Scope, send: Send, response: PartsResponse) -> None:
        """A body in parts (at least ``GZIP_MINIMUM_BYTES`` as every ``PartsResponse`` is): gzip
        compressed on a worker thread when the client accepts it, else sent as it is in parts."""
        headers = [(k, v) for k, v in response.raw_headers if k != b"vary"]
        vary = [v for k, v in response.raw_headers if k == b"vary"]
        headers.append((b"vary", vary[0] + b", Accept-Encoding" if vary else b"Accept-Encoding"))
        if not _accepts_gzip(scope):
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await send_parts(send, response.parts, response.writes)
            return
        body = await asyncio.get_running_loop().run_in_executor(None, gzip_parts, response.parts)
        headers = gzipped_headers(headers, len(body))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send_parts(send, [body[at:at + SEND_BYTES] for at in range(0, len(body), SEND_BYTES)], response.writes)


async def _not_hot(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError(f"{scope.get('method')} {scope.get('path')} reached the hot lane's end: HotLaneApp sends "
                       "only hot routes there")


class HotLaneApp(FastAPI):
    """FastAPI whose hot routes (those of the ``HotRoutes`` middleware ``install_http_middleware``
    registered) are answered through ``hot_lane``: the middleware registered outside ``HotRoutes``
    around a ``HotRoutes`` of the same routes, without Starlette's and FastAPI's own outer layers.
    Built on the first request, as Starlette builds its middleware stack; without ``HotRoutes``
    registered, every request takes the usual stack."""

    hot_lane: ASGIApp | None = None
    _hot: HotRoutes | None = None
    hot_methods: Mapping[str, frozenset[str]] = {}  # path -> the methods the lane answers
    _lane_built = False
    # path -> what the HTTP protocol's fast lane (api/fast_lane.py) needs of a query route; set by api/app.py
    fast_routes: Mapping[str, Any] = {}

    def ensure_hot_lane(self) -> ASGIApp | None:
        """The hot lane (``build_hot_lane``), built once."""
        if not self._lane_built:
            self.hot_lane = self.build_hot_lane()
            self._lane_built = True
        return self.hot_lane

    def build_hot_lane(self) -> ASGIApp | None:
        """The lane from ``user_middleware`` (outermost first), or None without ``HotRoutes``."""
        entries = list(self.user_middleware)
        at = next((i for i, m in enumerate(entries) if m.cls is HotRoutes), None)
        if at is None:
            return None
        kwargs: dict[str, Any] = dict(entries[at].kwargs)
        hot = HotRoutes(_not_hot, kwargs["routes"], kwargs.get("methods"))
        self.hot_methods = hot.methods
        self._hot = hot
        lane: ASGIApp = hot
        for m in reversed(entries[:at]):
            lane = m.cls(lane, *m.args, **m.kwargs)
        return lane

    def _hot_methods(self, path: str) -> Collection[str]:
        methods = self.hot_methods.get(path)
        if methods is not None:
            return methods
        return self._hot.hot_methods(path) if self._hot is not None and self._hot.templated else ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.ensure_hot_lane()
        if lane is not None and scope["type"] == "http" and scope["method"] in self._hot_methods(scope["path"]):
            scope["app"] = self  # as Starlette sets it (Request.app)
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def install_http_middleware(app: FastAPI, cfg: Config, hot_routes: Mapping[str, Handler] | None = None,
                            hot_methods: Mapping[str, frozenset[str]] | None = None) -> None:
    """Wires the error envelope and the middleware stack onto ``app``, as ``cfg`` says;
    ``hot_routes`` (path -> handler) are answered by ``HotRoutes``."""
    cors_origins = cfg.server.cors_origins
    access_log_enabled = cfg.log.access_log
    threshold = cfg.query.slow_query_log_threshold
    slow_query_ms = parse_duration_ms(threshold) if threshold else None
    app.add_exception_handler(StarletteHTTPException, _http_error)
    inner_middleware = list(app.user_middleware)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES)
    if hot_routes and not inner_middleware:
        app.add_middleware(HotRoutes, routes=hot_routes, methods=hot_methods)
    elif hot_routes:
        log.warning("hot routes not installed: middleware registered before the HTTP middleware would be skipped")
    # zstd for clients preferring it, outside the gzip layers (api/zstd_responses.py)
    app.add_middleware(ZstdMiddleware, minimum_size=GZIP_MINIMUM_BYTES, thread_minimum_size=GZIP_THREAD_MINIMUM_BYTES)
    origins = parse_origins(cors_origins)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["*"], max_age=600)
    if access_log_enabled or slow_query_ms is not None:
        app.add_middleware(RequestLogMiddleware, access=access_log_enabled, slow_query_ms=slow_query_ms)
