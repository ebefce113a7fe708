"""The fast lane: a dashboard's small query answered from the HTTP protocol's callbacks.

A request to the main listener normally goes: uvicorn's protocol -> a request cycle and an asyncio
task -> the read chain of guards (``server._guarded``: trace ids, security headers, admission, rate
limits, authentication, usage counting, cross-organisation audit, body limits) -> the application's
hot lane (``api/http_middleware.HotLaneApp``: request log, CORS, zstd, gzip) -> the route's handler.
For a query that takes ~50 us to evaluate, those layers cost ~90 us more (docs/api.md, "The fast
lane").

``FastLane`` answers, directly in the protocol's callbacks (``api/http_limits.py``), a ``GET`` of
``/api/v1/query``, ``/api/v1/query_range``, ``/api/v1/series``, ``/api/v1/labels`` or
``/api/v1/label/{name}/values`` (in ``on_headers_complete``), or a form ``POST`` of one of the first
four (in ``on_message_complete``, the body collected by the protocol: ``takes_form``); a GET or form
POST that came whole in one read is answered from ``data_received``, read without httptools
(``_reqhead.parse_request``); either way a request that

- has no body (a GET) or a small urlencoded form whose whole body arrived soon after its headers
  (a POST), no ``Expect``, no upgrade, no ``x-org-key``/``x-idempotency-key`` (signed ingestion,
  idempotency keys), no ``X-Forwarded-For``/``X-Forwarded-Proto`` (uvicorn's proxy headers), no
  ``Origin`` when CORS is configured, and arrives on a connection with no other request in flight;
- whose principal is known without I/O (no credential, or one in the authenticator's cache; not a
  session to refresh; not a principal narrowed by label matchers);
- whose parameters are bad (answered 400 after the guards, as the handler would) or which is
  answered inline (``prometheus_query._inline``: a query proven cheap and recent;
  ``prometheus_read.ReadCosts``: a listing proven cheap).

Everything else takes the usual path, decided before any guard has had an effect: no rate-limit
token, usage count or audit entry is ever taken twice. In the lane the guards run as the plain
methods their ASGI layers call (``AdmissionMiddleware.check``, ``IpRateLimitMiddleware.check``,
``AuthMiddleware.resolve_now``/``decide_now``, ``PrincipalRateLimitMiddleware.check``,
``QueryCountMiddleware.count``, ``CrossOrgAuditMiddleware.audited``/``event``,
``trace_context.new_trace``, ``security_headers.with_security_headers``), then the handler's
halves (``prometheus_query.FastQuery``, ``prometheus_read.FastListing``), the encoding of its answer (``HotRoutes.respond_now``,
``ZstdMiddleware.encode_now``), then, once the protocol has written the answer (``Served.after``),
the request-duration histogram, the request log and the audit entry; a body that
is compressed on a thread or sent in parts is finished by a request cycle of uvicorn's own.
``FastLane.of`` builds the lane from the very objects of the read chain and of the application,
and builds none when the chain holds a layer it does not know.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.api.admission import AdmissionMiddleware
from clearsight.api.audit_routes import CrossOrgAuditMiddleware, record_async
from clearsight.api.common import FORM_TYPE, ApiError, Params, TenantOf, form_params, query_params
from clearsight.api.http_limits import BodyLimitMiddleware
from clearsight.api.http_middleware import (
    MAX_LOGGED_BODY,
    HotLaneApp,
    HotRoutes,
    RequestLogMiddleware,
    handler_failed,
    path_template,
    template_value,
)
from clearsight.api.query_admission import api_error_response
from clearsight.api.read_lane import ReadLane
from clearsight.api.security_headers import SecurityHeadersMiddleware, security_lines, with_security_headers
from clearsight.api.trace_context import STATE_KEY, TRACE_ID, TraceMiddleware, new_trace
from clearsight.api.zstd_responses import ZstdMiddleware, wants_zstd, without_accept_encoding
from clearsight.auth.errors import AuthError
from clearsight.auth.middleware import AuthMiddleware, Resolution, denial
from clearsight.auth.principal import Principal
from clearsight.auth.ratelimit import IpRateLimitMiddleware, PrincipalRateLimitMiddleware
from clearsight.auth.route_permissions import requirement
from clearsight.auth.usage import QueryCountMiddleware
from clearsight.http_answer import Answer, Headers

# Request headers that send a request down the usual path: what the read chain leaves to the full
# chain (api/read_lane.py), what uvicorn's proxy-headers layer acts on, and a body.
_USUAL_PATH_HEADERS = frozenset({b"x-org-key", b"x-idempotency-key", b"x-forwarded-for", b"x-forwarded-proto",
                                 b"transfer-encoding", b"expect"})
# The methods the lane takes: GET, and POST of a small urlencoded form (Grafana's queries).
_METHODS = frozenset({"GET", "POST"})
_FORM = FORM_TYPE.encode()
# The largest form body the lane collects and answers (and at most limits.max_body_bytes):
# a query's form is a few hundred bytes; a larger one takes the usual path.
FORM_MAX_BYTES = 16 * 1024
# The guard layers of a read chain, outermost first (server._guarded); the auth layers only with auth.
_GUARDS = (TraceMiddleware, SecurityHeadersMiddleware, AdmissionMiddleware)
_AUTH_GUARDS = (IpRateLimitMiddleware, AuthMiddleware, PrincipalRateLimitMiddleware)
_AFTER_AUTH = (QueryCountMiddleware, CrossOrgAuditMiddleware)


class FastRoute(NamedTuple):
    """What the lane needs of a query or listing route (built by api/app.py)."""

    # prometheus_query.FastQuery.plan / prometheus_read.FastListing.plan: parameters, arrival, the
    # route's path parameter ("" for an exact path) -> a plan with ``inline``, or ApiError
    plan: Callable[[Params, float, str], Any]
    answer: Callable[[Any, str], Response]  # an inline plan's answer for a tenant
    seconds: Any  # the route's request-duration histogram (app._timed's)
    tenant_of: TenantOf
    methods: frozenset[str] = frozenset({"GET"})  # the route's methods (the lane takes GET and form POST)


class _Lane(NamedTuple):
    """A route the lane takes: its halves, its path (a template for ``{name}``) and the permission
    each method it takes needs (a ``*:read`` one: what the read chain's layers are proven for)."""

    route: FastRoute
    path: str
    need: Mapping[str, str]


class Served(NamedTuple):
    """A request the lane took: its answer (``answer``: what the application or the refusing guard
    answered, and ``outer``: the header lines the outermost layers add to it, security headers and
    trace ids, encoded), or the ASGI app a request cycle runs to finish it (``tail``)."""

    answer: Answer | None
    tail: ASGIApp | None
    outer: bytes = b""
    # the bookkeeping of an answer (request-duration histogram, request log, audit), for the
    # protocol to call once the answer is written: none of it delays the answer
    after: Callable[[], None] | None = None


class FastLane:
    def __init__(self, routes: Mapping[str, FastRoute], hot: HotRoutes, *, admission: AdmissionMiddleware,
                 ip_limit: IpRateLimitMiddleware | None = None, auth: AuthMiddleware | None = None,
                 principal_limit: PrincipalRateLimitMiddleware | None = None,
                 query_count: QueryCountMiddleware | None = None, cross_org: CrossOrgAuditMiddleware | None = None,
                 zstd: ZstdMiddleware | None = None, request_log: RequestLogMiddleware | None = None,
                 cors: bool = False, limits: BodyLimitMiddleware | None = None) -> None:
        # only methods of routes that need a *:read permission (what the read chain's layers are
        # proven for; a form POST of one is exempt from CSRF there too: auth/csrf.needs_check)
        lanes = []
        for path, r in routes.items():
            need = {m: requirement(m, path) for m in r.methods & _METHODS}
            need = {m: n for m, n in need.items() if n.endswith(":read")}
            if need:
                lanes.append(_Lane(r, path, need))
        self.routes = {ln.path: ln for ln in lanes if "{" not in ln.path}
        # "/prefix/{name}/suffix" -> (prefix, suffix, lane): a name is one path segment, as Starlette's
        self.templated = [(path_template(ln.path)[0], path_template(ln.path)[2], ln) for ln in lanes if "{" in ln.path]
        self.limits = limits
        self.form_bytes = min(FORM_MAX_BYTES, limits.max_request_bytes) if limits is not None else FORM_MAX_BYTES
        self.hot = hot
        self.admission = admission
        # a limiter whose limits are off (0, the default) takes no token: not called (TokenBuckets.enabled
        # is fixed when the buckets are made)
        self.ip_limit = ip_limit if ip_limit is not None and ip_limit.buckets.enabled else None
        self.auth = auth
        self.principal_limit = principal_limit if principal_limit is not None and (
            principal_limit.per_credential.enabled or principal_limit.per_org.enabled) else None
        self.query_count = query_count
        self.cross_org = cross_org
        self.zstd = zstd
        self.request_log = request_log
        self.usual_headers = _USUAL_PATH_HEADERS | ({b"origin"} if cors else frozenset())
        self.served = 0  # requests the lane took (clearsight_http_fast_lane_requests_total)
        # of which read without httptools (api/http_limits.py, _express)
        self.express = 0
        self._pending_audits: set[asyncio.Future[None]] = set()

    @classmethod
    def of(cls, chain: ASGIApp) -> FastLane | None:
        """The lane of a listener's guard chain (``server._guarded``: a ``ReadLane`` whose read chain
        ends in a ``HotLaneApp``), from the same objects; None when any layer is not one the lane
        knows (it would be skipped) or the application has no fast routes."""
        layer: Any = chain.read if isinstance(chain, ReadLane) else chain
        found: list[Any] = []
        while isinstance(layer, (*_GUARDS, *_AUTH_GUARDS, *_AFTER_AUTH)):
            found.append(layer)
            layer = layer.app
        limits = None
        if isinstance(layer, BodyLimitMiddleware):
            limits = layer
            layer = layer.app
        if not isinstance(layer, HotLaneApp) or not layer.fast_routes:
            return None
        kinds = tuple(type(x) for x in found)
        auth = kinds[:len(_GUARDS) + len(_AUTH_GUARDS)] == (*_GUARDS, *_AUTH_GUARDS)
        rest = kinds[len(_GUARDS) + (len(_AUTH_GUARDS) if auth else 0):]
        if kinds[:len(_GUARDS)] != _GUARDS or not set(rest) <= set(_AFTER_AUTH) or len(set(rest)) != len(rest) \
                or (rest and not auth) or list(rest) != sorted(rest, key=_AFTER_AUTH.index):
            return None
        by_kind = {type(x): x for x in found}
        hot_layers = _hot_layers(layer.ensure_hot_lane())
        if hot_layers is None:
            return None
        return cls(layer.fast_routes, hot_layers[HotRoutes], admission=by_kind[AdmissionMiddleware],
                   ip_limit=by_kind.get(IpRateLimitMiddleware), auth=by_kind.get(AuthMiddleware),
                   principal_limit=by_kind.get(PrincipalRateLimitMiddleware),
                   query_count=by_kind.get(QueryCountMiddleware), cross_org=by_kind.get(CrossOrgAuditMiddleware),
                   zstd=hot_layers.get(ZstdMiddleware), request_log=hot_layers.get(RequestLogMiddleware),
                   cors=CORSMiddleware in hot_layers, limits=limits)

    def route_of(self, path: str) -> tuple[_Lane, str] | None:
        """The lane's route of ``path`` and its path parameter ("" for an exact path), or None."""
        lane = self.routes.get(path)
        if lane is not None:
            return lane, ""
        for prefix, suffix, lane in self.templated:
            name = template_value(path, prefix, suffix)
            if name is not None:
                return lane, name
        return None

    def takes_form(self, headers: Headers) -> bool:
        """Whether a ``POST`` with ``headers`` is one whose body the lane may collect and answer: an
        urlencoded form (``Content-Type`` as ``api/common.params`` reads it: the first one) of a
        ``Content-Length`` of at most ``form_bytes``; not chunked."""
        ctype: bytes | None = None
        length: bytes | None = None
        for name, value in headers:
            if name == b"content-type":
                if ctype is None:
                    ctype = value
            elif name == b"content-length":
                if length is not None:
                    return False
                length = value
            elif name == b"transfer-encoding":
                return False
        return (ctype is not None and ctype.startswith(_FORM) and length is not None and length.isdigit()
                and int(length) <= self.form_bytes)

    def serve(self, scope: Scope, found: tuple[_Lane, str], body: bytes | None = None) -> Served | None:
        """Answers ``scope`` (its headers complete: a GET of route ``found`` (``route_of``) with no
        body announced, or a form POST (``takes_form``) whose whole ``body`` has arrived) if the lane
        takes it; None sends it down the usual path, nothing done."""
        lane, name = found
        route = lane.route
        method: str = scope["method"]
        need = lane.need.get(method)
        if need is None:
            return None
        headers: Headers = scope["headers"]
        usual = self.usual_headers
        encodings = False  # an Accept-Encoding that names zstd (then wants_zstd reads them all)
        for hname, value in headers:
            if hname in usual:
                return None
            if hname == b"content-length":
                if body is None and value.strip() != b"0":
                    return None
            elif hname == b"accept-encoding" and value.lower().find(b"zstd") >= 0:
                # (find, not ``in``: ``bytes in bytes`` first tries its operand as an integer, and
                # raises, formats and clears a TypeError every time)
                encodings = True
        if body is not None:
            limits = self.limits
            if limits is not None and limits.inflight_bytes + len(body) > limits.max_inflight_bytes:
                return None  # the body-limit layer's 503
        resolution: Resolution | None = None
        if self.auth is not None:
            resolution = self.auth.resolve_now(scope)
            if resolution is None:
                return None
        began = time.perf_counter()
        plan: Any
        try:
            items = query_params(scope["query_string"])
            if body is not None:
                items.extend(form_params(body))
            plan = route.plan(Params(items), time.monotonic(), name)
        except ApiError as e:
            plan = e
        except Exception as e:
            plan = handler_failed(scope["path"], e)
        else:
            if not plan.inline:
                return None  # on the query pool, under the governor: the usual path
        planning = time.perf_counter() - began
        # From here on the request is the lane's.
        self.served += 1
        trace_id, trace_headers = new_trace(headers)
        scope.setdefault("state", {})[STATE_KEY] = trace_id
        token = TRACE_ID.set(trace_id)
        try:
            refused, principal = self._guard(scope, resolution, need)
            if refused is not None:
                return Served(refused, None, _outer(refused, scope, trace_headers))
            return self._app(scope, route, plan, planning, principal, trace_headers,
                             b"" if body is None else body[:MAX_LOGGED_BODY], encodings)
        finally:
            TRACE_ID.reset(token)

    def _guard(self, scope: Scope, resolution: Resolution | None, need: str) -> tuple[Answer | None, Principal | None]:
        """The read chain's guards in their order: a refusal, or the principal (None without auth)."""
        refused = self.admission.check(scope["headers"])
        if refused is not None:
            return refused, None
        if self.ip_limit is not None:
            refused = self.ip_limit.check(scope.get("client"))
            if refused is not None:
                return refused, None
        if self.auth is None or resolution is None:
            return None, None
        try:
            p = self.auth.decide_now(scope, resolution, need)
        except AuthError as e:
            return denial(e), None
        if self.principal_limit is not None:
            refused = self.principal_limit.check(p)
            if refused is not None:
                return refused, None
        if self.query_count is not None:
            self.query_count.count(p, scope["method"], scope["path"], need)
        return None, p

    def _app(self, scope: Scope, route: FastRoute, plan: Any, planning: float, p: Principal | None,
             trace_headers: Headers, body: bytes, encodings: bool) -> Served:
        """The application's part: the handler's answer, encoded, logged and audited (``encodings``:
        an ``Accept-Encoding`` of the request names zstd)."""
        path = scope["path"]
        began = time.perf_counter()
        if isinstance(plan, ApiError):
            response = api_error_response(plan)
        elif isinstance(plan, Response):
            response = plan  # the plan raised: 500
        else:
            try:
                response = route.answer(plan, route.tenant_of(HTTPConnection(scope)))
            except Exception as e:
                response = handler_failed(path, e)
        seconds = planning + time.perf_counter() - began
        audited = p if self.cross_org is not None and self.cross_org.audited(p) else None
        zstd = encodings and self.zstd is not None and wants_zstd(scope["headers"])
        inner = {**scope, "headers": without_accept_encoding(scope["headers"])} if zstd else scope
        answer = self.hot.respond_now(inner, response)
        if answer is not None and zstd:
            assert self.zstd is not None
            answer = self.zstd.encode_now(answer)
        if answer is None:  # compressed on a thread, or sent in parts: by a request cycle
            route.seconds.observe(seconds)
            return Served(None, self._tail(response, began, audited, trace_headers, body))
        elapsed = time.perf_counter() - began
        status, sent = answer.status, len(answer.body)

        def after() -> None:
            route.seconds.observe(seconds)
            log = self.request_log
            if log is None and audited is None:
                return
            token = TRACE_ID.set(scope["state"][STATE_KEY])  # the log lines' trace id
            try:
                if log is not None:
                    log.record(scope, body, status, sent, elapsed)
                if audited is not None:
                    self._audit(scope, audited, status)
            finally:
                TRACE_ID.reset(token)

        return Served(answer, None, _outer(answer, scope, trace_headers), after)

    def _tail(self, response: Response, began: float, audited: Principal | None, trace_headers: Headers,
              body: bytes) -> ASGIApp:
        """The ASGI app finishing ``response`` in a request cycle, through the same layers."""
        hot, zstd = self.hot, self.zstd

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            await hot.respond(scope, send, response)

        async def tail(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope["path"]
            tls = scope.get("scheme") == "https"
            status = sent = 0

            async def counting_send(message: Message) -> None:
                nonlocal status, sent
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    message["headers"] = [*with_security_headers(message.get("headers", ()), path, tls),
                                          *trace_headers]
                elif message["type"] == "http.response.body":
                    sent += len(message.get("body", b""))
                await send(message)

            token = TRACE_ID.set(scope["state"][STATE_KEY])
            try:
                if zstd is not None:
                    await zstd.around(respond, scope, receive, counting_send)
                else:
                    await respond(scope, receive, counting_send)
            finally:
                self._log(scope, body, status, sent, began)
                if audited is not None and self.cross_org is not None:
                    await record_async(self.cross_org.audit, self.cross_org.event(scope, audited, status))
                TRACE_ID.reset(token)

        return tail

    def _log(self, scope: Scope, body: bytes, status: int, sent: int, began: float) -> None:
        log = self.request_log
        if log is not None:
            log.record(scope, body, status, sent, time.perf_counter() - began)

    def _audit(self, scope: Scope, p: Principal, status: int) -> None:
        """The cross-organisation entry, written on a thread (as the ASGI layer does) after the answer."""
        assert self.cross_org is not None
        fut = asyncio.ensure_future(record_async(self.cross_org.audit, self.cross_org.event(scope, p, status)))
        self._pending_audits.add(fut)
        fut.add_done_callback(self._pending_audits.discard)


class FastLaneCollector(Collector):
    """``/metrics``: the requests the fast lane took."""

    def __init__(self, lane: FastLane) -> None:
        self._lane = lane

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("clearsight_http_fast_lane_requests",
                                  "Requests answered by the HTTP protocol's fast lane (server.fast_lane).",
                                  value=self._lane.served)
        yield CounterMetricFamily("clearsight_http_fast_lane_express_requests",
                                  "Fast-lane requests whose head was read in one pass, without httptools "
                                  "(a plain GET read whole).", value=self._lane.express)


def _outer(answer: Answer, scope: Scope, trace_headers: Headers) -> bytes:
    """The header lines the outermost layers add to ``answer``: security headers, then the trace
    headers (``x-trace-id``, ``traceparent``), encoded."""
    (n1, v1), (n2, v2) = trace_headers
    return b"%s%s: %s\r\n%s: %s\r\n" % (security_lines(answer.headers, scope["path"], scope.get("scheme") == "https"),
                                           n1, v1, n2, v2)


def _hot_layers(lane: ASGIApp | None) -> dict[type, Any] | None:
    """The layers of an application's hot lane by class (request log, CORS, zstd, the hot routes), or
    None when it has another."""
    known = (RequestLogMiddleware, CORSMiddleware, ZstdMiddleware)
    layers: dict[type, Any] = {}
    layer: Any = lane
    while isinstance(layer, known):
        layers[type(layer)] = layer
        layer = layer.app
    if not isinstance(layer, HotRoutes):
        return None
    layers[HotRoutes] = layer
    return layers


__all__ = ["FastLane", "FastLaneCollector", "FastRoute", "Served"]
