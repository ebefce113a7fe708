"""The native log read API (JSON, not Loki's shapes): ``GET /api/v1/logs`` (filtered, sorted,
cursor-paginated, with a bounded total), ``GET /api/v1/logs/export`` (NDJSON or CSV),
``GET /api/v1/logs/context`` (lines around one line of a stream) and ``/ws/logs`` (live tail with
the same filters).

Filters (each repeatable; values of one filter are ORed, filters ANDed): ``service`` (stream label
``service_name``, as OTLP and Loki name it), ``host`` (stream label ``host``), ``level`` (stream
label ``level``, case-insensitive), ``label=name=value`` (any stream label, exact), ``text`` (the
line contains it), ``regex`` (the line matches the RE2 pattern), ``trace_id`` (32 hex digits;
checked on the lines read, see ``_TRACE_SCAN``), ``start``/``end``/``since`` (Loki's time rules).
Reads run through ``LogQueryApi``'s governed runner (``api/logs_query.py``): bounded concurrency,
deadline, cancellation, the same limits and error answers; the tail is Loki's tail machinery
(``api/logs_tail.py``) given the filters as a LogQL selector.

Cursor: opaque base64 of ``(ts, k)``: the last entry returned had timestamp ``ts`` and was the
``k``-th entry with that timestamp in this order; the next page reads from ``ts`` again and skips
those ``k`` (the store orders entries of one timestamp by write order).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
import re2
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from clearsight.api.logs_query import NS, BadRequest, LogQueryApi, label_filters
from clearsight.api.logs_tail import make_logs_tail_route
from clearsight.model.labels import to_dict
from clearsight.model.logs import LogBatch
from clearsight.model.matchers import Matcher
from clearsight.query.budget import QueryBudget
from clearsight.store.interface import LimitExceeded
from clearsight.store.logs_interface import Direction, LineFilter

DEFAULT_RANGE_NS = 3600 * NS
TOTAL_CAP = 100_000  # total counts stop here ("at least")
EXPORT_PAGE = 1000
_TRACE_SCAN = 20  # pages read at most per request when trace_id filters after reading
_HEX32 = re2.compile(r"^[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class Filters:
    matchers: list[Matcher]
    line_filters: list[LineFilter]
    logql: str  # the same as a LogQL stream selector with line filters ("" without stream matchers)
    trace_ids: frozenset[bytes]


def _quote(value: str) -> str:
    """A LogQL string literal (JSON escapes; non-ASCII kept as is, so no surrogate pairs)."""
    return json.dumps(value, ensure_ascii=False)


def _alternation(values: Sequence[str]) -> str:
    return "|".join(re2.escape(v) for v in values)


def parse_filters(q: Any) -> Filters:
    matchers: list[Matcher] = []
    parts: list[str] = []
    for param, label, ci in (("service", "service_name", False), ("host", "host", False), ("level", "level", True)):
        values = [v for v in q.getlist(param) if v]
        if values:
            pattern = ("(?i)" if ci else "") + _alternation(values)
            matchers.append(Matcher.of("=~", label, pattern))
            parts.append(f"{label}=~{_quote(pattern)}")
    for m in label_filters(q.getlist("label")):
        matchers.append(m)
        parts.append(f"{m.name}={_quote(m.value)}")
    line_filters = [LineFilter("|=", t) for t in q.getlist("text") if t]
    for pattern in q.getlist("regex"):
        try:
            re2.compile(pattern)
        except re2.error as e:
            raise BadRequest(f"invalid regex {pattern!r}: {e}") from None
        line_filters.append(LineFilter("|~", pattern))
    traces = set()
    for t in q.getlist("trace_id"):
        if not _HEX32.match(t):
            raise BadRequest(f"invalid trace_id {t!r}: expected 32 hex digits")
        traces.add(bytes.fromhex(t))
    logql = ""
    if parts:
        logql = "{" + ", ".join(parts) + "}" + "".join(f" {f.op} {_quote(f.pattern)}" for f in line_filters)
    return Filters(matchers, line_filters, logql, frozenset(traces))


def encode_cursor(ts: int, k: int) -> str:
    return base64.urlsafe_b64encode(f"{ts}:{k}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[int, int]:
    try:
        ts, k = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split(":")
        out = int(ts), int(k)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid cursor: pass the next_cursor of a previous answer unchanged") from None
    if out[1] < 0:
        raise BadRequest("invalid cursor")
    return out


def entry_json(batch: LogBatch, j: int) -> dict[str, Any]:
    e = batch.entry(j)
    out: dict[str, Any] = {"ts": str(e.timestamp), "stream": to_dict(e.stream), "line": e.body}
    if e.severity_text or e.severity_number:
        out["severity_text"], out["severity_number"] = e.severity_text, e.severity_number
    if e.attributes:
        out["attributes"] = dict(e.attributes)
    if e.trace_id:
        out["trace_id"] = e.trace_id.hex()
    if e.span_id:
        out["span_id"] = e.span_id.hex()
    if e.resource:
        out["resource"] = to_dict(e.resource)
    return out


class NativeLogsApi:
    def __init__(self, api: LogQueryApi) -> None:
        self.api = api
        self.store = api.store

    def _window(self, q: Any) -> tuple[int, int]:
        return self.api._range(q, DEFAULT_RANGE_NS)

    @staticmethod
    def _order(q: Any) -> Direction:
        sort = (q.get("sort") or "desc").lower()
        if sort not in ("asc", "desc"):
            raise BadRequest(f"invalid sort {q.get('sort')!r}: expected asc or desc")
        return "forward" if sort == "asc" else "backward"

    def page(self, tenant: str, f: Filters, start: int, end: int, direction: Direction, limit: int,
             cursor: tuple[int, int] | None) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        """Up to ``limit`` entries after ``cursor``; the cursor of the last one when more may follow."""
        out: list[dict[str, Any]] = []
        skip = 0
        if cursor is not None:
            ts, skip = cursor
            start, end = (ts, end) if direction == "forward" else (start, ts)
        last: tuple[int, int] | None = None
        for _ in range(_TRACE_SCAN if f.trace_ids else 1):
            want = limit + skip if not f.trace_ids else max(EXPORT_PAGE, limit + skip)
            batch = self.store.select(tenant, f.matchers, start, end, f.line_filters, want, direction)
            ts_list = batch.timestamps.tolist()
            run_ts, run_k = None, 0
            for j, t in enumerate(ts_list):
                run_k = run_k + 1 if t == run_ts else 1
                run_ts = t
                if j < skip:
                    continue
                if f.trace_ids and batch.trace_id(j) not in f.trace_ids:
                    last = (t, run_k)
                    continue
                out.append(entry_json(batch, j))
                last = (t, run_k)
                if len(out) == limit:
                    return out, last
            if len(batch) < want or last is None:
                return out, None
            ts, skip = last  # trace filter: read the next page from the last entry looked at
            start, end = (ts, end) if direction == "forward" else (start, ts)
        return out, last  # trace filter: scanned _TRACE_SCAN pages; the cursor resumes there

    def total(self, tenant: str, f: Filters, start: int, end: int) -> dict[str, Any]:
        if f.trace_ids:
            return {"value": None, "exact": False}  # not counted: trace ids are checked on lines read
        try:
            sizes = self.store.select_sizes(tenant, f.matchers, start, end, f.line_filters, limit=TOTAL_CAP)
        except LimitExceeded:  # more than the cap
            return {"value": TOTAL_CAP, "exact": False}
        return {"value": len(sizes.timestamps), "exact": True}

    async def logs(self, request: Request) -> Response:
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            f = parse_filters(q)
            start, end = self._window(q)
            direction = self._order(q)
            limit = self.api._limit(q.get("limit"))
            cursor = decode_cursor(q["cursor"]) if q.get("cursor") else None
            entries, last = self.page(tenant, f, start, end, direction, limit, cursor)
            data: dict[str, Any] = {"entries": entries,
                                    "next_cursor": encode_cursor(*last) if last is not None else None}
            if q.get("count", "true") != "false":
                data["total"] = self.total(tenant, f, start, end)
            return {"status": "success", "data": data}
        return await self.api._run(request, run)

    async def export(self, request: Request) -> Response:
        fmt = request.query_params.get("format", "ndjson")
        if fmt not in ("ndjson", "csv"):
            return Response(f"invalid format {fmt!r}: expected ndjson or csv\n", status_code=400,
                            media_type="text/plain; charset=utf-8")
        chunks: list[bytes] = []

        def run(tenant: str, q: Any, budget: QueryBudget) -> Any:
            f = parse_filters(q)
            start, end = self._window(q)
            direction = self._order(q)
            cap = self._export_cap(q)
            cursor = None
            n = 0
            if fmt == "csv":
                chunks.append(_csv_row(["ts", "stream", "severity_text", "line", "trace_id", "attributes"]))
            while n < cap:
                budget.check()
                entries, cursor = self.page(tenant, f, start, end, direction, min(EXPORT_PAGE, cap - n), cursor)
                n += len(entries)
                chunks.append(b"".join(_ndjson(e) if fmt == "ndjson" else _csv(e) for e in entries))
                if cursor is None:
                    break
            return {"status": "success"}

        answer = await self.api._run(request, run)
        if answer.status_code != 200:
            return answer

        async def body() -> AsyncIterator[bytes]:
            for c in chunks:
                yield c

        media = "application/x-ndjson" if fmt == "ndjson" else "text/csv; charset=utf-8"
        return StreamingResponse(body(), media_type=media,
                                 headers={"Content-Disposition": f'attachment; filename="logs.{fmt}"'})

    def _export_cap(self, q: Any) -> int:
        raw = q.get("limit")
        cap = self.api.limits.max_lines
        if raw:
            try:
                n = int(raw)
            except ValueError:
                raise BadRequest(f"invalid limit {raw!r}") from None
            if not 0 < n <= cap:
                raise BadRequest(f"limit must be between 1 and {cap} (logs.max_query_lines)")
            return n
        return min(cap, TOTAL_CAP)

    async def context(self, request: Request) -> Response:
        def run(tenant: str, q: Any, _budget: QueryBudget) -> Any:
            stream = q.get("stream") or ""
            try:
                labels = json.loads(stream)
                if not isinstance(labels, dict) or not labels or not all(
                        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
                    raise ValueError
            except ValueError:
                raise BadRequest('stream: expected the stream labels as a JSON object, e.g. {"app":"api"}') from None
            ts_raw = q.get("ts") or ""
            if not ts_raw.isdigit():
                raise BadRequest("ts: expected the line's timestamp in nanoseconds")
            ts = int(ts_raw)
            before, after = (_count(q, "before"), _count(q, "after"))
            if max(before, after) > self.api.max_entries:
                raise BadRequest(f"before/after: at most {self.api.max_entries} (logs.max_entries_limit_per_query)")
            matchers = [Matcher.of("=", k, v) for k, v in sorted(labels.items())]
            f = parse_filters(q)  # text/regex narrow the context lines
            reach = self.api.max_len
            at = self.store.select(tenant, matchers, ts, ts, (), self.api.max_entries, "forward")
            older = self.store.select(tenant, matchers, ts - reach, ts - 1, f.line_filters, before, "backward") \
                if before else LogBatch.empty()
            newer = self.store.select(tenant, matchers, ts + 1, ts + reach, f.line_filters, after, "forward") \
                if after else LogBatch.empty()
            return {"status": "success", "data": {
                "before": [entry_json(older, j) for j in reversed(range(len(older)))],
                "at": [entry_json(at, j) for j in range(len(at))],
                "after": [entry_json(newer, j) for j in range(len(newer))]}}
        return await self.api._run(request, run)

    def routes(self) -> list[BaseRoute]:
        ws_logs = _FiltersTail(make_logs_tail_route(self.api, self.api.served))
        h: list[tuple[str, Callable[[Request], Awaitable[Response]]]] = [
            ("/api/v1/logs", self.logs), ("/api/v1/logs/export", self.export), ("/api/v1/logs/context", self.context)]
        return [*(Route(p, fn, methods=["GET"], name=p.strip("/").replace("/", "_")) for p, fn in h),
                WebSocketRoute("/ws/logs", ws_logs, name="ws_logs")]


class _FiltersTail:
    """``/ws/logs?<filters>``: Loki's tail (``api/logs_tail.py``) with the filters as its LogQL
    query (messages in Loki's tail shape). Needs a stream filter (service, host, level or label);
    without one the socket is closed with 1008, like a bad tail query."""

    def __init__(self, tail: WebSocketRoute) -> None:
        self.tail = tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = Request({**scope, "type": "http"}).query_params
        try:
            logql = parse_filters(params).logql
        except BadRequest:
            logql = ""
        extra = [(k, v) for k, v in params.multi_items() if k in ("limit", "start", "delay_for")]
        await self.tail.app({**scope, "query_string": urlencode([("query", logql), *extra]).encode()}, receive, send)


def _count(q: Any, name: str) -> int:
    raw = q.get(name) or "0"
    if not raw.isdigit():
        raise BadRequest(f"{name}: expected a count of lines")
    return int(raw)


def _ndjson(e: dict[str, Any]) -> bytes:
    return orjson.dumps(e) + b"\n"


def _csv_row(values: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode()


def _csv(e: dict[str, Any]) -> bytes:
    return _csv_row([e["ts"], orjson.dumps(e["stream"]).decode(), e.get("severity_text", ""), e["line"],
                     e.get("trace_id", ""), orjson.dumps(e.get("attributes", {})).decode()])
