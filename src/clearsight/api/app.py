"""The HTTP application: every route of the main port, mounted from the per-surface modules."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clearsight import __version__
from clearsight.api.common import ApiError, TenantOf, error_response, success
from clearsight.api.discovery import make_discovery_handlers
from clearsight.api.fast_lane import FastRoute
from clearsight.api.federate import make_federate_handler
from clearsight.api.http_middleware import HotLaneApp, install_http_middleware
from clearsight.api.openapi_params import document_plain_routes, route_kwargs
from clearsight.api.ops import make_ops_handlers
from clearsight.api.prometheus_query import FastQuery, make_query_handlers
from clearsight.api.prometheus_read import FastListing, make_read_handlers
from clearsight.api.prometheus_status import make_status_routes
from clearsight.api.prometheus_write import make_remote_write_handler
from clearsight.api.query_admission import make_governor
from clearsight.api.remote_read import make_remote_read_handler
from clearsight.config import Config, parse_duration_ms
from clearsight.pipeline.ingestor import MetricsIngestor
from clearsight.query.governor import QueryGovernor
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.exemplars_interface import ExemplarStore
from clearsight.store.interface import MetricsStore

Handler = Callable[[Request], Awaitable[Response]]
FAST_PATHS = frozenset({
    "/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/{name}/values",
    "/api/v1/write",
})

# Answered in one pass by api/http_middleware.HotRoutes (exact paths, and the label-values template with
# its name in path_params): a dashboard's reads and
# Prometheus' remote-write, whose handler answers every error itself (an escaping exception is a 500,
# as Starlette's error layer made it).
HOT_PATHS = frozenset({"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels",
                       "/api/v1/label/{name}/values", "/api/v1/write"})


@dataclass
class Services:
    """What the HTTP surfaces need; built by ``server.py`` (the only place that wires concretes)."""

    config: Config
    store: MetricsStore
    ingestor: MetricsIngestor
    metrics: SelfMetrics
    tenant_of: TenantOf
    readiness: Callable[[], tuple[bool, str]]
    extra_routes: list[BaseRoute] = field(default_factory=list)
    # The scrape manager's view of its targets (Prometheus /api/v1/targets data), if any.
    targets: Callable[[str, str | None], dict[str, Any]] | None = None
    # The bounded pool that decodes write requests (apart from the default executor queries use).
    ingest_executor: Executor | None = None
    # Admission control and the bounded pool for queries and heavy reads (query/governor.py).
    query_governor: QueryGovernor | None = None
    # Exemplars kept from writes (served by /api/v1/query_exemplars).
    exemplars: ExemplarStore | None = None


def _timed(name: str, handler: Handler, metrics: SelfMetrics) -> Handler:
    hist = metrics.request_seconds.labels(name)

    async def wrapped(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            return await handler(request)
        finally:
            hist.observe(time.perf_counter() - t0)

    return wrapped


def _targets_handler(targets: Callable[[str, str | None], dict[str, Any]]) -> Handler:
    async def handler(request: Request) -> Response:
        state = request.query_params.get("state", "any") or "any"
        try:
            data = targets(state, request.query_params.get("scrapePool") or None)
        except ValueError as e:
            return error_response(ApiError("bad_data", f'invalid parameter "state": {e}'))
        return success(data)

    return handler


def create_app(s: Services) -> HotLaneApp:
    # FastAPI's OpenTelemetry instrumentation is off: it probed the environment on every request.
    app = HotLaneApp(title="Clearsight", version=__version__,
                  description="Self-hosted observability: Prometheus-compatible metrics API.",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    m = s.metrics
    ops = make_ops_handlers(m, s.readiness)
    gov = s.query_governor if s.query_governor is not None else make_governor(s.config.query)
    listings: dict[str, FastListing] = {}
    read = make_read_handlers(s.store, s.tenant_of, gov, listings)
    write = make_remote_write_handler(s.ingestor, s.config.limits, s.tenant_of, m, s.ingest_executor,
                                      s.config.server.inline_decode_max_bytes)
    halves: dict[str, FastQuery] = {}
    query = make_query_handlers(s.store, s.config.query, s.tenant_of, gov, halves)
    disco = make_discovery_handlers(s.store, s.tenant_of, gov)
    api = [
        ("/health", ops["health"], ["GET"], "Liveness: 200 while the process serves HTTP."),
        ("/ready", ops["ready"], ["GET"], "Readiness: 200 when the store is open and its writer alive."),
        ("/metrics", ops["metrics"], ["GET"], "Metrics about Clearsight itself (Prometheus text format)."),
        ("/api/v1/status/buildinfo", ops["buildinfo"], ["GET"], "Build information (Prometheus API)."),
        ("/api/v1/write", _timed("remote_write", write, m), ["POST"],
         "Prometheus remote-write 1.0 (snappy protobuf). 204 after commit."),
        ("/api/v1/series", _timed("series", read["series"], m), ["GET", "POST"],
         "Series matching match[] in [start, end]."),
        ("/api/v1/labels", _timed("labels", read["labels"], m), ["GET", "POST"], "Label names."),
        ("/api/v1/label/{name}/values", _timed("label_values", read["label_values"], m), ["GET"],
         "Values of one label."),
        ("/api/v1/metadata", _timed("metadata", read["metadata"], m), ["GET"], "Metric metadata."),
        ("/api/v1/query", _timed("query", query["query"], m), ["GET", "POST"],
         "PromQL instant query (query, time, timeout, limit, stats)."),
        ("/api/v1/query_range", _timed("query_range", query["query_range"], m), ["GET", "POST"],
         "PromQL range query (query, start, end, step, timeout, limit, stats)."),
        ("/api/v1/catalog", _timed("catalog", disco["catalog"], m), ["GET", "POST"],
         "Metric names with their label names and values (match[], start, end, values_limit)."),
        ("/api/v1/latest", _timed("latest", disco["latest"], m), ["GET", "POST"],
         "Latest sample of every series matching match[] (time, lookback, limit)."),
        ("/api/v1/format_query", _timed("format_query", query["format_query"], m), ["GET", "POST"],
         "Canonical formatting of a PromQL expression."),
        ("/api/v1/parse_query", _timed("parse_query", query["parse_query"], m), ["GET", "POST"],
         "The syntax tree of a PromQL expression as JSON."),
    ]
    if s.targets is not None:
        api.append(("/api/v1/targets", _targets_handler(s.targets), ["GET"],
                    "Scrape targets and their health (state=any|active|dropped, scrapePool)."))
    api += make_status_routes(s.config, s.store, s.tenant_of, s.readiness, exemplars=s.exemplars)
    api.append(("/api/v1/read", _timed("remote_read", make_remote_read_handler(
        s.store, s.tenant_of, s.config.limits, s.config.query.max_samples), m), ["POST"],
        "Prometheus remote-read (snappy ReadRequest; sampled or STREAMED_XOR_CHUNKS response)."))
    api.append(("/federate", _timed("federate", make_federate_handler(
        s.store, s.tenant_of, gov, parse_duration_ms(s.config.query.lookback_delta)), m), ["GET"],
        "Prometheus federation: latest sample of each series matching match[] (text format)."))
    for path, handler, methods, summary in api:
        for method in methods:  # one operation per method: unique operation ids in /docs
            app.add_api_route(path, handler, methods=[method], summary=summary, response_class=Response,
                              **route_kwargs(path, method))
    # The hot read and write paths also get plain Starlette routes, first in the router and left out
    # of /docs (the API routes above document them): FastAPI's per-request dependency machinery
    # cost ~0.1-0.2 ms of a ~1 ms small query. Same handlers, same middleware.
    fast = [Route(path, handler, methods=methods, include_in_schema=False)
            for path, handler, methods, _ in api if path in FAST_PATHS]
    app.router.routes[:0] = fast
    app.router.routes.extend(s.extra_routes)
    document_plain_routes(app)
    # The halves of the query and listing routes the HTTP protocol's fast lane answers
    # (api/fast_lane.py), timed by the same histograms as ``_timed`` above, for the same methods.
    fast_halves: dict[str, FastQuery | FastListing] = {**halves, **listings}
    methods_of = {path: frozenset(methods) for path, _, methods, _ in api}
    app.fast_routes = {path: FastRoute(fast_halves[name].plan, fast_halves[name].answer, m.request_seconds.labels(name),
                                       s.tenant_of, methods_of[path])
                       for path, name in (("/api/v1/query", "query"), ("/api/v1/query_range", "query_range"),
                                          ("/api/v1/series", "series"), ("/api/v1/labels", "labels"),
                                          ("/api/v1/label/{name}/values", "label_values"))}
    install_http_middleware(app, s.config, {path: handler for path, handler, _, _ in api if path in HOT_PATHS},
                            {path: frozenset(methods) for path, _, methods, _ in api if path in HOT_PATHS})
    return app
