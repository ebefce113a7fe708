"""Prometheus' status and management endpoints, in Prometheus 2.x's shapes:

``/-/healthy``, ``/-/ready``, ``/-/reload``, ``/api/v1/status/{config,flags,runtimeinfo,tsdb}``,
``/api/v1/targets/metadata``, ``/api/v1/alertmanagers``, ``/api/v1/query_exemplars`` and (in
``make_admin_tsdb_routes``) the admin ``/api/v1/admin/tsdb/{delete_series,clean_tombstones,snapshot}`` (disabled unless
``server.enable_admin_api``; ``delete_series`` removes samples at once through the store, so
``clean_tombstones`` has nothing to do; no snapshots). Everything per tenant reads through the store's public read API.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clearsight.api.audit_routes import AUDIT_DETAIL
from clearsight.api.common import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    Params,
    TenantOf,
    error_response,
    format_float,
    format_ts,
    params,
    parse_time_ms,
    run_blocking,
    success,
    time_param,
)
from clearsight.config import Config
from clearsight.model.labels import Labels
from clearsight.pipeline.series_budget import AUTO as SERIES_AUTO
from clearsight.store.exemplars_interface import ExemplarStore
from clearsight.store.interface import MetricsStore, StoreClosed, StoreError

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
# (path, handler, methods, summary), as api/app.py mounts them.
RouteSpec = tuple[str, Handler, list[str], str]

SECRET = "<secret>"
# Keys whose values are secrets wherever they appear in the config (Prometheus shows "<secret>").
_SECRET_KEYS = {"password", "bearer_token", "credentials", "client_secret", "secret", "token", "api_key",
                "access_key", "secret_key", "private_key", "key", "pii_secret"}
# The window /api/v1/status/tsdb covers: like Prometheus' head block, the last two hours.
TSDB_STATS_WINDOW_MS = 2 * 3600_000
TSDB_STATS_DEFAULT_LIMIT = 10


def redact(obj: Any) -> Any:
    """A copy of a config document with every secret value replaced by ``<secret>``."""
    if isinstance(obj, dict):
        return {k: (SECRET if str(k).lower() in _SECRET_KEYS and v not in (None, "") else redact(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def config_document(cfg: Config) -> dict[str, Any]:
    """The effective configuration as a YAML-able mapping (section names as in the file)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.name in ("scrape_configs", "source"):
            continue
        out[f.name.rstrip("_")] = dataclasses.asdict(getattr(cfg, f.name))
    if out["limits"]["max_series_total"] == SERIES_AUTO:  # as written in the file
        out["limits"]["max_series_total"] = "auto"
    out["scrape_configs"] = cfg.scrape_configs
    return redact(out)


def config_flags(cfg: Config) -> dict[str, str]:
    """Every effective setting as ``section.key`` -> string, the shape of Prometheus' flags."""
    doc = config_document(cfg)
    flags: dict[str, str] = {"config.file": "" if cfg.source == "<defaults>" else cfg.source}
    for section, values in doc.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            flags[f"{section}.{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return dict(sorted(flags.items()))


def tsdb_stats(series: Sequence[Labels], limit: int, window: tuple[int, int]) -> dict[str, Any]:
    """Prometheus' ``/api/v1/status/tsdb`` data for the given series (top ``limit`` of each list)."""
    by_metric: Counter[str] = Counter()
    by_pair: Counter[str] = Counter()
    values_by_name: defaultdict[str, set[str]] = defaultdict(set)
    for labels in series:
        for name, value in labels:
            if name == "__name__":
                by_metric[value] += 1
            by_pair[f"{name}={value}"] += 1
            values_by_name[name].add(value)
    value_counts = {name: len(vals) for name, vals in values_by_name.items()}
    memory = {name: sum(len(v.encode()) for v in vals) for name, vals in values_by_name.items()}

    def top(counts: dict[str, int]) -> list[dict[str, Any]]:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"name": k, "value": v} for k, v in ranked]

    return {
        "headStats": {"numSeries": len(series), "numLabelPairs": len(by_pair), "chunkCount": 0,
                      "minTime": window[0], "maxTime": window[1]},
        "seriesCountByMetricName": top(by_metric),
        "labelValueCountByLabelName": top(value_counts),
        "memoryInBytesByLabelName": top(memory),
        "seriesCountByLabelValuePair": top(by_pair),
    }


def _positive_limit(p: Params, default: int | None) -> int | None:
    raw = p.get("limit")
    if raw is None or raw == "":
        return default
    try:
        n = int(str(raw))
    except ValueError:
        raise ApiError("bad_data", f'invalid parameter "limit": cannot parse "{raw}" to a valid limit') from None
    if n <= 0:
        raise ApiError("bad_data", "limit must be a positive number")
    return n


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def make_status_routes(cfg: Config, store: MetricsStore, tenant_of: TenantOf,
                       readiness: Callable[[], tuple[bool, str]],
                       started_at: float | None = None,
                       clock: Callable[[], float] = time.time,
                       exemplars: ExemplarStore | None = None) -> list[RouteSpec]:
    started = clock() if started_at is None else started_at
    retention = cfg.storage.retention

    async def healthy(request: Request) -> Response:
        return PlainTextResponse("Prometheus Server is Healthy.\n")

    async def ready(request: Request) -> Response:
        ok, _reason = readiness()
        if ok:
            return PlainTextResponse("Prometheus Server is Ready.\n")
        return PlainTextResponse("Service Unavailable\n", status_code=503)

    async def reload(request: Request) -> Response:
        return PlainTextResponse("Lifecycle API is not enabled.", status_code=403)

    async def status_config(request: Request) -> Response:
        text = yaml.safe_dump(config_document(cfg), sort_keys=False, default_flow_style=False)
        return success({"yaml": text})

    async def status_flags(request: Request) -> Response:
        return success(config_flags(cfg))

    async def runtimeinfo(request: Request) -> Response:
        return success({
            "startTime": _rfc3339(started),
            "CWD": os.getcwd(),
            "reloadConfigSuccess": True,
            "lastConfigTime": _rfc3339(int(started)),
            "corruptionCount": 0,
            "goroutineCount": threading.active_count(),
            "GOMAXPROCS": os.cpu_count() or 1,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": retention,
        })

    async def status_tsdb(request: Request) -> Response:
        try:
            p = await params(request)
            limit = _positive_limit(p, TSDB_STATS_DEFAULT_LIMIT)
            assert limit is not None
            tenant = tenant_of(request)
        except ApiError as e:
            return error_response(e)
        now = round(clock() * 1000)
        window = (now - TSDB_STATS_WINDOW_MS, now)
        found = await run_blocking(functools.partial(store.series, tenant, [], window[0], window[1]))
        return success(await run_blocking(functools.partial(tsdb_stats, found, limit, window)))

    async def targets_metadata(request: Request) -> Response:
        from clearsight.api.prometheus_read import parse_match_params

        try:
            p = await params(request)
            if p.get("match_target"):
                parse_match_params(Params([("match[]", p["match_target"])]), required=False)
            raw_limit = p.get("limit")
            if raw_limit not in (None, ""):
                try:
                    int(str(raw_limit))
                except ValueError:
                    raise ApiError("bad_data", f'invalid parameter "limit": cannot parse "{raw_limit}" to a valid '
                                   "limit") from None
        except ApiError as e:
            return error_response(e)
        # The scrape manager does not keep per-target metadata yet (it goes to the store per tenant).
        return success([])

    async def alertmanagers(request: Request) -> Response:
        return success({"activeAlertmanagers": [], "droppedAlertmanagers": []})

    async def query_exemplars(request: Request) -> Response:
        from clearsight.query.promql.ast import VectorSelector
        from clearsight.query.promql.engine import walk_nodes
        from clearsight.query.promql.parser import ParseError, parse_with_positions

        try:
            p = await params(request)
            start = _exemplar_time(p, "start", MIN_TIME_MS)
            end = _exemplar_time(p, "end", MAX_TIME_MS)
            if end < start:
                raise ApiError("bad_data", "end timestamp must not be before start timestamp")
            try:
                expr, _ = parse_with_positions(str(p.get("query") or ""))
            except ParseError as e:
                raise ApiError("bad_data", str(e)) from None
            tenant = tenant_of(request)
        except ApiError as e:
            return error_response(e)
        if exemplars is None:
            return success([])
        # Like Prometheus: the exemplars of every series any selector of the query selects.
        matcher_sets = [n.matchers for n in walk_nodes(expr) if isinstance(n, VectorSelector)]
        found = await run_blocking(functools.partial(exemplars.select, tenant, matcher_sets, start, end))
        return success([
            {"seriesLabels": dict(series),
             "exemplars": [{"labels": dict(e.labels), "value": format_float(e.value), "timestamp": format_ts(e.ts)}
                           for e in items]}
            for series, items in found
        ])

    return [
        ("/-/healthy", healthy, ["GET", "HEAD"], "Liveness, as Prometheus answers it (text)."),
        ("/-/ready", ready, ["GET", "HEAD"], "Readiness, as Prometheus answers it (text; 503 when not ready)."),
        ("/-/reload", reload, ["POST", "PUT"], "Prometheus' lifecycle reload: not enabled (403)."),
        ("/api/v1/status/config", status_config, ["GET"], "The effective configuration as YAML, secrets redacted."),
        ("/api/v1/status/flags", status_flags, ["GET"], "Every effective setting as section.key -> string."),
        ("/api/v1/status/runtimeinfo", runtimeinfo, ["GET"], "Runtime information (Prometheus' shape)."),
        ("/api/v1/status/tsdb", status_tsdb, ["GET"],
         "Cardinality of the tenant's series with samples in the last 2 h: top `limit` (default 10) by metric "
         "name, label name and label-value pair."),
        ("/api/v1/targets/metadata", targets_metadata, ["GET"],
         "Metric metadata per scrape target (match_target, metric, limit); empty until targets keep it."),
        ("/api/v1/alertmanagers", alertmanagers, ["GET"], "Alertmanagers (none until alerting lands)."),
        ("/api/v1/query_exemplars", query_exemplars, ["GET", "POST"],
         "Exemplars of the series the query's selectors select, in [start, end] (query, start, end)."),
    ]


def make_admin_tsdb_routes(cfg: Config, store: MetricsStore, tenant_of: TenantOf) -> list[Route]:
    """Prometheus' admin API, ``POST/PUT /api/v1/admin/tsdb/{delete_series,clean_tombstones,snapshot}``
    (answering "admin APIs disabled" unless ``server.enable_admin_api``). Plain routes, mounted by
    ``server.build`` among the audited routes (``api/audit_routes.py`` records every deletion)."""

    def admin_disabled() -> Response | None:
        if cfg.server.enable_admin_api:
            return None
        # Prometheus 2.x answers this with HTTP 500 and errorType "unavailable".
        return error_response(ApiError("unavailable", "admin APIs disabled", status=500))

    async def delete_series(request: Request) -> Response:
        """Admin: delete the samples in [start, end] of the series any match[] selects, in the
        caller's organisation, at once (204; disabled unless server.enable_admin_api)."""
        from clearsight.api.prometheus_read import parse_match_params

        if (off := admin_disabled()) is not None:
            return off
        try:
            p = await params(request)
            audit: dict[str, Any] = {"match": [str(x) for x in p.getlist("match[]")][:20]}
            setattr(request.state, AUDIT_DETAIL, audit)  # the audit entry says what was asked
            matcher_sets = parse_match_params(p, required=True)
            start = time_param(p, "start", MIN_TIME_MS)
            end = time_param(p, "end", MAX_TIME_MS)
            tenant = tenant_of(request)
        except ApiError as e:
            return error_response(e)
        try:
            deleted = await run_blocking(functools.partial(store.delete_series, tenant, matcher_sets, start, end))
        except StoreClosed as e:
            return error_response(ApiError("unavailable", str(e), status=503))
        except StoreError as e:
            return error_response(ApiError("internal", str(e), status=500))
        audit.update(start_ms=start, end_ms=end, samples_deleted=deleted)
        log.info("delete_series", extra={"tenant": tenant, **audit})
        return Response(status_code=204)

    async def clean_tombstones(request: Request) -> Response:
        """Admin: a no-op 204 (delete_series leaves no tombstones; disabled unless
        server.enable_admin_api)."""
        # delete_series removes samples at once (no tombstones): nothing to clean, as Prometheus
        # answers when there are none.
        return admin_disabled() or Response(status_code=204)

    async def snapshot(request: Request) -> Response:
        """Admin: snapshot, not supported (501; disabled unless server.enable_admin_api)."""
        return admin_disabled() or error_response(ApiError(
            "unavailable", "snapshots are not supported by the embedded store (copy the data directory "
            "while the server is stopped)", status=501))

    methods = ["POST", "PUT"]
    return [Route("/api/v1/admin/tsdb/delete_series", delete_series, methods=methods),
            Route("/api/v1/admin/tsdb/clean_tombstones", clean_tombstones, methods=methods),
            Route("/api/v1/admin/tsdb/snapshot", snapshot, methods=methods)]


def _exemplar_time(p: Params, name: str, default: int) -> int:
    raw = p.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_time_ms(str(raw), name)
    except ApiError:
        raise ApiError("bad_data", f'invalid parameter "{name}": Invalid time value for \'{name}\': '
                       f'cannot parse "{raw}" to a valid timestamp') from None

