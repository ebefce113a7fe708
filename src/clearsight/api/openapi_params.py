"""What ``/docs`` declares for routes whose handlers read the raw request (no FastAPI parameters):
the query parameters of GET operations, the urlencoded form body of POST operations, path
parameters, one unique operation id per (path, method), and the routes mounted as plain Starlette
routes (OTLP/HTTP ``/v1/metrics``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

# name -> (description, required, is a list)
Param = tuple[str, bool, bool]

_Q = ("PromQL expression.", True, False)
_TIME = ("Evaluation time: unix seconds or RFC 3339; default now.", False, False)
_START = ("Start: unix seconds or RFC 3339.", False, False)
_END = ("End: unix seconds or RFC 3339.", False, False)
_MATCH = ("Series selector; repeat for several (a series matching any is selected).", False, True)
_LIMIT = ("Maximum number of returned items (0 = no limit).", False, False)
_TIMEOUT = ("Evaluation timeout (duration, capped by query.timeout).", False, False)
_STATS = ('"all" adds query statistics to the response.', False, False)

PARAMS: dict[str, dict[str, Param]] = {
    "/api/v1/query": {"query": _Q, "time": _TIME, "timeout": _TIMEOUT, "limit": _LIMIT, "stats": _STATS},
    "/api/v1/query_range": {
        "query": _Q, "start": ("Start: unix seconds or RFC 3339.", True, False),
        "end": ("End: unix seconds or RFC 3339.", True, False),
        "step": ("Resolution: duration (1m) or float seconds.", True, False),
        "timeout": _TIMEOUT, "limit": _LIMIT, "stats": _STATS},
    "/api/v1/series": {"match[]": ("Series selector; repeat for several.", True, True), "start": _START,
                       "end": _END, "limit": _LIMIT},
    "/api/v1/labels": {"match[]": _MATCH, "start": _START, "end": _END, "limit": _LIMIT},
    "/api/v1/label/{name}/values": {"match[]": _MATCH, "start": _START, "end": _END, "limit": _LIMIT},
    "/api/v1/metadata": {"metric": ("Only this metric.", False, False), "limit": _LIMIT,
                         "limit_per_metric": ("Maximum entries per metric.", False, False)},
    "/api/v1/catalog": {"match[]": _MATCH, "start": _START, "end": _END,
                        "values_limit": ("Maximum values listed per label.", False, False)},
    "/api/v1/latest": {"match[]": _MATCH, "time": _TIME,
                       "lookback": ("How far back to look for the latest sample (duration).", False, False),
                       "limit": _LIMIT},
    "/api/v1/format_query": {"query": _Q},
    "/api/v1/parse_query": {"query": _Q},
    "/api/v1/targets": {"state": ("any, active or dropped.", False, False),
                        "scrapePool": ("Only this scrape pool (job).", False, False)},
    "/api/v1/status/tsdb": {"limit": ("Entries per list (default 10).", False, False)},
    "/api/v1/targets/metadata": {"match_target": ("Label selector of targets.", False, False),
                                 "metric": ("Only this metric.", False, False), "limit": _LIMIT},
    "/api/v1/query_exemplars": {"query": _Q, "start": _START, "end": _END},
    "/api/v1/admin/tsdb/delete_series": {"match[]": ("Series selector; repeat for several.", True, True),
                                         "start": _START, "end": _END},
}

BODIES: dict[str, tuple[str, str]] = {
    "/api/v1/write": ("application/x-protobuf", "Snappy-compressed protobuf prometheus.WriteRequest (remote-write 1.0)."),
    "/v1/metrics": ("application/x-protobuf", "OTLP ExportMetricsServiceRequest (protobuf, or JSON with "
                    "Content-Type application/json)."),
}


def operation_id(path: str, method: str) -> str:
    """``get_api_v1_query``, ``post_api_v1_query``: unique per (path, method)."""
    # Prometheus' "/-/ready" must not collide with "/ready".
    slug = re.sub(r"[^0-9A-Za-z]+", "_", path.replace("/-/", "/lifecycle_")).strip("_") or "root"
    return f"{method.lower()}_{slug}"


def _schema(is_list: bool) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}} if is_list else {"type": "string"}


def openapi_extra(path: str, method: str) -> dict[str, Any]:
    """The ``openapi_extra`` of one (path, method) operation."""
    extra: dict[str, Any] = {}
    declared: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{([^}]+)}", path)]
    params = PARAMS.get(path, {})
    if params and method in ("GET", "HEAD", "DELETE"):
        declared += [{"name": n, "in": "query", "required": req, "description": desc, "schema": _schema(lst),
                      **({"style": "form", "explode": True} if lst else {})}
                     for n, (desc, req, lst) in params.items()]
    elif params:
        props = {n: {**_schema(lst), "description": desc} for n, (desc, _req, lst) in params.items()}
        required = [n for n, (_d, req, _l) in params.items() if req]
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        extra["requestBody"] = {"required": bool(required), "content": {
            "application/x-www-form-urlencoded": {"schema": schema}}}
    if path in BODIES and method == "POST":
        ctype, desc = BODIES[path]
        extra["requestBody"] = {"required": True, "description": desc,
                                "content": {ctype: {"schema": {"type": "string", "format": "binary"}}}}
    if declared:
        extra["parameters"] = declared
    return extra


def route_kwargs(path: str, method: str) -> dict[str, Any]:
    """Keyword arguments of ``add_api_route`` for one method of ``path``."""
    return {"operation_id": operation_id(path, method), "openapi_extra": openapi_extra(path, method) or None}


def document_plain_routes(app: FastAPI) -> None:
    """Adds the plain Starlette routes (not APIRoute) of ``app`` to its OpenAPI document."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = base()
        for route in app.routes:
            if isinstance(route, APIRoute) or not isinstance(route, Route) or not route.include_in_schema:
                continue
            for method in sorted(route.methods or ()):
                if method == "HEAD" and "GET" in (route.methods or ()):
                    continue
                op: dict[str, Any] = {"operationId": operation_id(route.path, method),
                                      "summary": (route.endpoint.__doc__ or route.name or "").strip().split("\n")[0],
                                      "responses": {"200": {"description": "Success"}}}
                op.update(openapi_extra(route.path, method))
                doc.setdefault("paths", {}).setdefault(route.path, {})[method.lower()] = op
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
