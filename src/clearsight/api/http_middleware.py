"""HTTP behaviour shared by every route of the main port: Prometheus' error envelope for unknown
paths and wrong methods under ``/api/``, gzip responses, CORS, the access log and the slow-query log.

``install_http_middleware(app, ...)`` is called once by ``api/app.py``. Order (outermost first): the
request log (sees the final status and the bytes on the wire), CORS, gzip, the routes.
"""

from __future__ import annotations

import logging
import time
import urllib.parse

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.api.common import json_response
from clearsight.config import Config, parse_duration_ms

# Bodies smaller than this are sent as they are (gzip would not pay for its header and CPU).
GZIP_MINIMUM_BYTES = 1024
# Paths whose queries the slow-query log records (the query text is read from the query string or
# from the urlencoded POST body, up to this many bytes).
SLOW_QUERY_PATHS = frozenset({"/api/v1/query", "/api/v1/query_range"})
MAX_LOGGED_BODY = 64 * 1024
SLOW_QUERY_PARAMS = ("query", "time", "start", "end", "step", "timeout", "limit")

access_log = logging.getLogger("clearsight.access")
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
            seconds = time.perf_counter() - t0
            if self.access:
                self._log_access(scope, status, sent, seconds)
            if watch_query and self.slow_query_ms is not None and seconds * 1000 >= self.slow_query_ms:
                self._log_slow(scope, bytes(body), status, seconds)

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


def install_http_middleware(app: FastAPI, cfg: Config) -> None:
    """Wires the error envelope and the middleware stack onto ``app``, as ``cfg`` says."""
    cors_origins = cfg.server.cors_origins
    access_log_enabled = cfg.log.access_log
    threshold = cfg.query.slow_query_log_threshold
    slow_query_ms = parse_duration_ms(threshold) if threshold else None
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES)
    origins = parse_origins(cors_origins)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["*"], max_age=600)
    if access_log_enabled or slow_query_ms is not None:
        app.add_middleware(RequestLogMiddleware, access=access_log_enabled, slow_query_ms=slow_query_ms)
