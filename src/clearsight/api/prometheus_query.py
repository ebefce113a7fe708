"""Prometheus query API: ``/api/v1/query``, ``/api/v1/query_range``, ``/api/v1/format_query``,
``/api/v1/parse_query``. Shapes, error types and HTTP statuses as Prometheus answers them."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson
from starlette.requests import Request
from starlette.responses import Response

from clearsight.api.common import (
    PART_ITEMS,
    ApiError,
    Params,
    TenantOf,
    format_float,
    format_floats,
    format_timestamps,
    format_ts,
    limit_param,
    params,
    parse_time_ms,
    success,
    success_in_parts,
)
from clearsight.api.endpoints import endpoints
from clearsight.api.query_admission import Deadline, api_error_response, make_governor, run_read
from clearsight.config import QueryConfig, parse_duration_ms
from clearsight.query.budget import QueryCanceled
from clearsight.query.governor import QueryGovernor
from clearsight.query.promql import values as qv
from clearsight.query.promql.ast import Expr, ValueType
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.parser import ParseError, parse_with_positions
from clearsight.query.promql.prepared import INSTANT, Prepared, PreparedQueries, Shape, range_shape
from clearsight.query.promql.printer import ast_to_json, prettify_expr
from clearsight.query.promql.result import QueryResult, SeriesResult, histogram_json
from clearsight.query.write_priority import current_priority, pause_for_writes
from clearsight.store.interface import MetricsStore

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("clearsight.api.query")

# A query whose recent evaluations of the same shape (query/promql/prepared.py) took at most this much
# thread CPU, and whose evaluation time is recent (at most INLINE_RECENT_MS before now: older data
# may have to be read from disk), is evaluated on the event loop: handing it to the query pool
# (thread hand-off, wake-ups, the GIL changing hands twice) cost more than evaluating it.
INLINE_MAX_CPU_S = 0.002
INLINE_RECENT_MS = 15 * 60_000
# An answer of more points than this is encoded and sent in parts (api/common.py: PartsResponse).
PARTS_MIN_POINTS = 8192


def parse_step_ms(raw: str, name: str = "step") -> int:
    """Prometheus duration parameter: float seconds or a duration string."""
    s = raw.strip()
    try:
        f = float(s)
    except ValueError:
        try:
            return parse_duration_ms(s)
        except ValueError:
            raise ApiError("bad_data", f'invalid parameter "{name}": cannot parse "{raw}" to a valid duration') from None
    if math.isnan(f) or math.isinf(f) or abs(f) * 1000 > 2**62:
        raise ApiError("bad_data", f'invalid parameter "{name}": cannot parse "{raw}" to a valid duration')
    return round(f * 1000)


def _query_param(p: Params) -> str:
    q = p.get("query")
    if q is None or str(q).strip() == "":
        raise ApiError("bad_data", 'invalid parameter "query": query must not be empty')
    return str(q)


def encode_result(result: QueryResult, time_ms: int, limit: int | None) -> tuple[dict[str, Any], list[str]]:
    """The ``data`` object of a query response, and warnings added by ``limit`` truncation."""
    warnings: list[str] = []
    rt = result.result_type
    if rt == "scalar":
        return {"resultType": "scalar", "result": [format_ts(time_ms), format_float(result.scalar_value)]}, warnings
    if rt == "string":
        return {"resultType": "string", "result": [format_ts(time_ms), result.string_value]}, warnings
    rows = result.rows
    # the short path's rows (result.py), when the answer is sent whole (``_large``)
    if rt == "vector" and rows is not None and _jsonfmt is not None and len(rows.labels) <= _VECTOR_WHOLE:
        count = len(rows.labels)
        if limit is not None and count > limit:
            count = limit
            warnings.append(f"results truncated due to limit of {limit}")
        try:
            return {"resultType": rt, "result": orjson.Fragment(
                _jsonfmt.encode_vector(rows.labels, rows.timestamps, rows.values, count, format_float))}, warnings
        except (UnicodeEncodeError, TypeError):  # a lone surrogate in a label (orjson's own refusal,
            warnings.clear()                      # below), or a label set not a tuple of str pairs
    items = result.series
    if limit is not None and len(items) > limit:
        items = items[:limit]
        warnings.append(f"results truncated due to limit of {limit}")
    out: list[dict[str, Any]] = []
    if rt == "vector":
        texts = format_floats([float(s.values[0]) for s in items])  # one pass, C repr for most
        for s, text in zip(items, texts, strict=True):
            h = s.histograms[0] if s.histograms else None
            t = format_ts(int(s.timestamps[0]))
            if h is not None:
                out.append({"metric": dict(s.labels), "histogram": [t, histogram_json(h)]})
            else:
                out.append({"metric": dict(s.labels), "value": [t, text]})
    else:
        floats = [not s.histograms or all(h is None for h in s.histograms) for s in items]
        points = iter(_float_points([s for s, f in zip(items, floats, strict=True) if f]))
        for s, is_floats in zip(items, floats, strict=True):
            if is_floats or not s.histograms:
                out.append({"metric": dict(s.labels), "values": next(points)})
                continue
            pause_for_writes()
            is_float = np.asarray([h is None for h in s.histograms], dtype=bool)
            item: dict[str, Any] = {"metric": dict(s.labels)}
            if is_float.any():
                item["values"] = _points(s.timestamps[is_float], s.values[is_float])
            item["histograms"] = [[format_ts(int(t)), histogram_json(h)]
                                  for t, h in zip(s.timestamps.tolist(), s.histograms, strict=True) if h is not None]
            out.append(item)
    return {"resultType": rt, "result": out}, warnings


# The most series of a vector ``_large`` leaves whole.
_VECTOR_WHOLE = max(PART_ITEMS, PARTS_MIN_POINTS)


def _large(result: QueryResult) -> bool:
    """Whether the answer is encoded and sent in parts (common.PartsResponse): more than one
    piece, and more than ``PARTS_MIN_POINTS`` points in all."""
    rows = result.rows  # (the series, when set: result.py)
    count = len(rows.labels) if rows is not None else len(result.series)
    if count <= PART_ITEMS:
        return False
    if result.result_type != "matrix":
        return count > PARTS_MIN_POINTS
    total = 0
    for s in result.series:
        total += len(s.timestamps)
        if total > PARTS_MIN_POINTS:
            return True
    return False


def _points_py(ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]) -> Any:
    return list(map(list, zip(format_timestamps(ts.tolist()), format_floats(vals.tolist()), strict=True)))


def _points_native(ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]) -> Any:
    return orjson.Fragment(_jsonfmt.encode_points(np.ascontiguousarray(ts, dtype=np.int64),
                                                  np.ascontiguousarray(vals, dtype=np.float64), format_float))


def _float_points_py(items: list[SeriesResult]) -> list[Any]:
    out: list[Any] = []
    for s in items:
        pause_for_writes()  # encoding a large matrix on a query thread: step aside for writes
        out.append(_points_py(s.timestamps, s.values))
    return out


def _float_points_native(items: list[SeriesResult]) -> list[Any]:
    """The points of float series, encoded a few series per call (at most ``_NATIVE_SERIES``, and
    more than one only while they hold at most ``_NATIVE_POINTS`` points): a timestamp column
    the series of a call share (the full rows of a range result do) is formatted once."""
    out: list[Any] = []
    at = 0
    while at < len(items):
        pause_for_writes()  # encoding a large matrix on a query thread: step aside for writes
        end = at + 1
        points = len(items[at].timestamps)
        while end < len(items) and end - at < _NATIVE_SERIES:
            points += len(items[end].timestamps)
            if points > _NATIVE_POINTS:
                break
            end += 1
        part = items[at:end]
        encoded = _jsonfmt.encode_many([_int64s(s.timestamps) for s in part], [_float64s(s.values) for s in part],
                                       format_float)
        out.extend(map(orjson.Fragment, encoded))
        at = end
    return out


def _int64s(a: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """``a`` itself when it is a contiguous int64 array (keeping a shared column shared)."""
    if a.dtype == np.int64 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=np.int64)


def _float64s(a: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    if a.dtype == np.float64 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=np.float64)


# Series and points per native encoding call (the query thread steps aside for writes between two).
_NATIVE_SERIES = 16
_NATIVE_POINTS = 8192

try:
    from clearsight.api import _jsonfmt  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the extension is built by `pip install -e .`
    log.warning("native JSON point encoder not built; using the pure-Python encoder")
    _jsonfmt = None
    _points = _points_py
    _float_points = _float_points_py
else:
    _points = _points_native
    _float_points = _float_points_native


TIMING_KEYS = ("evalTotalTime", "resultSortTime", "queryPreparationTime", "innerEvalTime", "execQueueTime",
               "execTotalTime")


def stats_json(result: QueryResult, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Prometheus' ``stats`` object: six timings (seconds) and the sample counts."""
    st = result.stats
    t = timings or {}
    return {"timings": {k: round(t.get(k, 0.0), 9) for k in TIMING_KEYS},
            "samples": {"totalQueryableSamples": st.queryable_samples, "peakSamples": st.peak_points}}


def query_timings(arrived: float, preparation: float, began: float, evaluated: float) -> dict[str, float]:
    """Timings as Prometheus reports them, from monotonic clock readings: ``arrived`` (request),
    ``preparation`` (parse seconds), ``began`` (evaluation start), ``evaluated`` (evaluation seconds)."""
    return {"evalTotalTime": evaluated, "resultSortTime": 0.0, "queryPreparationTime": preparation,
            "innerEvalTime": evaluated, "execQueueTime": max(0.0, began - arrived - preparation),
            "execTotalTime": time.monotonic() - arrived}


class QueryPlan(NamedTuple):
    """A query request checked and prepared, before its tenant is known (the guards decide it)."""

    run_for: Callable[[str], Callable[[threading.Event | None, float], Response]]  # tenant -> the evaluation
    deadline: Deadline
    inline: bool  # proven cheap and recent: evaluated on the event loop


class FastQuery(NamedTuple):
    """A query route's two halves for the protocol's fast lane (api/fast_lane.py): ``plan`` (no
    effects; ApiError for bad parameters) and ``answer`` (an inline plan's answer for a tenant)."""

    plan: Callable[[Params, float, str], QueryPlan]  # the str: a path parameter (none: "")
    answer: Callable[[QueryPlan, str], Response]


def _api_error(e: Exception) -> ApiError:
    """The API error of what a query's evaluation raised (call it in the ``except`` block)."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, ParseError):
        return ApiError("bad_data", f'invalid parameter "query": {e}')
    if isinstance(e, QueryCanceled):
        return ApiError("canceled", str(e))
    if isinstance(e, qv.QueryTimeout):
        return ApiError("timeout", str(e))
    if isinstance(e, qv.QueryError):
        return ApiError("execution", str(e))
    log.exception("query failed unexpectedly")
    return ApiError("internal", f"internal error evaluating the query: {type(e).__name__}: {e}")


def make_query_handlers(store: MetricsStore, cfg: QueryConfig, tenant_of: TenantOf,
                        governor: QueryGovernor | None = None,
                        fast: dict[str, FastQuery] | None = None) -> dict[str, Handler]:
    """The query handlers. Queries run under ``governor`` (admission, fairness, the query pool; one
    is made from ``cfg`` when none is given). ``fast`` gets the fast lane's halves of "query" and
    "query_range"."""
    fast = {} if fast is None else fast
    gov = governor if governor is not None else make_governor(cfg)
    default_timeout_s = parse_duration_ms(cfg.timeout) / 1000
    lookback_ms = parse_duration_ms(cfg.lookback_delta)

    engine = Engine(lookback_delta_ms=lookback_ms, timeout_s=default_timeout_s, max_samples=cfg.max_samples,
                    max_points_per_series=cfg.max_points_per_series, stream_batch_samples=cfg.stream_batch_samples)
    prepared_queries = PreparedQueries(cfg.prepared_cache_entries)

    def _inline(prepared: Prepared, shape: Shape, end_ms: int) -> bool:
        cost = prepared.cost(shape)
        return cost is not None and cost <= INLINE_MAX_CPU_S and end_ms >= time.time() * 1000 - INLINE_RECENT_MS

    def _timeout(p: Params) -> float:
        raw = p.get("timeout")
        if raw is None or raw == "":
            return default_timeout_s
        return min(default_timeout_s, parse_step_ms(str(raw), "timeout") / 1000)

    def _deadline(p: Params, arrived: float) -> Deadline:
        """The request's deadline: ``timeout`` (at most ``query.timeout``) from its arrival."""
        return Deadline(_timeout(p), start=arrived)

    def _respond(result: QueryResult, p: Params, limit: int | None,
                 at_ms: int, timings: dict[str, float] | None = None) -> Response:
        data, warnings = encode_result(result, at_ms, limit)
        if p.get("stats"):
            data["stats"] = stats_json(result, timings)
        warned, infos = [*result.annotations.warnings, *warnings] or None, result.annotations.infos or None
        if _large(result):
            return success_in_parts(data, "result", warned, infos, between=pause_for_writes, writes=current_priority())
        return success(data, warned, infos)

    def _inline_now(run: Callable[[threading.Event | None, float], Response], deadline: Deadline) -> Response:
        """An inline evaluation: on the event loop, no pool hand-off (same deadline and errors).
        Nothing cancels a query running on the event loop: no cancel event to poll."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise qv.QueryTimeout("query timed out before it started")
        return run(None, remaining)

    async def _execute(request: Request, tenant: str, plan: QueryPlan) -> Response:
        run = plan.run_for(tenant)
        try:
            if plan.inline:  # proven cheap
                return _inline_now(run, plan.deadline)
            return await run_read(gov, request, tenant, run, plan.deadline)
        except ApiError:
            raise  # admission: unavailable, timed out or canceled in the queue
        except Exception as e:
            raise _api_error(e) from None

    def answer_now(plan: QueryPlan, tenant: str) -> Response:
        """The answer of an inline plan (``plan.inline``), evaluated now (api/fast_lane.py)."""
        try:
            try:
                return _inline_now(plan.run_for(tenant), plan.deadline)
            except Exception as e:
                raise _api_error(e) from None
        except ApiError as e:
            return api_error_response(e)

    def plan_instant(p: Params, arrived: float, _path_param: str = "") -> QueryPlan:
        """An instant query's parameters checked and its expression prepared (ApiError when they
        are not good): everything but the tenant, without effects."""
        q = _query_param(p)
        raw_t = p.get("time")
        t = round(time.time() * 1000) if raw_t in (None, "") else parse_time_ms(str(raw_t), "time")
        limit = limit_param(p)
        parse_began = time.monotonic()
        prepared = _prepare(prepared_queries, q)  # bad_data before taking a worker thread
        prep = time.monotonic() - parse_began

        def run_for(tenant: str) -> Callable[[threading.Event | None, float], Response]:
            def run(cancel: threading.Event | None, timeout: float) -> Response:
                began = time.monotonic()
                cpu = time.thread_time()
                result = engine.instant(store.querier(tenant), prepared.expr, t, timeout_s=timeout, cancel=cancel,
                                        positions=prepared.positions, query_text=q,
                                        count_samples=bool(p.get("stats")), bare=prepared.bare)
                timings = query_timings(arrived, prep, began, time.monotonic() - began) if p.get("stats") else None
                response = _respond(result, p, limit, t, timings)  # encoded in the worker thread too
                prepared.observe(INSTANT, time.thread_time() - cpu)
                return response

            return run

        return QueryPlan(run_for, _deadline(p, arrived), _inline(prepared, INSTANT, t))

    def plan_range(p: Params, arrived: float, _path_param: str = "") -> QueryPlan:
        """``plan_instant`` for a range query."""
        q = _query_param(p)
        for name in ("start", "end", "step"):
            if p.get(name) in (None, ""):
                raise ApiError("bad_data", f'invalid parameter "{name}": missing')
        start = parse_time_ms(str(p["start"]), "start")
        end = parse_time_ms(str(p["end"]), "end")
        if end < start:
            raise ApiError("bad_data", 'invalid parameter "end": end timestamp must not be before start time')
        step = parse_step_ms(str(p["step"]))
        if step <= 0:
            raise ApiError("bad_data", 'invalid parameter "step": zero or negative query resolution step widths '
                           "are not accepted. Try a positive integer")
        if (end - start) // step + 1 > cfg.max_points_per_series:
            raise ApiError("bad_data", f"exceeded maximum resolution of {cfg.max_points_per_series:,} points per "
                           "timeseries. Try decreasing the query resolution (?step=XX)")
        limit = limit_param(p)
        parse_began = time.monotonic()
        prepared = _prepare(prepared_queries, q)
        prep = time.monotonic() - parse_began
        expr = prepared.expr
        shape = range_shape(start, end, step)
        if expr.type not in (ValueType.SCALAR, ValueType.VECTOR):
            kind = "range vector" if expr.type is ValueType.MATRIX else expr.type.value
            raise ApiError("bad_data", f'invalid parameter "query": invalid expression type "{kind}" for range '
                           "query, must be Scalar or instant Vector")

        def run_for(tenant: str) -> Callable[[threading.Event | None, float], Response]:
            def run(cancel: threading.Event | None, timeout: float) -> Response:
                began = time.monotonic()
                cpu = time.thread_time()
                result = engine.range(store.querier(tenant), expr, start, end, step, timeout_s=timeout,
                                      cancel=cancel, positions=prepared.positions, query_text=q,
                                      count_samples=bool(p.get("stats")), bare=prepared.bare)
                timings = query_timings(arrived, prep, began, time.monotonic() - began) if p.get("stats") else None
                response = _respond(result, p, limit, start, timings)  # encoded in the worker thread too
                prepared.observe(shape, time.thread_time() - cpu)
                return response

            return run

        return QueryPlan(run_for, _deadline(p, arrived), _inline(prepared, shape, end))

    def handler(plan: Callable[[Params, float], QueryPlan]) -> Handler:
        async def handle(request: Request) -> Response:
            arrived = time.monotonic()
            try:
                planned = plan(await params(request), arrived)
                return await _execute(request, tenant_of(request), planned)
            except ApiError as e:
                return api_error_response(e)

        return handle

    fast["query"] = FastQuery(plan_instant, answer_now)
    fast["query_range"] = FastQuery(plan_range, answer_now)
    instant = handler(plan_instant)
    range_query = handler(plan_range)

    async def format_query(request: Request) -> Response:
        try:
            p = await params(request)
            return success(prettify_expr(_parse(_query_param(p))[0]))
        except ApiError as e:
            return api_error_response(e)

    async def parse_query(request: Request) -> Response:
        try:
            p = await params(request)
            return success(ast_to_json(_parse(_query_param(p))[0]))
        except ApiError as e:
            return api_error_response(e)

    return endpoints({"query": instant, "query_range": range_query, "format_query": format_query,
                      "parse_query": parse_query})


def _prepare(cache: PreparedQueries, q: str) -> Prepared:
    """The prepared (parsed, cached) query, or bad_data."""
    try:
        return cache.prepare(q)
    except ParseError as e:
        raise ApiError("bad_data", f'invalid parameter "query": {e}') from None


def _parse(q: str) -> tuple[Expr, dict[int, int]]:
    """The expression and its node positions (for annotation ``line:col``), or bad_data."""
    try:
        return parse_with_positions(q)
    except ParseError as e:
        raise ApiError("bad_data", f'invalid parameter "query": {e}') from None
