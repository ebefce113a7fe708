"""Discovery conveniences on top of the store (GoSight-style), as small REST endpoints.

- ``GET /api/v1/catalog``: metric names with their label names and (up to ``values_limit``) values,
  and the metadata type/help/unit when known. ``match[]`` narrows it; ``start``/``end`` bound it.
- ``GET /api/v1/latest``: the latest sample of every series matching ``match[]`` (within
  ``lookback``, default 5m, before ``time``), stale series excluded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from clearsight.api.common import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    TenantOf,
    format_float,
    format_ts,
    limit_param,
    params,
    success,
    time_param,
)
from clearsight.api.prometheus_query import parse_step_ms
from clearsight.api.prometheus_read import parse_match_params
from clearsight.api.query_admission import api_error_response, governed, make_governor
from clearsight.config import QueryConfig
from clearsight.model.labels import METRIC_NAME, Labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import stale_mask
from clearsight.query.governor import QueryGovernor
from clearsight.store.interface import MetricsStore

Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_VALUES_LIMIT = 100
MAX_CATALOG_SERIES = 1_000_000


def build_catalog(series: list[Labels], values_limit: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, set[str]]] = {}
    counts: dict[str, int] = {}
    for labels in series:
        name = ""
        for n, v in labels:
            if n == METRIC_NAME:
                name = v
                break
        entry = out.setdefault(name, {})
        counts[name] = counts.get(name, 0) + 1
        for n, v in labels:
            if n != METRIC_NAME:
                entry.setdefault(n, set()).add(v)
    result: dict[str, dict[str, Any]] = {}
    for name in sorted(out):
        labels_out: dict[str, Any] = {}
        for lname in sorted(out[name]):
            vals = sorted(out[name][lname])
            labels_out[lname] = {"values": vals[:values_limit], "count": len(vals),
                                 "truncated": len(vals) > values_limit}
        result[name] = {"series": counts[name], "labels": labels_out}
    return result


def latest_samples(store: MetricsStore, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int,
                   end_ms: int) -> dict[Labels, tuple[int, float]]:
    """The newest sample in [start_ms, end_ms] of every series matching any matcher set, leaving
    out series whose newest sample there is a stale marker or a native histogram (a float sample is
    all these answers carry: ``/api/v1/latest``, ``/federate``)."""
    out: dict[Labels, tuple[int, float]] = {}
    for ms in matcher_sets:
        data = store.select(tenant, ms, start_ms, end_ms)
        for i in range(len(data)):
            labels, ts, vals = data.series(i)
            if len(ts) == 0 or bool(stale_mask(vals[-1:])[0]):
                continue
            if data.histograms is not None and data.histograms[int(data.offsets[i + 1]) - 1] is not None:
                continue
            out[labels] = (int(ts[-1]), float(vals[-1]))
    return out


def make_discovery_handlers(store: MetricsStore, tenant_of: TenantOf,
                            governor: QueryGovernor | None = None) -> dict[str, Handler]:
    """Catalog and latest; their store reads run under ``governor`` (admission, the query pool)."""
    gov = governor if governor is not None else make_governor(QueryConfig())

    async def catalog(request: Request) -> Response:
        try:
            p = await params(request)
            matchers = parse_match_params(p, required=False)
            start = time_param(p, "start", MIN_TIME_MS)
            end = time_param(p, "end", MAX_TIME_MS)
            values_limit = limit_param(p, "values_limit") or DEFAULT_VALUES_LIMIT
            tenant = tenant_of(request)
            def read() -> tuple[list[Labels], dict[str, Any]]:
                series = store.series(tenant, matchers, start, end, MAX_CATALOG_SERIES + 1)
                if len(series) > MAX_CATALOG_SERIES:
                    return series, {}
                return series, dict(store.metadata(tenant, None, None, 1))

            series, md = await governed(gov, request, tenant, read)
            if len(series) > MAX_CATALOG_SERIES:
                raise ApiError("bad_data", f"more than {MAX_CATALOG_SERIES} series match: narrow it with match[]")
        except ApiError as e:
            return api_error_response(e)
        data = build_catalog(series, values_limit)
        for name, entry in data.items():
            meta = md.get(name)
            if meta:
                entry["type"], entry["help"], entry["unit"] = meta[0].type, meta[0].help, meta[0].unit
        return success(data)

    async def latest(request: Request) -> Response:
        try:
            p = await params(request)
            matcher_sets = parse_match_params(p, required=True)
            at = time_param(p, "time", int(time.time() * 1000))
            lookback = parse_step_ms(str(p.get("lookback") or "5m"), "lookback")
            limit = limit_param(p)
            tenant = tenant_of(request)

            out = await governed(gov, request, tenant,
                                 lambda: latest_samples(store, tenant, matcher_sets, at - lookback, at))
        except ApiError as e:
            return api_error_response(e)
        items = sorted(out.items())
        warnings = []
        if limit is not None and len(items) > limit:
            items = items[:limit]
            warnings.append(f"results truncated due to limit of {limit}")
        return success([{"metric": dict(lbl), "value": [format_ts(t), format_float(v)]} for lbl, (t, v) in items],
                       warnings or None)

    return {"catalog": catalog, "latest": latest}



__all__ = ["build_catalog", "make_discovery_handlers"]
