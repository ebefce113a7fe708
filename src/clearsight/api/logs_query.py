"""Log reads: Loki's query API in Loki's response shapes (``/loki/api/v1/query_range``, ``/query``,
``/labels``, ``/label/{name}/values``, ``/series``, ``/index/stats``, ``/index/volume``,
``/index/volume_range``, ``/detected_fields``, ``/detected_labels``, ``/patterns``,
``/format_query``; ``/tail`` is ``logs_tail.py``) and the native ``GET /api/v1/events``.

LogQL log queries answer ``streams``, metric queries ``vector``/``scalar`` (instant) or ``matrix``
(range), evaluated by ``query/logql/evaluator.py``. Every read runs under the query governor on
the query pool (bounded concurrency, fair queue, a deadline from arrival, cancelled when the
client goes away). Errors are Loki's: plain text, 400 for bad input, query limits and pipeline
errors, 504 past the deadline, 503 with Retry-After when the queue is full. Times: Loki's rule (an
integer of up to 10 digits is seconds, longer is nanoseconds, a decimal number is seconds, else
RFC 3339). Bounds: ``limit`` up to ``logs.max_entries_limit_per_query``, ``end - start`` up to
``logs.max_query_length``, the ``LogQLLimits`` (lines, bytes, series, points).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
import re2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clearsight.api.admission import served_hosts
from clearsight.api.common import ApiError, TenantOf
from clearsight.api.events_grpc import EventQuery
from clearsight.api.query_admission import Deadline, Unavailable, make_governor, run_read
from clearsight.config import QueryConfig
from clearsight.ingest.log_common import parse_rfc3339_ns
from clearsight.model.labels import Labels, to_dict
from clearsight.model.logs import Event, LogBatch
from clearsight.model.matchers import Matcher
from clearsight.pipeline.errors import IngestError
from clearsight.pipeline.event_entries import EVENT_TYPE_LABEL, event_json, event_of
from clearsight.query.budget import QueryBudget, QueryCanceled, running
from clearsight.query.governor import QueryGovernor
from clearsight.query.logql.ast import LogSelector, MetricExpr
from clearsight.query.logql.discovery import detect_fields, mine_patterns
from clearsight.query.logql.evaluator import LogQLEvaluator, LogQLLimits
from clearsight.query.logql.parser import LogQLParseError, parse_expr, parse_log_query, range_duration_ns
from clearsight.query.logql.printer import format_expr
from clearsight.query.logql.range_agg import aggregate as range_aggregate
from clearsight.query.promql.values import QueryError, QueryTimeout, ScalarSteps, VectorSteps
from clearsight.query.promql.vecutil import format_float
from clearsight.store.interface import LimitExceeded
from clearsight.store.logs_interface import Direction, LogSizes, LogStore

NS = 1_000_000_000
LOOPBACK_ONLY = served_hosts([], "")
SAMPLE_LINES_MAX = 50_000  # lines detected_fields / patterns look at, at most
DEFAULT_RANGE_NS = 3600 * NS
DEFAULT_LABELS_RANGE_NS = 6 * 3600 * NS


class BadRequest(Exception):
    pass


def parse_loki_time(value: str | None, default: int, name: str) -> int:
    """A Loki time parameter as int ns."""
    if value is None or value == "":
        return default
    v = value.strip()
    try:
        if "." in v:
            return round(float(v) * NS)
        n = int(v)
        return n * NS if len(v.lstrip("-")) <= 10 else n
    except (ValueError, OverflowError):
        pass
    try:
        return parse_rfc3339_ns(v)
    except (ValueError, IngestError):
        raise BadRequest(f'invalid {name}: cannot parse "{value}" as a timestamp (unix seconds, nanoseconds '
                         "or RFC 3339)") from None


def _duration_ns(value: str, name: str) -> int:
    """A Go/Prometheus duration (``5m``, ``1h30m``, ``250ms``, ``1.5s``) or float seconds."""
    ns = range_duration_ns(value.strip())
    if ns is not None:
        return ns
    try:
        return round(float(value) * NS)
    except (ValueError, OverflowError):
        raise BadRequest(f'invalid {name}: cannot parse "{value}" as a duration') from None


def _text(message: str, status: int = 400) -> Response:
    return Response(message + "\n", status_code=status, media_type="text/plain; charset=utf-8")


def _json(obj: Any) -> Response:
    return Response(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), media_type="application/json")


def _seconds(ns: int) -> int | float:
    """A step time as Loki writes it in metric results: seconds, fractional only when needed."""
    return ns // NS if ns % NS == 0 else ns / NS


def metric_result(value: ScalarSteps | VectorSteps, steps: Any, instant: bool) -> tuple[str, Any]:
    """Loki's ``scalar`` / ``vector`` / ``matrix`` result of a metric query."""
    times = [_seconds(int(t)) for t in steps.tolist()]
    if isinstance(value, ScalarSteps):
        if instant:
            return "scalar", [times[0], format_float(float(value.values[0]))]
        return "matrix", [{"metric": {}, "values": [[t, format_float(float(v))] for t, v in
                                                    zip(times, value.values.tolist(), strict=True)]}]
    out: list[dict[str, Any]] = []
    vals = value.values
    pres = value.present
    for i, labels in enumerate(value.labels):
        cols = np.flatnonzero(pres[i]).tolist()
        if not cols:
            continue
        if instant:
            out.append({"metric": to_dict(labels), "value": [times[0], format_float(float(vals[i, 0]))]})
        else:
            out.append({"metric": to_dict(labels),
                        "values": [[times[j], format_float(float(vals[i, j]))] for j in cols]})
    if not instant:
        out.sort(key=lambda r: sorted(r["metric"].items()))
    return ("vector" if instant else "matrix"), out


def streams_result(batch: LogBatch) -> list[dict[str, Any]]:
    """Loki's ``streams`` result: one object per stream, entries in the batch's order."""
    out: list[dict[str, Any]] = []
    by_stream: dict[int, list[list[str]]] = {}
    for j, (t, body) in enumerate(zip(batch.timestamps.tolist(), batch.body, strict=True)):
        s = int(batch.stream_idx[j])
        vals = by_stream.get(s)
        if vals is None:
            vals = by_stream[s] = []
            out.append({"stream": to_dict(batch.streams[s]), "values": vals})
        vals.append([str(t), body])
    return out


class LogQueryApi:
    def __init__(self, store: LogStore, tenant_of: TenantOf, *, max_entries: int, max_query_length_ns: int,
                 clock_ns: Callable[[], int] = time.time_ns, governor: QueryGovernor | None = None,
                 timeout_s: float = 120.0, limits: LogQLLimits | None = None,
                 served: frozenset[str] | None = LOOPBACK_ONLY) -> None:
        """``served``: the host names a browser page may come from for the tail WebSocket
        (``api/admission.served_hosts``; None: any)."""
        self.store = store
        self.tenant_of = tenant_of
        self.max_entries = max_entries
        self.max_len = max_query_length_ns
        self.clock_ns = clock_ns
        self.governor = governor if governor is not None else make_governor(QueryConfig())
        self.timeout_s = timeout_s
        self.limits = limits if limits is not None else LogQLLimits()
        self.served = served

    def _limit(self, raw: str | None, default: int = 100) -> int:
        if raw is None or raw == "":
            return default
        try:
            n = int(raw)
        except ValueError:
            raise BadRequest(f'invalid limit: cannot parse "{raw}" as an integer') from None
        if n <= 0:
            raise BadRequest("limit must be a positive value")
        if n > self.max_entries:
            raise BadRequest(f"max entries limit per query exceeded, limit > max_entries_limit "
                             f"({n} > {self.max_entries}) (logs.max_entries_limit_per_query)")
        return n

    def _check_len(self, start: int, end: int) -> None:
        if end - start > self.max_len:
            raise BadRequest(f"the query time range exceeds the limit (query length: {(end - start) / 3.6e12:.1f}h, "
                             f"limit: {self.max_len / 3.6e12:.1f}h) (logs.max_query_length)")

    def _range(self, q: Any, default_len: int) -> tuple[int, int]:
        now = self.clock_ns()
        end = parse_loki_time(q.get("end"), now, "end")
        since = q.get("since")
        default_start = end - (_duration_ns(since, "since") if since else default_len)
        start = parse_loki_time(q.get("start"), default_start, "start")
        if end < start:
            raise BadRequest("end timestamp must not be before start time")
        self._check_len(start, end)
        return start, end

    @staticmethod
    def _direction(raw: str | None) -> Direction:
        d = (raw or "backward").lower()
        if d not in ("forward", "backward"):
            raise BadRequest(f'invalid direction "{raw}": expected forward or backward')
        return "forward" if d == "forward" else "backward"

    def _timeout(self, q: Any) -> float:
        raw = q.get("timeout")
        if not raw:
            return self.timeout_s
        t = _duration_ns(raw, "timeout") / NS
        if t <= 0:
            raise BadRequest("timeout must be positive")
        return min(t, self.timeout_s)

    async def _run(self, request: Request, fn: Callable[[str, Any, QueryBudget], Any]) -> Response:
        """Parses nothing itself: runs ``fn(tenant, params, budget)`` under the query governor
        (bounded concurrency, fair queue, deadline from arrival, cancel when the client leaves)."""
        try:
            tenant = self.tenant_of(request)
            q = request.query_params
            deadline = Deadline(self._timeout(q))

            def work(cancel: threading.Event, remaining: float) -> Any:
                budget = QueryBudget(self.limits.max_samples, time.monotonic() + remaining, cancel)
                with running(budget):
                    return fn(tenant, q, budget)
            return _json(await run_read(self.governor, request, tenant, work, deadline))
        except (BadRequest, LogQLParseError) as e:
            return _text(str(e))
        except Unavailable as e:
            return Response(e.message + "\n", status_code=503, media_type="text/plain; charset=utf-8",
                            headers={"Retry-After": str(max(1, math.ceil(e.retry_after)))})
        except ApiError as e:
            return _text(e.message, 504 if e.error_type == "timeout" else e.status)
        except QueryTimeout as e:
            return _text(str(e), 504)
        except QueryCanceled as e:
            return _text(str(e), 499)
        except QueryError as e:  # limits, pipeline errors, bad operand types
            return _text(str(e))
        except ValueError as e:  # a regex DuckDB's RE2 refuses, an invalid tenant
            return _text(str(e))

    def _select(self, tenant: str, q: Any, start: int, end: int, budget: QueryBudget,
                instant_ns: int | None = None) -> dict[str, Any]:
        text = q.get("query")
        if not text:
            raise BadRequest("query parameter is required")
        t0 = time.perf_counter()
        expr = parse_expr(text)
        ev = LogQLEvaluator(self.store, tenant, self.limits, budget)
        if isinstance(expr, LogSelector):
            limit = self._limit(q.get("limit"))
            streams = ev.logs(expr, start, end, limit, self._direction(q.get("direction")))
            result: Any = [{"stream": to_dict(s.labels), "values": [[str(t), line] for t, line in s.entries]}
                           for s in streams]
            rtype = "streams"
            returned = sum(len(s.entries) for s in streams)
        else:
            assert isinstance(expr, MetricExpr)
            if instant_ns is not None:
                steps = np.array([instant_ns], dtype=np.int64)
            else:
                step = self._step(q, start, end)
                steps = np.arange(start, end + 1, step, dtype=np.int64)
            value = ev.metric(expr, steps)
            rtype, result = metric_result(value, steps, instant_ns is not None)
            returned = 0
        stats = {"summary": {"totalEntriesReturned": returned, "execTime": round(time.perf_counter() - t0, 6),
                             "totalLinesProcessed": ev.stats.lines_processed,
                             "totalBytesProcessed": ev.stats.bytes_processed}}
        data: dict[str, Any] = {"resultType": rtype, "result": result, "stats": stats}
        out: dict[str, Any] = {"status": "success", "data": data}
        if ev.annotations.warnings:
            out["warnings"] = ev.annotations.warnings
        return out

    def _step(self, q: Any, start: int, end: int) -> int:
        raw = q.get("step")
        if raw:
            step = _duration_ns(raw, "step")
            if step <= 0:
                raise BadRequest("zero or negative query resolution step widths are not accepted. Try a positive "
                                 "integer")
        else:
            step = max(1, (end - start) // NS // 250) * NS  # Loki's default: (end - start) / 250, at least 1s
        if (end - start) // step + 1 > self.limits.max_points:
            raise BadRequest(f"exceeded maximum resolution of {self.limits.max_points:,} points per timeseries. Try "
                             "decreasing the query resolution (?step=XX)")
        return step

    async def query_range(self, request: Request) -> Response:
        """Loki range query: a log query answers ``streams``, a metric query ``matrix``."""
        def run(tenant: str, q: Any, budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_RANGE_NS)
            return self._select(tenant, q, start, end, budget)
        return await self._run(request, run)

    async def query(self, request: Request) -> Response:
        """Loki instant query: a metric query answers ``vector`` (or ``scalar``) at ``time``; a log
        query answers the entries up to ``time`` within ``since`` (default 1h)."""
        def run(tenant: str, q: Any, budget: QueryBudget) -> Any:
            end = parse_loki_time(q.get("time"), self.clock_ns(), "time")
            since = q.get("since")
            start = end - (_duration_ns(since, "since") if since else DEFAULT_RANGE_NS)
            self._check_len(start, end)
            return self._select(tenant, q, start, end, budget, instant_ns=end)
        return await self._run(request, run)

    def _selector(self, q: Any) -> Sequence[Matcher]:
        text = q.get("query")
        return parse_log_query(text).matchers if text else ()

    async def labels(self, request: Request) -> Response:
        """Loki label names of streams with entries in [start, end] (default the last 6h)."""
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_LABELS_RANGE_NS)
            return {"status": "success", "data": self.store.label_names(tenant, start, end, self._selector(q))}
        return await self._run(request, run)

    async def label_values(self, request: Request) -> Response:
        """Loki values of one stream label (optional `query` selector)."""
        name = request.path_params["name"]

        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_LABELS_RANGE_NS)
            return {"status": "success",
                    "data": self.store.label_values(tenant, name, start, end, self._selector(q))}
        return await self._run(request, run)

    async def series(self, request: Request) -> Response:
        """Loki series: label sets of streams matching any match[] selector in [start, end]."""
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_LABELS_RANGE_NS)
            sets = [parse_log_query(m).matchers for m in q.getlist("match[]") or q.getlist("match")]
            if not sets:
                raise BadRequest("match[] parameter is required")
            return {"status": "success", "data": [to_dict(x) for x in self.store.series(tenant, sets, start, end)]}
        return await self._run(request, run)

    def _sizes(self, tenant: str, q: Any, start: int, end: int) -> LogSizes:
        text = q.get("query")
        if not text:
            raise BadRequest("query parameter is required")
        try:
            return self.store.select_sizes(tenant, parse_log_query(text).matchers, start, end, (),
                                           self.limits.max_lines)
        except LimitExceeded:
            raise BadRequest(f"the query would read more than {self.limits.max_lines:,} log lines "
                             "(logs.max_query_lines): narrow the time range or the stream selector") from None

    async def index_stats(self, request: Request) -> Response:
        """Loki index stats of the streams a selector matches in [start, end]: streams, chunks (here:
        stream-days), entries and bytes (line bodies)."""
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_RANGE_NS)
            sz = self._sizes(tenant, q, start, end)
            days = sz.timestamps // (86400 * NS)
            pairs = np.stack([sz.stream_idx.astype(np.int64), days], axis=1)
            chunks = int(np.unique(pairs, axis=0).shape[0]) if pairs.size else 0
            return {"streams": len(sz.streams), "chunks": chunks, "entries": int(sz.timestamps.size),
                    "bytes": int(sz.sizes.sum())}
        return await self._run(request, run)

    def _volume_groups(self, q: Any, streams: list[Labels]) -> tuple[list[Labels], Any]:
        """Volume keys per stream: the labels named by ``targetLabels`` or, by default, by the
        selector's matchers (Loki's default ``aggregateBy=series``)."""
        agg = q.get("aggregateBy") or "series"
        if agg != "series":
            raise BadRequest(f'invalid aggregateBy "{agg}": only "series" is supported')
        target = [t.strip() for t in (q.get("targetLabels") or "").split(",") if t.strip()]
        names = target or sorted({m.name for m in parse_log_query(q.get("query")).matchers})
        keys: dict[Labels, int] = {}
        gid = np.array([keys.setdefault(tuple((n, v) for n, v in s if n in names), len(keys)) for s in streams],
                       dtype=np.int64)
        return list(keys), gid

    async def index_volume(self, request: Request) -> Response:
        """Loki volume: bytes per label set in [start, end], largest first, at most ``limit``
        (default 100), as an instant ``vector`` at ``end``."""
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_RANGE_NS)
            limit = self._limit(q.get("limit"), 100)
            sz = self._sizes(tenant, q, start, end)
            keys, gid = self._volume_groups(q, sz.streams)
            vol = np.zeros(len(keys))
            if sz.sizes.size:
                np.add.at(vol, gid[sz.stream_idx], sz.sizes.astype(np.float64))
            order = sorted(range(len(keys)), key=lambda i: (-vol[i], keys[i]))[:limit]
            return {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": to_dict(keys[i]), "value": [_seconds(end), format_float(float(vol[i]))]} for i in order]}}
        return await self._run(request, run)

    async def index_volume_range(self, request: Request) -> Response:
        """Loki volume_range: bytes per label set and ``step`` (default Loki's), as a ``matrix``."""
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_RANGE_NS)
            limit = self._limit(q.get("limit"), 100)
            step = self._step(q, start, end)
            sz = self._sizes(tenant, q, start, end)
            keys, gid = self._volume_groups(q, sz.streams)
            steps = np.arange(start, end + 1, step, dtype=np.int64)
            g_of = gid[sz.stream_idx] if sz.sizes.size else np.zeros(0, np.int64)
            rows = []
            for g, key in enumerate(keys):
                sel = g_of == g
                vals, pres = range_aggregate("bytes_over_time", sz.timestamps[sel], sz.sizes[sel].astype(np.float64),
                                             steps, step)
                rows.append((float(vals[pres].sum()), key, vals, pres))
            rows.sort(key=lambda r: (-r[0], r[1]))
            value = VectorSteps([r[1] for r in rows[:limit]], np.array([r[2] for r in rows[:limit]]).reshape(-1, steps.size),
                                np.array([r[3] for r in rows[:limit]], dtype=bool).reshape(-1, steps.size))
            return {"status": "success", "data": dict(zip(("resultType", "result"),
                                                          metric_result(value, steps, False), strict=True))}
        return await self._run(request, run)

    def _sample(self, tenant: str, q: Any, budget: QueryBudget, default_limit: int,
                param: str) -> tuple[list[tuple[int, str]], int, int]:
        """The newest entries of the log query in ``q`` (pipeline applied), at most ``param``."""
        start, end = self._range(q, DEFAULT_RANGE_NS)
        text = q.get("query")
        if not text:
            raise BadRequest("query parameter is required")
        expr = parse_expr(text)
        if not isinstance(expr, LogSelector):
            raise BadRequest("query must be a log query (a stream selector and optional pipeline)")
        raw = q.get(param)
        try:
            n = int(raw) if raw else default_limit
        except ValueError:
            raise BadRequest(f'invalid {param}: cannot parse "{raw}" as an integer') from None
        if not 0 < n <= SAMPLE_LINES_MAX:
            raise BadRequest(f"{param} must be between 1 and {SAMPLE_LINES_MAX}")
        streams = LogQLEvaluator(self.store, tenant, self.limits, budget).logs(expr, start, end, n, "backward")
        return [e for s in streams for e in s.entries], start, end

    async def detected_fields(self, request: Request) -> Response:
        """Loki's detected fields of the newest ``line_limit`` (1000) lines: name, type,
        cardinality and parsers, at most ``limit`` (1000) fields."""
        def run(tenant: str, q: Any, budget: QueryBudget) -> Any:
            entries, _start, _end = self._sample(tenant, q, budget, 1000, "line_limit")
            limit = self._limit(q.get("limit"), 1000) if q.get("limit") else 1000
            fields = detect_fields(line for _t, line in entries)[:limit]
            return {"fields": [{"label": f.label, "type": f.type, "cardinality": len(f.values),
                                "parsers": sorted(f.parsers)} for f in fields], "limit": limit}
        return await self._run(request, run)

    async def patterns(self, request: Request) -> Response:
        """Loki's patterns of the newest lines (up to ``SAMPLE_LINES_MAX``) with counts per
        ``step`` (``query/logql/discovery.py``)."""
        def run(tenant: str, q: Any, budget: QueryBudget) -> Any:
            entries, start, end = self._sample(tenant, q, budget, SAMPLE_LINES_MAX, "line_limit")
            step = self._step(q, start, end)
            found = mine_patterns(entries, start, step)
            return {"status": "success", "data": [
                {"pattern": p, "samples": [[_seconds(t), n] for t, n in sorted(c.items())]} for p, c in found]}
        return await self._run(request, run)

    async def detected_labels(self, request: Request) -> Response:
        """Loki's detected labels: the stream label names of the streams the selector (optional)
        matches in [start, end], with how many values each has."""
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_LABELS_RANGE_NS)
            matchers = self._selector(q)
            return {"detectedLabels": [
                {"label": name, "cardinality": len(self.store.label_values(tenant, name, start, end, matchers))}
                for name in self.store.label_names(tenant, start, end, matchers)]}
        return await self._run(request, run)

    async def format_query(self, request: Request) -> Response:
        """Loki's format_query: the query printed canonically (``query/logql/printer.py``)."""
        def run(_tenant: str, q: Any, _budget: QueryBudget) -> Any:
            text = q.get("query")
            if not text:
                raise BadRequest("query parameter is required")
            return {"status": "success", "data": format_expr(parse_expr(text))}
        return await self._run(request, run)

    async def events(self, request: Request) -> Response:
        """Native event query: type, level, origin filters (each repeatable), ``label=name=value`` (a
        stream label, exact; repeatable, ANDed: an event's ``name=value`` tags are stream labels),
        start/end/since, limit, direction."""
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            start, end = self._range(q, DEFAULT_RANGE_NS)
            evs = self.select_events(tenant, [q.getlist(p) for p in ("type", "level", "origin")], start, end,
                                     self._limit(q.get("limit")), self._direction(q.get("direction")),
                                     label_filters(q.getlist("label")))
            return {"status": "success", "data": {"events": [event_json(ev) for ev in evs]}}
        return await self._run(request, run)

    def select_events(self, tenant: str, filters: Sequence[Sequence[str]], start: int, end: int, limit: int,
                      direction: Direction, labels: Sequence[Matcher] = ()) -> list[Event]:
        """Events in [start, end]; ``filters`` are the type, level and origin values (each list
        matches any of its values; empty: no filter); ``labels``: more stream label matchers (ANDed)."""
        matchers = [Matcher.of("=~", EVENT_TYPE_LABEL, ".+"), *labels]
        for values, label in zip(filters, (EVENT_TYPE_LABEL, "level", "origin"), strict=True):
            vs = [v.upper() if label == "level" else v for v in values if v]
            if vs:
                matchers.append(Matcher.of("=~", label, "|".join(_re_escape(v) for v in vs)))
        batch = self.store.select(tenant, matchers, start, end, (), limit, direction)
        return [event_of(batch.entry(j)) for j in range(len(batch))]

    def query_events_grpc(self, tenant: str, q: EventQuery, labels: Sequence[Matcher] = ()) -> list[Event]:
        """The event gRPC service's ``Query`` (``api/events_grpc.py``): the same defaults and bounds as
        ``GET /api/v1/events``, ``labels`` narrowing it as ``label=`` filters do; a bad request raises
        ``ValueError``. Not queued by the query governor: bounded by the limit and the range length."""
        try:
            end = q.end_ns or self.clock_ns()
            start = q.start_ns or end - DEFAULT_RANGE_NS
            if end < start:
                raise BadRequest("end timestamp must not be before start time")
            self._check_len(start, end)
            limit = self._limit(str(q.limit) if q.limit else None)
        except BadRequest as e:
            raise ValueError(str(e)) from None
        return self.select_events(tenant, (q.types, q.levels, q.origins), start, end, limit,
                                  "forward" if q.forward else "backward", labels)

    def routes(self) -> list[BaseRoute]:
        h: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
            ("/loki/api/v1/query_range", self.query_range, ["GET"]),
            ("/loki/api/v1/query", self.query, ["GET"]),
            ("/loki/api/v1/labels", self.labels, ["GET"]),
            ("/loki/api/v1/label/{name}/values", self.label_values, ["GET"]),
            ("/loki/api/v1/series", self.series, ["GET"]),
            ("/loki/api/v1/index/stats", self.index_stats, ["GET"]),
            ("/loki/api/v1/detected_fields", self.detected_fields, ["GET"]),
            ("/loki/api/v1/patterns", self.patterns, ["GET"]),
            ("/loki/api/v1/detected_labels", self.detected_labels, ["GET"]),
            ("/loki/api/v1/format_query", self.format_query, ["GET"]),
            ("/loki/api/v1/index/volume", self.index_volume, ["GET"]),
            ("/loki/api/v1/index/volume_range", self.index_volume_range, ["GET"]),
            ("/api/v1/events", self.events, ["GET"]),
        ]
        from clearsight.api.logs_tail import make_logs_tail_route  # it imports this module

        return [*(Route(p, fn, methods=m, name=p.strip("/").replace("/", "_")) for p, fn, m in h),
                make_logs_tail_route(self, self.served)]


_LABEL_NAME = re2.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def label_filters(raw: Sequence[str]) -> list[Matcher]:
    """``label=name=value`` query parameters (the native log and event APIs): exact stream label
    matchers, ANDed; BadRequest for a malformed one."""
    out = []
    for r in raw:
        name, sep, value = r.partition("=")
        if not sep or not _LABEL_NAME.match(name):
            raise BadRequest(f"invalid label filter {r!r}: expected label=name=value")
        out.append(Matcher.of("=", name, value))
    return out


def _re_escape(v: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\\" else c for c in v)
