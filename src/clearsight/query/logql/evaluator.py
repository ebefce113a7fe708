"""Evaluates parsed LogQL against a ``LogStore``: log queries (streams) and metric queries.

Reads: the stream matchers and the leading line filters go to the store (vectorised in DuckDB);
the remaining stages run per entry in Python (``stages.Pipeline``) over chunks of
``CHUNK_ENTRIES`` entries, so memory holds one chunk of bodies at a time. A range aggregation
without Python stages (``count_over_time``, ``rate``, ``bytes_*``, ``absent_over_time``) reads only
stream, timestamp and body size (``LogStore.select_sizes``).

Metric values are step-vectorised (``range_agg``: numpy per series over all steps); vector
aggregations, binary operators, ``label_replace`` and ``sort`` are the PromQL engine's own
(``query/promql``), not a second copy.

Bounds (``LogQLLimits``): lines and bytes read per query, series per metric query, points; the
query's ``QueryBudget`` is checked at every chunk and node (deadline, client gone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from clearsight.model.labels import Labels
from clearsight.model.logs import LogBatch
from clearsight.model.matchers import Matcher, MatchType
from clearsight.query.budget import QueryBudget
from clearsight.query.logql.ast import (
    BinaryOp,
    DropStage,
    Grouping,
    JsonStage,
    LabelReplace,
    LogSelector,
    MetricExpr,
    NumberLiteral,
    RangeAggregation,
    Stage,
    VectorAggregation,
    VectorLiteral,
)
from clearsight.query.logql.levels import DETECTED_LEVEL, detect_level, mentions_detected_level
from clearsight.query.logql.parser import pushdown_filters
from clearsight.query.logql.prefilter import json_prefilter
from clearsight.query.logql.range_agg import aggregate as range_aggregate
from clearsight.query.logql.stages import ERROR, ERROR_DETAILS, SAMPLE_ERR, Pipeline, to_number
from clearsight.query.promql import aggregations, binops
from clearsight.query.promql.aggregations import group_key
from clearsight.query.promql.ast import BinaryExpr
from clearsight.query.promql.ast import NumberLiteral as PromNumber
from clearsight.query.promql.fn_labels import fn_label_replace, fn_sort, fn_sort_desc
from clearsight.query.promql.values import (
    Annotations,
    FuncContext,
    QueryError,
    QueryLimitExceeded,
    ScalarSteps,
    VectorSteps,
)
from clearsight.store.interface import LimitExceeded
from clearsight.store.logs_interface import BodyPrefilter, Direction, LineFilter, LogStore

CHUNK_ENTRIES = 20_000
_LINEAR_RANGE_OPS = frozenset({"count_over_time", "rate", "bytes_over_time", "bytes_rate", "sum_over_time"})
I64 = np.int64


@dataclass(frozen=True)
class LogQLLimits:
    max_lines: int = 20_000_000  # entries a query may read from the store
    max_bytes: int = 4 << 30  # body bytes a query may read
    max_series: int = 500  # series of a metric query (Loki's max_query_series)
    max_points: int = 11_000  # steps of a range query
    max_samples: int = 50_000_000  # the query budget's point limit (query.max_samples)


@dataclass
class EvalStats:
    lines_processed: int = 0
    bytes_processed: int = 0


@dataclass
class StreamResult:
    labels: Labels
    entries: list[tuple[int, str]] = field(default_factory=list)


class LogQLEvaluator:
    def __init__(self, store: LogStore, tenant: str, limits: LogQLLimits, budget: QueryBudget) -> None:
        self.store = store
        self.tenant = tenant
        self.limits = limits
        self.budget = budget
        self.stats = EvalStats()
        self.annotations = Annotations()
        self._detect = False  # the query names detected_level: compute it per entry (query/logql/levels.py)

    # --- reading ---------------------------------------------------------------------------------

    def _account(self, lines: int, nbytes: int) -> None:
        st = self.stats
        st.lines_processed += lines
        st.bytes_processed += nbytes
        if st.lines_processed > self.limits.max_lines:
            raise QueryLimitExceeded(f"the query would read more than {self.limits.max_lines:,} log lines "
                                     "(logs.max_query_lines): narrow the time range or the stream selector")
        if st.bytes_processed > self.limits.max_bytes:
            raise QueryLimitExceeded(f"the query would read more than {self.limits.max_bytes:,} bytes of log lines "
                                     "(logs.max_query_bytes): narrow the time range or the stream selector")
        self.budget.check("log read")

    def _prefilter(self, matchers: tuple[Matcher, ...], start: int, end: int,
                   rest: tuple[Stage, ...]) -> BodyPrefilter | None:
        if not rest or not isinstance(rest[0], JsonStage):
            return None
        names = frozenset(n for lbl in self.store.series(self.tenant, [matchers], start, end) for n, _v in lbl)
        return json_prefilter(rest, names)

    def _chunks(self, matchers: tuple[Matcher, ...], start: int, end: int, filters: tuple[LineFilter, ...],
                direction: Direction, rest: tuple[Stage, ...] = ()) -> Iterator[tuple[LogBatch, int]]:
        """Every matching entry in ``direction`` order, ``CHUNK_ENTRIES`` at a time, as (batch,
        first new entry): a chunk resumes at the last timestamp, after the entries at it already
        seen."""
        skip = 0
        prefilter = self._prefilter(matchers, start, end, rest)
        while start <= end:
            want = CHUNK_ENTRIES + skip
            b = self.store.select(self.tenant, matchers, start, end, filters, want, direction, prefilter)
            n = len(b)
            if n > skip:
                self._account(n - skip, sum(len(x.encode()) for x in b.body[skip:]))
                yield b, skip
            if n < want:
                return
            last = int(b.timestamps[-1])
            skip = int(np.count_nonzero(b.timestamps == last))
            if direction == "forward":
                start = last
            else:
                end = last

    def _entries(self, chunk: tuple[LogBatch, int], with_meta: bool) -> Iterator[tuple[int, str, dict[str, str],
                                                                                   frozenset[str]]]:
        """(ts, line, labels, base names) per entry; labels hold the stream labels and, when
        ``with_meta``, the entry's structured metadata (and ``detected_level`` when the query names it)."""
        b, first = chunk
        if self._detect:
            yield from self._entries_detected(chunk)
            return
        streams = [dict(s) for s in b.streams]
        bases = [frozenset(s) for s in streams]
        ts = b.timestamps.tolist()
        sidx = b.stream_idx.tolist()
        offs = b.attr_offsets.tolist()
        keys, vals = b.attr_keys, b.attr_values
        body = b.body
        for j in range(first, len(body)):
            line = body[j]
            s = sidx[j]
            labels = dict(streams[s])
            base = bases[s]
            if with_meta and offs[j + 1] > offs[j]:
                for k in range(offs[j], offs[j + 1]):
                    if vals[k]:
                        labels[keys[k]] = vals[k]
                base = frozenset(labels)
            yield ts[j], line, labels, base

    @staticmethod
    def _entries_detected(chunk: tuple[LogBatch, int]) -> Iterator[tuple[int, str, dict[str, str], frozenset[str]]]:
        """``_entries`` with structured metadata and ``detected_level`` (metadata-like: in the base names)."""
        b, first = chunk
        streams = [dict(s) for s in b.streams]
        ts = b.timestamps.tolist()
        sidx = b.stream_idx.tolist()
        sev = b.severity_number.tolist()
        offs = b.attr_offsets.tolist()
        keys, vals = b.attr_keys, b.attr_values
        for j in range(first, len(b.body)):
            line = b.body[j]
            labels = dict(streams[sidx[j]])
            for k in range(offs[j], offs[j + 1]):
                if vals[k]:
                    labels[keys[k]] = vals[k]
            if DETECTED_LEVEL not in labels:
                labels[DETECTED_LEVEL] = detect_level(labels, sev[j], b.severity_text(j), line)
            yield ts[j], line, labels, frozenset(labels)

    # --- log queries -----------------------------------------------------------------------------

    def logs(self, sel: LogSelector, start: int, end: int, limit: int, direction: Direction) -> list[StreamResult]:
        """Up to ``limit`` entries after the pipeline, grouped by their final label sets."""
        self._detect = self._detect or mentions_detected_level(sel)
        filters, rest = _store_side(sel.stages)
        out: dict[Labels, StreamResult] = {}
        if not rest and not self._detect:
            b = self.store.select(self.tenant, sel.matchers, start, end, filters, limit, direction)
            self._account(len(b), b.body_bytes)
            for t, body, s in zip(b.timestamps.tolist(), b.body, b.stream_idx.tolist(), strict=True):
                lbl = b.streams[s]
                r = out.get(lbl)
                if r is None:
                    r = out[lbl] = StreamResult(lbl)
                r.entries.append((t, body))
            return list(out.values())
        pipe = Pipeline(rest)
        count = 0
        for chunk in self._chunks(sel.matchers, start, end, filters, direction, rest):
            for t, line, labels, base in self._entries(chunk, pipe.uses_labels):
                pipe.base = base
                res = pipe.run(line, labels, t)
                if res is None:
                    continue
                key = _labels_of(labels)
                r = out.get(key)
                if r is None:
                    r = out[key] = StreamResult(key)
                r.entries.append((t, res))
                count += 1
                if count >= limit:
                    return list(out.values())
        return list(out.values())

    # --- metric queries --------------------------------------------------------------------------

    def metric(self, e: MetricExpr, steps_ns: np.ndarray) -> ScalarSteps | VectorSteps:
        self.budget.check()
        self._detect = self._detect or mentions_detected_level(e)
        k = steps_ns.size
        if isinstance(e, NumberLiteral):
            return ScalarSteps(np.full(k, e.value))
        if isinstance(e, VectorLiteral):
            return VectorSteps([()], np.full((1, k), e.value), np.ones((1, k), dtype=bool))
        if isinstance(e, RangeAggregation):
            return self._range(e, steps_ns)
        if isinstance(e, VectorAggregation):
            inner = e.expr
            if e.op == "sum" and isinstance(inner, RangeAggregation) and inner.grouping is None \
                    and inner.op in _LINEAR_RANGE_OPS:
                # sum by (x) of a sum-like range aggregation: group the samples while reading, so
                # per-line labels from a parser never become one series each (as Loki does).
                inner = replace(inner, grouping=e.grouping or Grouping(()))
            v = self._vector(self.metric(inner, steps_ns), e.op)
            ctx = FuncContext(steps_ns // 1_000_000, [], self.annotations)
            if e.op == "sort":
                out = fn_sort(ctx, [v])
            elif e.op == "sort_desc":
                out = fn_sort_desc(ctx, [v])
            else:
                g = e.grouping
                param = ScalarSteps(np.full(k, e.param)) if e.param is not None else None
                out = aggregations.aggregate(e.op, v, param, list(g.labels) if g else [], bool(g and g.without),
                                             self.annotations, k == 1)
            assert isinstance(out, VectorSteps)
            return out
        if isinstance(e, BinaryOp):
            lhs = self.metric(e.lhs, steps_ns)
            rhs = self.metric(e.rhs, steps_ns)
            node = BinaryExpr(e.op, PromNumber(0.0), PromNumber(0.0), e.return_bool, e.matching)
            res = binops.evaluate_binary(node, lhs, rhs, strict=k > 1, ann=self.annotations)
            assert isinstance(res, (ScalarSteps, VectorSteps))
            return res
        if isinstance(e, LabelReplace):
            v = self._vector(self.metric(e.expr, steps_ns), "label_replace")
            ctx = FuncContext(steps_ns // 1_000_000, [], self.annotations)
            out = fn_label_replace(ctx, [v, e.dst, e.replacement, e.src, e.regex])
            assert isinstance(out, VectorSteps)
            return out
        raise QueryError(f"unsupported expression {e!r}")

    @staticmethod
    def _vector(v: ScalarSteps | VectorSteps, what: str) -> VectorSteps:
        if not isinstance(v, VectorSteps):
            raise QueryError(f"{what} needs an instant vector, not a scalar")
        return v

    def _range(self, e: RangeAggregation, steps_ns: np.ndarray) -> VectorSteps:
        ends = steps_ns.astype(np.int64) - e.offset_ns
        k = ends.size
        scan_start = int(ends[0]) - e.range_ns + 1
        scan_end = int(ends[-1])
        sel = e.selector
        filters, rest = _store_side(sel.stages)
        series: dict[Labels, tuple[list[int], list[float]]] = {}
        grouping = e.grouping
        if not rest and e.unwrap is None and not self._detect:
            try:
                sizes = self.store.select_sizes(self.tenant, sel.matchers, scan_start, scan_end, filters,
                                                self.limits.max_lines - self.stats.lines_processed)
            except LimitExceeded:
                raise QueryLimitExceeded(f"the query would read more than {self.limits.max_lines:,} log lines "
                                         "(logs.max_query_lines): narrow the time range or the stream "
                                         "selector") from None
            self._account(int(sizes.timestamps.size), int(sizes.sizes.sum()))
            return self._from_sizes(e, sizes.streams, sizes.stream_idx, sizes.timestamps,
                                    sizes.sizes.astype(np.float64), ends)
        unwrap = e.unwrap
        by: list[str] | None = None  # `by` grouping: the output key is just these labels
        needed: frozenset[str] | None = None
        if grouping is not None and not grouping.without:
            by = sorted(set(grouping.labels))
            extra = {unwrap.label} if unwrap is not None else set()
            for f in unwrap.post_filters if unwrap is not None else ():
                extra |= Pipeline((f,)).label_names()
            needed = frozenset(by) | extra
        pipe = Pipeline(rest, needed)
        with_meta = pipe.uses_labels or unwrap is not None or self._detect
        post = Pipeline(unwrap.post_filters) if unwrap is not None and unwrap.post_filters else None
        by_bytes = e.op in ("bytes_over_time", "bytes_rate")
        for chunk in self._chunks(sel.matchers, scan_start, scan_end, filters, "forward", rest):
            for t, line, labels, base in self._entries(chunk, with_meta):
                pipe.base = base
                res = pipe.run(line, labels, t)
                if res is None:
                    continue
                value = 1.0
                if unwrap is not None:
                    raw = labels.pop(unwrap.label, None)
                    x = _unwrap_value(unwrap.conversion, raw)
                    if x is None:
                        labels[ERROR] = SAMPLE_ERR
                        labels[ERROR_DETAILS] = (f"label {unwrap.label!r} not found" if raw is None else
                                                 f"cannot convert {raw!r} ({unwrap.conversion or 'float'})")
                        x = 0.0
                    value = x
                    if post is not None and post.run(res, labels, t) is None:
                        continue
                elif by_bytes:
                    value = float(len(res.encode()))
                if labels.get(ERROR):
                    _raise_pipeline_error(_labels_of(labels))
                if by is not None:
                    key = tuple((n, labels[n]) for n in by if labels.get(n))
                else:
                    key = _labels_of(labels)
                    if grouping is not None:
                        key = group_key(key, list(grouping.labels), grouping.without)
                acc = series.get(key)
                if acc is None:
                    if len(series) >= self.limits.max_series:
                        raise QueryLimitExceeded(f"maximum of series ({self.limits.max_series}) reached for a single "
                                                 "query (logs.max_query_series)")
                    acc = series[key] = ([], [])
                acc[0].append(t)
                acc[1].append(value)
        labels_out: list[Labels] = []
        vals = np.full((len(series), k), np.nan)
        pres = np.zeros((len(series), k), dtype=bool)
        op = e.op
        for i, (key, (ts_l, v_l)) in enumerate(series.items()):
            labels_out.append(key)
            ts_a = np.asarray(ts_l, dtype=np.int64)
            v_a = np.asarray(v_l, dtype=np.float64)
            if grouping is not None:
                order = np.argsort(ts_a, kind="stable")
                ts_a, v_a = ts_a[order], v_a[order]
            vals[i], pres[i] = range_aggregate("count_over_time" if op == "absent_over_time" else op, ts_a, v_a,
                                               ends, e.range_ns, e.param)
        if op == "absent_over_time":
            return _absent(sel.matchers, pres, k)
        return VectorSteps(labels_out, vals, pres)

    def _from_sizes(self, e: RangeAggregation, streams: list[Labels], sidx: np.ndarray, ts: np.ndarray,
                    sizes: np.ndarray, ends: np.ndarray) -> VectorSteps:
        k = ends.size
        op = e.op
        grouping = e.grouping
        keys = streams if grouping is None else [group_key(s, list(grouping.labels), grouping.without)
                                                 for s in streams]
        uniq: dict[Labels, int] = {}
        gid = np.array([uniq.setdefault(key, len(uniq)) for key in keys], dtype=np.int64)
        if len(uniq) > self.limits.max_series and op != "absent_over_time":
            raise QueryLimitExceeded(f"maximum of series ({self.limits.max_series}) reached for a single query "
                                     "(logs.max_query_series)")
        g_of_entry = gid[sidx] if sidx.size else np.zeros(0, np.int64)
        order = np.argsort(g_of_entry, kind="stable")  # entries are in time order: stable keeps it per series
        bounds = np.searchsorted(g_of_entry[order], np.arange(len(uniq) + 1))
        vals = np.full((len(uniq), k), np.nan)
        pres = np.zeros((len(uniq), k), dtype=bool)
        values = sizes if op in ("bytes_over_time", "bytes_rate") else np.ones(sizes.size)
        for g in range(len(uniq)):
            sel = order[bounds[g]:bounds[g + 1]]
            vals[g], pres[g] = range_aggregate("count_over_time" if op == "absent_over_time" else op, ts[sel],
                                               values[sel], ends, e.range_ns, e.param)
            if g % 256 == 0:
                self.budget.check()
        if op == "absent_over_time":
            return _absent(e.selector.matchers, pres, k)
        return VectorSteps(list(uniq), vals, pres)


def _raise_pipeline_error(key: Labels) -> None:
    value = dict(key).get(ERROR, "")
    shown = "{" + ", ".join(f'{n}="{v}"' for n, v in key) + "}"
    raise QueryError(
        f"pipeline error: '{value}' for series: '{shown}'.\n"
        f"Use a label filter to intentionally skip this error. (e.g | __error__!=\"{value}\").\n"
        "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
        "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )")


def _store_side(stages: tuple[Stage, ...]) -> tuple[tuple[LineFilter, ...], tuple[Stage, ...]]:
    """``pushdown_filters``, and a trailing ``| drop __error__, __error_details__`` with nothing
    before it that could set them (Grafana's log-volume query) is dropped as the no-op it is."""
    filters, rest = pushdown_filters(stages)
    if rest and all(isinstance(st, DropStage) and all(it.matcher is None and it.name in (ERROR, ERROR_DETAILS)
                                                      for it in st.items) for st in rest):
        return filters, ()
    return filters, rest


def _unwrap_value(conversion: str, raw: str | None) -> float | None:
    if raw is None:
        return None
    if conversion in ("duration", "duration_seconds"):
        return to_number("duration", raw)
    if conversion == "bytes":
        return to_number("bytes", raw)
    return to_number("number", raw)


def _absent(matchers: tuple[Matcher, ...], pres: np.ndarray, k: int) -> VectorSteps:
    """1 at the steps where no series had a sample; labels from the selector's equality matchers."""
    missing = np.asarray(~pres.any(axis=0), dtype=bool) if pres.size else np.ones(k, dtype=bool)
    if not missing.any():
        return VectorSteps.empty(k)
    labels: Labels = tuple(sorted({(m.name, m.value) for m in matchers if m.type is MatchType.EQ}))
    return VectorSteps([labels], np.where(missing, 1.0, np.nan)[None, :], missing[None, :])


def _labels_of(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in labels.items() if v))


__all__ = ["CHUNK_ENTRIES", "EvalStats", "LogQLEvaluator", "LogQLLimits", "StreamResult"]
