"""The PromQL engine: evaluates an expression at all steps of a query at once.

Every operator receives and returns values for *all* evaluation timestamps (``values.py``):
selectors fetch raw samples once for the whole query range and locate the sample of every step
with ``np.searchsorted``; operators then work on (series x steps) arrays.

Public entry: ``Engine.instant`` and ``Engine.range`` returning ``result.QueryResult``.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.ma  # np.unique (numpy >= 2.3) imports it on its first call: ~17 ms the first query waited on

from clearsight.model.histogram import CounterResetHint
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SeriesData, stale_mask
from clearsight.query.budget import QueryBudget, QueryCanceled, running, too_many_series
from clearsight.query.promql import (
    aggregations,
    batched_range,
    binops,
    fn_start_ts,
    nh_functions,
    rollup_plan,
    streamed,
)
from clearsight.query.promql.ast import (
    AggregateExpr,
    AtModifier,
    BinaryExpr,
    Call,
    Duration,
    DurationExpr,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StepInvariantExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorSelector,
)
from clearsight.query.promql.bare import OVER_TIME_OPS, BarePlan, plan_of
from clearsight.query.promql.fn_common import Flat
from clearsight.query.promql.nh_common import floats_only_value, has_histograms, stats_decode, stats_selectors
from clearsight.query.promql.result import FloatRows, QueryResult, QueryStats, SeriesResult
from clearsight.query.promql.values import (
    F64,
    I64,
    Annotations,
    FuncContext,
    FunctionImpl,
    MatrixSteps,
    ObjArr,
    QueryError,
    QueryLimitExceeded,
    ScalarSteps,
    SeriesViews,
    Value,
    VectorSteps,
)
from clearsight.query.promql.vecutil import apply_drop_name, compact, drop_meta, merge_rows, select_rows
from clearsight.store.interface import (
    READ_LIMITS,
    LatestSamples,
    ReadLimits,
    SampleLimitExceeded,
    SeriesSelector,
)

try:  # the compiled selector kernel (setup.py builds it); without it, the numpy path
    from clearsight.query.promql import _selector  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a build without a C compiler
    _selector = None

DEFAULT_SUBQUERY_STEP_MS = 60_000
# Subqueries of at least this many steps are probed at one step first, to refuse them before
# their memory is spent (see Evaluator._probe_subquery).
SUBQUERY_PROBE_MIN_STEPS = 1024
# Subqueries of more steps are evaluated in chunks of about this many steps (Evaluator.subquery).
SUBQUERY_CHUNK_STEPS = 4096
# The range vector a subquery builds is copied into one column this many series at a time, the
# deadline and cancellation checked in between.
SUBQUERY_COPY_SERIES = 16
_HAS_POS = re.compile(r"\(\d+:\d+\)$")
SORT_FUNCS = frozenset({"sort", "sort_desc", "sort_by_label", "sort_by_label_desc"})
# Functions whose value depends on the evaluation time even for step-invariant arguments.
AT_MODIFIER_UNSAFE_FUNCTIONS = frozenset({
    "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month", "year",
    "predict_linear", "time", "timestamp", "start", "end", "range", "step",
})


def _load_functions() -> dict[str, FunctionImpl]:
    try:
        from clearsight.query.promql import functions as fmod
    except ImportError:
        return {}
    registry = getattr(fmod, "FUNCTIONS", {})
    return dict(registry)


def _parse(query: str) -> Expr:
    return parse_with_positions(query)[0]


Positions = dict[int, int]  # id(AST node) -> 0-based character offset of its start in the query


def parse_with_positions(query: str) -> tuple[Expr, Positions]:
    """Parses ``query`` and returns the start offset of every node (for annotation positions)."""
    from clearsight.query.promql import parser

    expr, pos = parser.parse_with_positions(query)
    return expr, dict(pos)


def walk_nodes(expr: Expr) -> list[Expr]:
    """All expression nodes of a tree (including duration expressions), parents first."""
    out: list[Expr] = []
    stack: list[Any] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Expr):
            out.append(node)
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        fields = getattr(node, "__dataclass_fields__", None)
        if fields is None:
            continue
        for name in fields:
            child = getattr(node, name, None)
            if isinstance(child, Expr | DurationExpr | list) or hasattr(child, "__dataclass_fields__"):
                stack.append(child)
    return out


def copy_with_positions(expr: Expr, positions: Positions) -> tuple[Expr, Positions]:
    """Deep-copies an AST, carrying its node positions over to the copy."""
    memo: dict[int, Any] = {}
    new = copy.deepcopy(expr, memo)
    moved: Positions = {}
    for old_id, off in positions.items():
        obj = memo.get(old_id)
        if obj is not None:
            moved[id(obj)] = off
    return new, moved


class NotImplementedQueryError(QueryError):
    """The query uses something the engine does not implement (yet)."""


class _Limits:
    def __init__(self, max_samples: int, max_series: int, deadline: float,
                 cancel: threading.Event | None = None) -> None:
        self.max_samples = max_samples
        self.max_series = max_series
        self.budget = QueryBudget(max_samples, deadline, cancel)

    @property
    def deadline(self) -> float:
        return self.budget.deadline

    @property
    def cancel(self) -> threading.Event | None:
        return self.budget.cancel


def _without_positions(a: Any, gone: I64) -> Any:
    """``a`` without the elements at the sorted positions ``gone``: slice copies between them when
    there are few (stale markers are rare), a mask otherwise."""
    if gone.size > 4096:
        keep = np.ones(a.shape[0], dtype=bool)
        keep[gone] = False
        return a[keep]
    out = np.empty(a.shape[0] - gone.size, dtype=a.dtype)
    src = 0
    dst = 0
    for g in gone.tolist():
        n = g - src
        out[dst : dst + n] = a[src:g]
        dst += n
        src = g + 1
    out[dst:] = a[src:]
    return out


def select_data(selector: SeriesSelector, budget: QueryBudget, stats: QueryStats, max_series: int,
                matchers: Sequence[Matcher], lo: int, hi: int) -> SeriesData:
    """A store read of a query: ``selector.select`` with the query's remaining sample budget as the
    read limit (a store that supports it refuses a read over it before materialising it, and checks
    the deadline/cancellation between batches of its work), a checkpoint after the read (a read that
    ran past the deadline, or a client that went away during it, stops the query before its samples
    are processed), the read counted in ``stats`` and its samples reserved."""
    room = budget.max_samples - budget.held
    token = READ_LIMITS.set(ReadLimits(room if room > 0 else 0, budget.check))  # (``read_limits``, inlined)
    try:
        data = selector.select(matchers, lo, hi)
    except SampleLimitExceeded as e:
        budget.reserve(e.needed, "samples loaded from the store")
        raise QueryLimitExceeded(str(e)) from None
    finally:
        READ_LIMITS.reset(token)
    budget.check("expression evaluation (after a store read)")
    n = len(data.labels)
    loaded = data.timestamps.shape[0]
    stats.series_fetched += n
    stats.samples_loaded += loaded
    if n > max_series:
        raise too_many_series(n, max_series)
    budget.reserve(loaded, "samples loaded from the store")
    return data


def float_columns(data: SeriesData, budget: QueryBudget) -> tuple[list[Labels], I64, F64, I64, I64]:
    """A float-only selection as a range selector hands it on: ``(labels, timestamps, values,
    starts, ends)``, the columns without stale markers (their copies reserved in ``budget``) and
    the series left with samples (``starts[i]:ends[i]`` in the columns, series ``labels[i]``)."""
    offs = np.asarray(data.offsets, dtype=np.int64)
    t_all, v_all = data.timestamps, data.values
    nz: I64 | None = None  # the series left with samples; None: all of them
    compiled = (_selector is not None and offs.flags.c_contiguous and v_all.dtype == np.float64
                and v_all.flags.c_contiguous)
    if compiled:
        gone, nz = _selector.range_runs(offs, v_all)
    else:
        gone = np.flatnonzero(stale_mask(v_all))
    if gone.size:
        budget.reserve(int(t_all.shape[0]) * 2, "a range vector selector")  # the copies below
        offs = offs - np.searchsorted(gone, offs, side="left")
        t_all, v_all = _without_positions(t_all, gone), _without_positions(v_all, gone)
    if not compiled:
        nz = np.flatnonzero(offs[1:] > offs[:-1])
    if nz is None:
        starts, ends = offs[:-1].copy(), offs[1:].copy()
        labels = list(data.labels)
    else:
        starts, ends = offs[:-1][nz], offs[1:][nz]
        labels = [data.labels[i] for i in nz.tolist()]
    return labels, np.asarray(t_all, dtype=np.int64), np.asarray(v_all, dtype=np.float64), starts, ends


def float_matrix(labels: list[Labels], t_all: I64, v_all: F64, starts: I64, ends: I64, eff: I64, rng: int,
                 e: MatrixSelector, extra: int) -> MatrixSteps:
    """``float_columns``' columns as a range vector (series as views, the ``Flat`` cached)."""
    m = MatrixSteps(labels, SeriesViews(t_all, starts, ends), SeriesViews(v_all, starts, ends), eff, rng,
                    e.anchored, e.smoothed, extra, None, None)
    m.flat_cache = Flat(t_all, v_all, starts, ends)
    return m


class Evaluator:
    """Evaluates one query. ``start``/``end``/``step`` are the query's (for ``@ start()``, ``step()``)."""

    def __init__(self, selector: SeriesSelector, start_ms: int, end_ms: int, step_ms: int,
                 lookback_ms: int, limits: _Limits, functions: dict[str, FunctionImpl],
                 instant: bool, positions: Positions | None = None, query_text: str = "") -> None:
        self.positions = positions or {}
        self.query_text = query_text
        self.selector = selector
        self.start = start_ms
        self.end = end_ms
        self.step = step_ms
        self.lookback = lookback_ms
        self.limits = limits
        self.budget = limits.budget
        self.functions = functions
        self.instant = instant
        self.annotations = Annotations()
        self.stats = QueryStats()
        # Vector selectors whose histograms are read as Prometheus' HistogramStatsIterator does:
        # found on first use (only a selector that returned native histograms asks), from root.
        self.root: Expr | None = None
        self._stats_selectors: set[int] | None = None
        # Count Prometheus' totalQueryableSamples into stats.queryable_samples (costs a pass per selector).
        self.count_samples = False
        # Aggregations of a selection larger than this many samples fold it batch by batch (streamed.py).
        self.stream_batch_samples = streamed.DEFAULT_BATCH_SAMPLES
        # Range functions over more than this much work run batch of series by batch, with a
        # checkpoint between batches (batched_range.py; 0 = one call over all series).
        self.range_batch_work = batched_range.DEFAULT_BATCH_WORK
        # ``steps_span``'s last steps array and its (min, max): every selector of a query reads it
        self._span_ts: I64 | None = None
        self._span = (0, 0)

    def steps_span(self, ts: I64) -> tuple[int, int]:
        """``(min, max)`` of the (non-empty) steps ``ts``, reduced once per steps array: the nodes
        of a query share the array they are evaluated at (a subquery's chunks are new ones)."""
        if ts is not self._span_ts:
            if ts.shape[0] == 1:
                t = int(ts[0])
                self._span = (t, t)
            else:
                self._span = (int(ts.min()), int(ts.max()))
            self._span_ts = ts
        return self._span

    def known_span(self, ts: I64, lo: int, hi: int) -> None:
        """Tells ``steps_span`` the ``(min, max)`` of ``ts`` (known from how it was made)."""
        self._span_ts = ts
        self._span = (lo, hi)

    @property
    def stats_selectors(self) -> set[int]:
        if self._stats_selectors is None:
            self._stats_selectors = stats_selectors(self.root) if self.root is not None else set()
        return self._stats_selectors

    # ---- helpers ----

    def position(self, node: Expr) -> str | None:
        """``line:column`` of ``node`` in the query, as Prometheus renders annotation positions."""
        off = self.positions.get(id(node))
        if off is None:
            return None
        text = self.query_text
        line = text.count("\n", 0, off) + 1
        col = off - (text.rfind("\n", 0, off) + 1) + 1
        return f"{line}:{col}"

    def _mark_annotations(self, before: tuple[int, int], pick: Callable[[str], Expr | None]) -> None:
        """Appends the position of the node ``pick(message)`` to annotations added since ``before``."""
        ann = self.annotations
        if len(ann.warnings) == before[0] and len(ann.infos) == before[1]:
            return  # nothing added (most nodes)
        for lst, start in ((ann.warnings, before[0]), (ann.infos, before[1])):
            for i in range(start, len(lst)):
                msg = lst[i]
                if _HAS_POS.search(msg):
                    continue
                node = pick(msg)
                pos = self.position(node) if node is not None else None
                if pos is not None:
                    lst[i] = f"{msg} ({pos})"

    def check_deadline(self) -> None:
        self.budget.check()

    def _account(self, n_points: int, what: str = "an intermediate result") -> None:
        """Reserves ``n_points`` the caller is about to create (raises before they exist when the
        query would hold more than ``max_samples`` points at once)."""
        self.budget.reserve(n_points, what)

    def select(self, matchers: Sequence[Matcher], lo: int, hi: int) -> SeriesData:
        # No checkpoint before the read: the node reading checked as it began.
        return select_data(self.selector, self.budget, self.stats, self.limits.max_series, matchers, lo, hi)

    @staticmethod
    def _stats_decode(data: SeriesData, hs: ObjArr) -> ObjArr:
        out = hs.copy()
        offs = data.offsets
        for i in range(len(data)):
            a, b = int(offs[i]), int(offs[i + 1])
            out[a:b] = stats_decode(hs[a:b])
        return out

    def duration_ms(self, d: Duration) -> int:
        if isinstance(d, DurationExpr):
            secs = self._duration_seconds(d.expr)
            if np.isnan(secs) or np.isinf(secs):
                raise QueryError(f"invalid duration {secs}")
            return round(secs * 1000)
        return int(d)

    def _duration_seconds(self, e: Expr) -> float:
        if isinstance(e, NumberLiteral):
            return float(e.value)
        if isinstance(e, ParenExpr):
            return self._duration_seconds(e.expr)
        if isinstance(e, UnaryExpr):
            v = self._duration_seconds(e.expr)
            return -v if e.op == "-" else v
        if isinstance(e, Call):
            name = e.func
            if name == "step":
                return self.step / 1000.0
            if name == "range":
                return (self.end - self.start) / 1000.0
            if name in ("min_of", "max_of"):
                vals = [self._duration_seconds(a) for a in e.args]
                return min(vals) if name == "min_of" else max(vals)
        if isinstance(e, BinaryExpr):
            a = np.asarray([self._duration_seconds(e.lhs)])
            b = np.asarray([self._duration_seconds(e.rhs)])
            return float(binops.scalar_op(e.op, a, b)[0])
        raise QueryError("unsupported duration expression")

    def at_time(self, at: AtModifier) -> int:
        if at.timestamp_ms is not None:
            return int(at.timestamp_ms)
        if at.start_or_end == "start":
            return self.start
        if at.start_or_end == "end":
            return self.end
        raise QueryError("invalid @ modifier")

    def effective_times(self, offset: Duration, at: AtModifier | None, ts: I64) -> I64:
        base = np.full(ts.shape, self.at_time(at), dtype=np.int64) if at is not None else ts
        return base - np.int64(self.duration_ms(offset))

    # ---- dispatch ----

    def eval(self, e: Expr, ts: I64) -> Value:
        """Evaluates ``e`` at ``ts``. Memory accounting: whatever the node held while running (its
        operands, the samples it loaded) is released when it returns; its output stays held."""
        kind = type(e)
        if kind is ParenExpr:  # its operand's evaluation checks and settles exactly what it would
            return self.eval(e.expr, ts)  # type: ignore[attr-defined]
        budget = self.budget
        if kind is not NumberLiteral:  # (a literal is one np.full: no checkpoint before it)
            budget.check()
        mark = budget.held
        how = _NODE_EVAL.get(kind)  # (``_eval``'s lookup, without its call for the usual node types)
        out = how(self, e, ts) if how is not None else self._eval(e, ts)
        budget.settle_node(mark, value_points(out), e)
        return out

    def _eval(self, e: Expr, ts: I64) -> Value:
        # One dict lookup on the node's type instead of a chain of isinstance tests (a node of a
        # subclass of an AST type takes the chain).
        how = _NODE_EVAL.get(type(e))
        if how is None:
            how = next((f for t, f in _NODE_EVAL.items() if isinstance(e, t)), None)
            if how is None:
                raise QueryError(f"unsupported expression {type(e).__name__}")
        return how(self, e, ts)

    def _number(self, e: NumberLiteral, ts: I64) -> Value:
        return ScalarSteps(np.full(ts.shape, float(e.value)))

    def _string(self, e: StringLiteral, ts: I64) -> Value:
        return e.value

    def _inner(self, e: ParenExpr | StepInvariantExpr, ts: I64) -> Value:
        return self.eval(e.expr, ts)

    def _unary(self, e: UnaryExpr, ts: I64) -> Value:
        v = self.eval(e.expr, ts)
        if e.op == "-":
            if isinstance(v, ScalarSteps):
                return ScalarSteps(-v.values)
            if isinstance(v, VectorSteps):
                return binops.negate(v)
            raise QueryError("unary minus is only defined for scalars and instant vectors")
        return v

    def _binary(self, e: BinaryExpr, ts: I64) -> Value:
        lhs = self.eval(e.lhs, ts)
        rhs = self.eval(e.rhs, ts)
        self.budget.check()
        self._account(_binary_estimate(e, lhs, rhs, ts.shape[0]), f"binary operator {e.op}")
        ann = self.annotations
        before = (len(ann.warnings), len(ann.infos))
        out = binops.evaluate_binary(e, lhs, rhs, strict=len(ts) > 1, ann=ann)
        self._mark_annotations(before, lambda msg: e)
        return out

    # ---- selectors ----

    def vector_selector(self, e: VectorSelector, ts: I64) -> VectorSteps:
        # Neither offset nor @ (most selectors): the steps as they are, no array arithmetic.
        plain = e.at is None and type(e.offset) is int and e.offset == 0
        eff = ts if plain else self.effective_times(e.offset, e.at, ts)
        k = ts.shape[0]
        if k == 0:
            return VectorSteps.empty(0)
        if k == 1:  # an instant query: no reductions over a one-element array
            hi = int(eff[0])
            lo = hi - self.lookback + 1
        elif plain:
            lo, hi = self.steps_span(ts)
            lo = lo - self.lookback + 1
        else:
            lo = int(eff.min()) - self.lookback + 1
            hi = int(eff.max())
        if e.smoothed:
            smoothed = self._smoothed_selector(e, eff)
            if self.count_samples:
                self.stats.queryable_samples += int(smoothed.present.sum())
            return smoothed
        data = self.select(e.matchers, lo, hi)
        n = len(data.labels)
        self.budget.reserve(n * k, "an instant vector selector")
        if n == 0:
            return VectorSteps.empty(k)
        if (data.histograms is None and data.start_timestamps is None and data.timestamps.shape[0]
                and _kernel_fits(data, eff)):
            # floats only (most selectors): the compiled kernel gathers the rows and counts the
            # series present at some step, so ``compact`` runs only when some are not
            values, present, sample_ts, rows = _selector.latest_rows(data.offsets, data.timestamps, data.values,
                                                                     eff, lo, self.lookback)
            if self.count_samples:
                self.stats.queryable_samples += int(present.sum())
            out = VectorSteps(list(data.labels), values, present, None, sample_ts)
            return out if rows == n else compact(out)
        idx, present = latest_sample_index(data, eff, lo, self.lookback)
        if self.count_samples:
            self.stats.queryable_samples += int(present.sum())
        st_all = data.start_timestamps
        hs = data.histograms
        if hs is not None and id(e) in self.stats_selectors:
            hs = self._stats_decode(data, hs)
        hist = None
        if hs is not None:
            hist = hs[idx]
            hist[~present] = None
        return compact(VectorSteps(list(data.labels), data.values[idx], present, None, data.timestamps[idx],
                                   hist, st_all[idx] if st_all is not None else None))

    def _smoothed_selector(self, e: VectorSelector, eff: I64) -> VectorSteps:
        """``metric smoothed``: the value at each step linearly interpolated between the samples
        around it (within the lookback on either side), or the last sample when none follows."""
        k = eff.shape[0]
        lb = self.lookback
        data = self.select(e.matchers, int(eff.min()) - lb + 1, int(eff.max()) + lb)
        n = len(data)
        self._account(n * k, "a smoothed selector")
        values = np.zeros((n, k))
        present = np.zeros((n, k), dtype=bool)
        hs_all = data.histograms
        hist: ObjArr | None = None
        offs = data.offsets
        for i in range(n):
            if i % 256 == 255:
                self.budget.check()
            a, b = int(offs[i]), int(offs[i + 1])
            st = data.timestamps[a:b]
            sv = data.values[a:b]
            keep = ~stale_mask(sv)
            st, sv = st[keep], sv[keep]
            if st.size == 0:
                continue
            nxt = np.searchsorted(st, eff, side="left")
            nxc = np.minimum(nxt, st.size - 1)
            prv = np.maximum(nxt - 1, 0)
            has_next = (nxt < st.size) & (st[nxc] <= eff + lb)
            has_prev = (nxt > 0) & (st[prv] > eff - lb)
            exact = has_next & (st[nxc] == eff)
            with np.errstate(all="ignore"):
                t1, t2 = st[prv], st[nxc]
                y1, y2 = sv[prv], sv[nxc]
                interp = y1 + (y2 - y1) * (eff - t1).astype(np.float64) / (t2 - t1).astype(np.float64)
            val = np.where(exact, y2, np.where(has_prev & has_next, interp, y1))
            ok = exact | has_prev
            values[i] = val
            present[i] = ok
            if hs_all is not None:
                sh = hs_all[a:b][keep]
                if bool((sh != None).any()):  # noqa: E711
                    if hist is None:
                        hist = np.full((n, k), None, dtype=object)
                    self._smooth_histograms(e, data.labels[i], st, sh, eff, values[i], present[i], hist[i])
        return compact(VectorSteps(list(data.labels), values, present, None, None, hist))

    def _smooth_histograms(self, e: VectorSelector, labels: Labels, st: I64, sh: ObjArr, eff: I64,
                           values: Any, present: Any, hist: ObjArr) -> None:
        """``smoothed`` for a series with histogram samples (Prometheus' ``smoothSeries``): per
        step, the samples within the lookback on either side; a mix of floats and histograms
        warns and gives nothing; histograms are taken exactly, interpolated (a counter reset
        counts from zero) or carried forward with an unknown reset hint."""
        from clearsight.query.promql import nh_common as nc
        from clearsight.query.promql.nh_functions import _interpolate

        lb = self.lookback
        is_h = np.asarray(sh != None, dtype=bool)  # noqa: E711
        name = nc.metric_name(labels)
        ctx = FuncContext(step_times=eff, arg_exprs=[], annotations=self.annotations, lookback_delta_ms=lb)
        before = (len(self.annotations.warnings), len(self.annotations.infos))
        lo = np.searchsorted(st, eff - lb, side="right")
        hi = np.searchsorted(st, eff + lb, side="right")
        for j in range(eff.shape[0]):
            a, b = int(lo[j]), int(hi[j])
            nh = int(is_h[a:b].sum())
            if nh == 0:
                continue
            present[j] = False
            if nh < b - a:
                self.annotations.warn(nc.mixed_floats_histograms(name))
                continue
            t = int(eff[j])
            ts = st[a:b]
            hs = sh[a:b]
            q = int(np.searchsorted(ts, t, side="left"))
            if q < ts.size and int(ts[q]) == t:
                hist[j] = hs[q]
            elif 0 < q < ts.size:
                prev, nxt = hs[q - 1], hs[q]
                if prev.uses_custom_buckets != nxt.uses_custom_buckets:
                    self.annotations.warn(nc.mixed_exp_custom(name))
                    continue
                counter = (prev.counter_reset_hint != CounterResetHint.GAUGE
                           or nxt.counter_reset_hint != CounterResetHint.GAUGE)
                try:
                    hist[j] = _interpolate(ctx, prev, int(ts[q - 1]), nxt, int(ts[q]), t, counter)
                except ValueError:
                    self.annotations.warn(nc.mixed_exp_custom(name))
                    continue
            elif q > 0:
                hist[j] = hs[q - 1].with_hint(CounterResetHint.UNKNOWN)
            else:
                continue
            present[j] = True
            values[j] = np.nan
        self._mark_annotations(before, lambda msg: e)

    def matrix_selector(self, e: MatrixSelector, ts: I64) -> MatrixSteps:
        vs = e.vector
        rng = self.duration_ms(e.range)
        if rng <= 0 and not isinstance(e.range, int):
            raise QueryError(f"invalid range {rng}ms: must be positive")
        extra = self.lookback if (e.anchored or e.smoothed) else 0
        if vs.at is None and type(vs.offset) is int and vs.offset == 0 and ts.shape[0]:
            eff = ts  # neither offset nor @ (most range selectors): the steps as they are
            lo, hi = self.steps_span(ts)
            lo = lo - rng - extra + 1
        else:
            eff = self.effective_times(vs.offset, vs.at, ts)
            lo = int(eff.min()) - rng - extra + 1 if len(eff) else 0
            hi = int(eff.max()) if len(eff) else 0
        if e.smoothed:
            hi += self.lookback
        data = self.select(vs.matchers, lo, hi)
        labels: list[Labels] = []
        tss: list[I64] = []
        vals: list[Any] = []
        hs_all = data.histograms
        if hs_all is not None and id(vs) in self.stats_selectors:
            hs_all = self._stats_decode(data, hs_all)
        hists: list[ObjArr | None] = []
        st_all = data.start_timestamps
        if hs_all is None and st_all is None:
            return self._counted(self._float_matrix(data, eff, rng, e, extra))
        sts: list[I64 | None] = []
        offs = data.offsets
        self._account(int(data.timestamps.shape[0]), "a range vector selector")  # copies below
        for i in range(len(data)):
            if i % 256 == 255:
                self.budget.check()
            a, b = int(offs[i]), int(offs[i + 1])
            st = data.timestamps[a:b]
            sv = data.values[a:b]
            sst = st_all[a:b] if st_all is not None else None
            sh = hs_all[a:b] if hs_all is not None else None
            if sh is not None and not bool((sh != None).any()):  # noqa: E711
                sh = None
            keep = ~stale_mask(sv)
            if not keep.all():
                st, sv = st[keep], sv[keep]
                if sh is not None:
                    sh = sh[keep]
                if sst is not None:
                    sst = sst[keep]
            if st.size == 0:
                continue
            labels.append(data.labels[i])
            tss.append(st)
            vals.append(sv)
            hists.append(sh)
            sts.append(sst if sst is not None and bool(sst.any()) else None)
        return self._counted(MatrixSteps(labels, tss, vals, eff, rng, e.anchored, e.smoothed, extra,
                                         hists if any(h is not None for h in hists) else None,
                                         sts if any(x is not None for x in sts) else None))

    def _counted(self, m: MatrixSteps) -> MatrixSteps:
        """Adds the samples in every step's window of ``m`` to totalQueryableSamples (when counting)."""
        if self.count_samples and m.labels:
            ends = m.window_end
            starts = ends - m.range_ms
            for i, ts in enumerate(m.timestamps):
                if i % 256 == 255:
                    self.budget.check()
                n = np.searchsorted(ts, ends, side="right") - np.searchsorted(ts, starts, side="right")
                self.stats.queryable_samples += int(n.sum())
        return m

    def _float_matrix(self, data: SeriesData, eff: I64, rng: int, e: MatrixSelector, extra: int) -> MatrixSteps:
        """``matrix_selector`` for float-only data, without a Python pass per sample column: stale
        markers dropped in one pass, series as views of the selected arrays, and the concatenated
        ``Flat`` handed to the range functions as is."""
        return float_matrix(*float_columns(data, self.budget), eff, rng, e, extra)

    def subquery(self, e: SubqueryExpr, ts: I64) -> MatrixSteps:
        eff = self.effective_times(e.offset, e.at, ts)
        rng = self.duration_ms(e.range)
        step = self.duration_ms(e.step) if not (isinstance(e.step, int) and e.step == 0) else 0
        if step <= 0:
            step = DEFAULT_SUBQUERY_STEP_MS
        lo = int(eff.min()) - rng
        hi = int(eff.max())
        first = (lo // step) * step
        if first <= lo:
            first += step
        inner_ts = np.arange(first, hi + 1, step, dtype=np.int64)
        if inner_ts.size == 0:
            return MatrixSteps([], [], [], eff, rng)
        # The inner expression is evaluated at every subquery step: each series it yields costs
        # inner_ts.size points, reserved by the nodes below before they compute them.
        what = f"a subquery of {inner_ts.size:,} steps"
        if inner_ts.size >= SUBQUERY_PROBE_MIN_STEPS:
            self._probe_subquery(e.expr, inner_ts, what)
        self._account(int(inner_ts.size), what)
        # Long subqueries are evaluated in chunks of steps: the deadline and cancellation are
        # checked between chunks, and only one chunk's inner result is held at a time beside the
        # range vector being built.
        chunks = np.array_split(inner_ts, -(-inner_ts.size // SUBQUERY_CHUNK_STEPS))
        strict = inner_ts.size > 1
        pieces: dict[Labels, list[tuple[I64, Any, ObjArr | None]]] = {}
        for chunk in chunks:
            self.budget.check("subquery evaluation")
            mark = self.budget.held
            inner = self.eval(e.expr, chunk)
            self.budget.check()
            if not isinstance(inner, VectorSteps):
                if isinstance(inner, ScalarSteps):
                    inner = VectorSteps([()], inner.values[None, :], np.ones((1, chunk.size), dtype=bool))
                else:
                    raise QueryError("subquery is only allowed on instant vector or scalar expressions")
            # MatrixSteps carries no name-dropping flags: apply them now.
            inner = merge_rows(apply_drop_name(inner), strict=strict)
            ihm = inner.hist_mask() if inner.hist is not None else None
            # The range vector copies the present points (timestamps and values) out of the inner result.
            copies = 2 * int(np.count_nonzero(inner.present))
            self._account(copies, what)
            for i, lbl in enumerate(inner.labels):
                if i % 256 == 255:
                    self.budget.check()
                p = inner.present[i]
                if not p.any():
                    continue
                pieces.setdefault(lbl, []).append(
                    (chunk[p], inner.values[i][p],
                     _unknown_hints(inner.hist[i][p])
                     if inner.hist is not None and ihm is not None and ihm[i].any() else None))
            del inner
            self.budget.held = mark + copies  # the chunk's inner result is released, its copies stay
        # The range vector's samples go straight into one concatenated column per field (what the
        # range functions work on, ``Flat``), series as views: no second copy when a function
        # flattens it. The pieces are freed as they are copied.
        lengths = np.asarray([sum(int(x[0].shape[0]) for x in parts) for parts in pieces.values()], dtype=np.int64)
        ends = np.cumsum(lengths, dtype=np.int64)
        starts = ends - lengths
        t_all = np.empty(int(ends[-1]) if ends.size else 0, dtype=np.int64)
        v_all = np.empty(t_all.shape[0], dtype=np.float64)
        labels: list[Labels] = []
        tss: list[I64] = []
        vals: list[Any] = []
        hists: list[ObjArr | None] = []
        for n, ((lbl, parts), a, b) in enumerate(zip(pieces.items(), starts.tolist(), ends.tolist(), strict=True)):
            if n % SUBQUERY_COPY_SERIES == SUBQUERY_COPY_SERIES - 1:
                self.budget.check("subquery evaluation (copying its range vector)")
            pos = a
            for t, v, _h in parts:
                t_all[pos:pos + t.shape[0]] = t
                v_all[pos:pos + t.shape[0]] = v
                pos += t.shape[0]
            h = (None if all(x[2] is None for x in parts) else
                 np.concatenate([x[2] if x[2] is not None else np.full(x[0].shape[0], None, dtype=object)
                                 for x in parts]))
            parts.clear()
            labels.append(lbl)
            tss.append(t_all[a:b])
            vals.append(v_all[a:b])
            hists.append(h)
        m = MatrixSteps(labels, tss, vals, eff, rng, hists=hists if any(h is not None for h in hists) else None)
        m.flat_cache = Flat(t_all, v_all, starts, ends)
        return m

    def _probe_subquery(self, inner_expr: Expr, inner_ts: I64, what: str) -> None:
        """Estimates a long subquery's memory before evaluating it: the inner expression at the
        last subquery step tells how many series it yields; each costs two points per step in the
        range vector built from it, plus one per step of the chunk being evaluated."""
        mark = self.budget.held
        ann, stats = self.annotations, self.stats
        self.annotations, self.stats = Annotations(), QueryStats()  # the probe leaves no trace
        try:
            probe = self.eval(inner_expr, inner_ts[-1:])
        finally:
            self.annotations, self.stats = ann, stats
            self.budget.held = mark
        rows = probe.num_series if isinstance(probe, VectorSteps) else 1
        k = int(inner_ts.size)
        self._account(rows * (2 * k + min(k, SUBQUERY_CHUNK_STEPS)), what)
        self.budget.held = mark

    # ---- aggregation ----

    def aggregate(self, e: AggregateExpr, ts: I64) -> VectorSteps:
        param: ScalarSteps | str | None = None
        if e.param is not None:
            pv = self.eval(e.param, ts)
            if isinstance(pv, VectorSteps | MatrixSteps):
                raise QueryError(f"expected scalar parameter for {e.op}")
            param = pv
        folded, v = streamed.aggregate(self, e, ts) if param is None else (None, None)
        if folded is not None:
            return folded
        if v is None:
            v = self.eval(e.expr, ts)
        if not isinstance(v, VectorSteps):
            raise QueryError(f"expected instant vector in aggregation {e.op}")
        self.budget.check()
        before = (len(self.annotations.warnings), len(self.annotations.infos))
        out = aggregations.aggregate(e.op, v, param, list(e.grouping), e.without, self.annotations,
                                     instant=self.instant)

        def pick(msg: str) -> Expr | None:
            if "quantile value" in msg or "ratio value" in msg:
                return e.param
            return e if e.op in ("topk", "bottomk") else e.expr

        self._mark_annotations(before, pick)
        return out

    # ---- function calls ----

    def call(self, e: Call, ts: I64) -> Value:
        name = e.func
        if name == "info":
            from clearsight.query.promql.info import evaluate_info

            return evaluate_info(self, e, ts)
        if name in ("step", "range", "start", "end") and not e.args:
            secs = {"step": self.step, "range": self.end - self.start, "start": self.start,
                    "end": self.end}[name] / 1000.0
            return ScalarSteps(np.full(ts.shape, secs))
        if name in rollup_plan.FUNCTIONS and (rolled := rollup_plan.evaluate(self, e, ts)) is not None:
            return rolled  # some steps answered from rollups (rollup_plan.py)
        return self.call_raw(e, ts)

    def call_raw(self, e: Call, ts: I64) -> Value:
        """A function call evaluated from its arguments (raw samples for range selectors)."""
        name = e.func
        args: list[Value] = [self.eval(a, ts) for a in e.args]
        self.budget.check()
        # A function yields at most one row per input series and step: reserve that before it runs
        # (a range function over a long subquery is where a query's memory goes).
        self._account(max((a.num_series if isinstance(a, VectorSteps) else len(a.labels)
                           for a in args if isinstance(a, VectorSteps | MatrixSteps)), default=1) * ts.shape[0],
                      f"function {name}")
        before = (len(self.annotations.warnings), len(self.annotations.infos))
        impl = self.functions.get(name)
        ctx = FuncContext(step_times=ts, arg_exprs=list(e.args), annotations=self.annotations,
                          lookback_delta_ms=self.lookback)
        hist_out: Value | None = None
        if name in fn_start_ts.ST_FUNCTIONS and any(isinstance(a, MatrixSteps) and a.sts and not (a.anchored or a.smoothed)
                                                    for a in args):
            hist_out = fn_start_ts.ST_FUNCTIONS[name](ctx, args)
        elif any(has_histograms(a) for a in args):
            hist_out = nh_functions.call_function(name, ctx, args, impl)
            if hist_out is None and name not in nh_functions.PASS_THROUGH:
                args = [floats_only_value(a) for a in args]
        if hist_out is not None:
            out: Value = hist_out
        elif impl is None:
            if name in SORT_FUNCS and args and isinstance(args[0], VectorSteps):
                out = args[0]
            else:
                raise NotImplementedQueryError(f"function {name!r} is not implemented")
        else:
            out = batched_range.call(name, impl, ctx, args, self.budget.check, self.range_batch_work)
        if name in SORT_FUNCS and isinstance(out, VectorSteps):
            out = _sort_rows(name, out, args)
        self._mark_annotations(before, lambda msg: _annotated_arg(e, msg))
        return out


# How ``Evaluator._eval`` evaluates each AST node type.
_NODE_EVAL: dict[type, Callable[[Evaluator, Any, I64], Value]] = {
    NumberLiteral: Evaluator._number,
    StringLiteral: Evaluator._string,
    ParenExpr: Evaluator._inner,
    StepInvariantExpr: Evaluator._inner,
    UnaryExpr: Evaluator._unary,
    VectorSelector: Evaluator.vector_selector,
    MatrixSelector: Evaluator.matrix_selector,
    SubqueryExpr: Evaluator.subquery,
    BinaryExpr: Evaluator._binary,
    AggregateExpr: Evaluator.aggregate,
    Call: Evaluator.call,
}


def value_points(v: Value) -> int:
    """The points a value holds in memory (cells of a vector, samples of a range vector)."""
    if isinstance(v, VectorSteps):
        return int(v.values.size)
    if isinstance(v, ScalarSteps):
        return int(v.values.size)
    if isinstance(v, MatrixSteps):
        if v.flat_cache is not None:
            return int(v.flat_cache.t.shape[0])
        return sum(int(t.shape[0]) for t in v.timestamps)
    return 0


def _binary_estimate(e: BinaryExpr, lhs: Value, rhs: Value, k: int) -> int:
    """At most the points a binary operation yields: ``or`` keeps both sides, others the larger."""
    nl = lhs.num_series if isinstance(lhs, VectorSteps) else 0
    nr = rhs.num_series if isinstance(rhs, VectorSteps) else 0
    if nl == 0 and nr == 0:
        return 0  # scalar op scalar: tiny
    return (nl + nr if e.op == "or" else max(nl, nr)) * k


def _unknown_hints(hs: ObjArr) -> ObjArr:
    """Subquery output: reset/not_reset hints become unknown (they describe the relation to the
    previous *stored* sample, not to the previous subquery point), as Prometheus does."""
    out = hs.copy()
    for i, h in enumerate(hs.tolist()):
        if h is not None and h.counter_reset_hint in (CounterResetHint.RESET, CounterResetHint.NOT_RESET):
            out[i] = h.with_hint(CounterResetHint.UNKNOWN)
    return out


def _annotated_arg(e: Call, msg: str) -> Expr | None:
    """The node Prometheus attaches a function's annotation to."""
    if "ineffective for range queries" in msg:
        return e
    if "quantile value" in msg:
        for a in e.args:
            if a.type is ValueType.SCALAR:
                return a
    for a in e.args:
        if a.type in (ValueType.VECTOR, ValueType.MATRIX):
            return a
    return e


_NAT_RE = re.compile(r"(\d+)")


def _natkey(s: str) -> tuple[tuple[int, int | str], ...]:
    parts = _NAT_RE.split(s)
    key: list[tuple[int, int | str]] = []
    for i, p in enumerate(parts):
        if i % 2 == 1:
            key.append((0, int(p)))
        elif p:
            key.append((1, p))
    return tuple(key)


def _sort_rows(name: str, v: VectorSteps, args: list[Value]) -> VectorSteps:
    """Orders rows for instant-query output (the first step decides)."""
    n = v.num_series
    if n <= 1 or v.values.shape[1] == 0:
        return v
    col = v.values[:, 0]
    if name in ("sort", "sort_desc"):
        sign = 1.0 if name == "sort" else -1.0

        def vkey(i: int) -> tuple[int, float]:
            x = float(col[i])
            return (1, 0.0) if np.isnan(x) else (0, sign * x)

        order = sorted(range(n), key=vkey)
    else:
        names = [a for a in args[1:] if isinstance(a, str)]

        def lkey(i: int) -> tuple[Any, ...]:
            d = dict(v.labels[i])
            return tuple(_natkey(d.get(nm, "")) for nm in names)

        order = sorted(range(n), key=lambda i: (lkey(i), v.labels[i]), reverse=(name == "sort_by_label_desc"))
    idx = np.asarray(order, dtype=np.int64)
    return select_rows(v, idx)


def latest_samples(data: SeriesData, eff: I64, lo: int, lookback: int) -> tuple[Any, Any, I64]:
    """For every series and every time in ``eff``: the latest sample in ``(t - lookback, t]``."""
    idxc, ok = latest_sample_index(data, eff, lo, lookback)
    return data.values[idxc], ok, data.timestamps[idxc]


def latest_sample_index(data: SeriesData, eff: I64, lo: int, lookback: int) -> tuple[I64, Any]:
    """Index (into the data's columns) of the latest sample in ``(t - lookback, t]`` for every
    series and every time in ``eff``, and whether there is one (stale markers count as none).
    Compiled (``_selector.pyx``) when built, else ``latest_sample_index_numpy``: the same answers."""
    if _selector is not None and _kernel_fits(data, eff):
        idx, ok = _selector.latest_index(data.offsets, data.timestamps, data.values, eff, lo, lookback)
        return idx, ok
    return latest_sample_index_numpy(data, eff, lo, lookback)


_I64 = np.dtype(np.int64)
_F64 = np.dtype(np.float64)


def _kernel_fits(data: SeriesData, eff: I64) -> bool:
    """Whether the compiled selector kernels (``_selector.pyx``) take these columns as they are:
    built, contiguous int64/float64 columns."""
    offs, ts, vs = data.offsets, data.timestamps, data.values
    if (offs.dtype is _I64 and ts.dtype is _I64 and vs.dtype is _F64 and eff.dtype is _I64
            and _selector is not None and offs.flags.c_contiguous and ts.flags.c_contiguous
            and vs.flags.c_contiguous and eff.flags.c_contiguous):
        return True  # the usual columns: identity tests on the native dtypes, no dtype comparisons
    return (_selector is not None and offs.dtype == np.int64 and ts.dtype == np.int64
            and vs.dtype == np.float64 and eff.dtype == np.int64 and offs.flags.c_contiguous
            and ts.flags.c_contiguous and vs.flags.c_contiguous and eff.flags.c_contiguous)


def latest_sample_index_numpy(data: SeriesData, eff: I64, lo: int, lookback: int) -> tuple[I64, Any]:
    """``latest_sample_index`` in numpy. One ``searchsorted`` over all series at once: series
    ``i``'s timestamps are keyed as ``i * span + (t - lo)``, which is increasing across the
    concatenated columns."""
    n = len(data)
    k = eff.shape[0]
    offs = data.offsets
    if k == 1 and n and data.timestamps.shape[0]:
        # One step (instant queries): the latest sample is each series' last one, when the store
        # returned nothing after the step (as asked: selects end at the step); else the general path.
        t0 = int(eff[0])
        idx1 = np.maximum(offs[1:] - 1, 0)
        t1 = data.timestamps[idx1]
        nonempty = offs[1:] > offs[:-1]
        if not bool((t1[nonempty] > t0).any()):
            ok1 = nonempty & (t1 > t0 - lookback) & ~stale_mask(data.values[idx1])
            return idx1[:, None], ok1[:, None]
    span = int(max(int(eff.max()), int(data.timestamps.max()) if data.timestamps.size else 0) - lo + 2)
    series_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(offs))
    keys = series_of * span + (data.timestamps - lo)
    rel = np.clip(eff - lo, -1, span - 1)
    targets = np.arange(n, dtype=np.int64)[:, None] * span + rel[None, :]
    idx = np.searchsorted(keys, targets.ravel(), side="right").reshape(n, k) - 1
    ok = idx >= offs[:n, None]
    idxc = np.maximum(idx, 0)
    t = data.timestamps[idxc]
    v = data.values[idxc]
    ok &= t > (eff - lookback)[None, :]
    ok &= ~stale_mask(v.ravel()).reshape(n, k)
    return idxc, ok


class Engine:
    """Evaluates PromQL queries against a ``SeriesSelector``.

    Limits: ``max_points_per_series`` bounds range-query resolution, ``max_samples`` the samples
    loaded and the largest intermediate (series x steps) value, ``max_series`` the series one
    selector may return, ``timeout_s`` the wall time (checked between operators).
    ``stream_batch_samples``: an aggregation of a selection estimated larger than this many samples
    is folded one batch of series at a time (``streamed.py``; 0 = always materialise).
    ``range_batch_work``: a range function over more work (samples + series x steps) runs batch of
    series by batch, with a checkpoint between (``batched_range.py``; 0 = one call)."""

    def __init__(self, lookback_delta_ms: int = 300_000, timeout_s: float = 120.0,
                 max_samples: int = 50_000_000, max_points_per_series: int = 11_000,
                 max_series: int = 1_000_000,
                 functions: dict[str, FunctionImpl] | None = None,
                 stream_batch_samples: int = streamed.DEFAULT_BATCH_SAMPLES,
                 range_batch_work: int = batched_range.DEFAULT_BATCH_WORK) -> None:
        self.lookback_delta_ms = lookback_delta_ms
        self.timeout_s = timeout_s
        self.max_samples = max_samples
        self.max_points_per_series = max_points_per_series
        self.max_series = max_series
        # Loaded now, not by the first query that calls a function (~20 ms of imports it would wait on).
        self.functions = functions if functions is not None else _load_functions()
        self.stream_batch_samples = stream_batch_samples
        self.range_batch_work = range_batch_work
        # Bare selectors and range functions over one (bare.py) are answered by a short path
        # (``_bare_result``); False: always by the general evaluator (tests compare the two).
        self.bare_path = True
        self._fn_range, self._bare_functions = _bare_functions(self.functions)

    def _evaluator(self, selector: SeriesSelector, start: int, end: int, step: int, instant: bool,
                   timeout_s: float | None, cancel: threading.Event | None,
                   lookback_delta_ms: int | None, positions: Positions | None = None,
                   query_text: str = "", deadline: float | None = None) -> Evaluator:
        if deadline is None:
            deadline = self._deadline(timeout_s)
        limits = _Limits(self.max_samples, self.max_series, deadline, cancel)
        lookback = self.lookback_delta_ms if not lookback_delta_ms else lookback_delta_ms
        ev = Evaluator(selector, start, end, step, lookback, limits, self.functions, instant, positions,
                       query_text)
        ev.stream_batch_samples = self.stream_batch_samples
        ev.range_batch_work = self.range_batch_work
        return ev

    def _deadline(self, timeout_s: float | None) -> float:
        return time.monotonic() + (self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s))

    def _bare_plan(self, expr: Expr, bare: BarePlan | bool | None, count_samples: bool) -> BarePlan | None:
        """The short path's plan for ``expr`` (``bare``: the plan prepared with the query text, False
        when it has none, None to work it out), None when the general evaluator answers it."""
        if not self.bare_path or count_samples or bare is False:
            return None
        plan = bare if isinstance(bare, BarePlan) else plan_of(expr)
        if plan is None or (plan.call is not None and (plan.call.func not in self._bare_functions
                                                       or self._fn_range._overtime is None)):
            return None  # (the kernel is looked up each time: tests take it away)
        return plan

    def instant(self, selector: SeriesSelector, query: str | Expr, time_ms: int, *,
                timeout_s: float | None = None, cancel: threading.Event | None = None,
                lookback_delta_ms: int | None = None, positions: Positions | None = None,
                query_text: str = "", count_samples: bool = False,
                bare: BarePlan | bool | None = None) -> QueryResult:
        """Evaluates ``query`` at ``time_ms``. ``timeout_s`` can only shorten the engine's timeout;
        setting ``cancel`` aborts the query at the next operator boundary (QueryCanceled).
        For a pre-parsed ``Expr``, ``positions``/``query_text`` give annotation positions and
        ``bare`` its short-path plan (``prepared.Prepared.bare``: a ``bare.BarePlan`` of this
        expression, or False when it has none; None: worked out here)."""
        expr, positions, query_text = _prepare(query, positions, query_text)
        deadline = self._deadline(timeout_s)
        ts = _selector.one_step(time_ms) if _selector is not None else np.array([time_ms], dtype=np.int64)
        plan = self._bare_plan(expr, bare, count_samples)
        if plan is not None:
            res = _bare_result(self, selector, plan, ts, time_ms, time_ms, time_ms, time_ms, lookback_delta_ms,
                               deadline, cancel, True)
            if res is not None:
                res.eval_time_ms = time_ms
                return res
        ev = self._evaluator(selector, time_ms, time_ms, 0, True, timeout_s, cancel, lookback_delta_ms,
                             positions, query_text, deadline)
        ev.root = expr
        ev.count_samples = count_samples
        with running(ev.budget):
            val = ev.eval(expr, ts)
            res = _finish(ev, val, ts, instant=True)
        res.eval_time_ms = time_ms
        return res

    def range(self, selector: SeriesSelector, query: str | Expr, start_ms: int, end_ms: int,
              step_ms: int, *, timeout_s: float | None = None, cancel: threading.Event | None = None,
              lookback_delta_ms: int | None = None, positions: Positions | None = None,
              query_text: str = "", count_samples: bool = False,
              bare: BarePlan | bool | None = None) -> QueryResult:
        """``instant`` at the steps from ``start_ms`` to ``end_ms`` every ``step_ms``."""
        if step_ms <= 0:
            raise QueryError("zero or negative query resolution step widths are not accepted. "
                             "Try a positive integer")
        if end_ms < start_ms:
            raise QueryError("end timestamp must not be before start time")
        points = (end_ms - start_ms) // step_ms + 1
        if points > self.max_points_per_series:
            raise QueryLimitExceeded(
                f"exceeded maximum resolution of {self.max_points_per_series:,} points per timeseries. "
                "Try decreasing the query resolution (?step=XX)")
        expr, positions, query_text = _prepare(query, positions, query_text)
        if expr.type not in (ValueType.SCALAR, ValueType.VECTOR):
            raise QueryError(f"invalid expression type \"{_type_name(expr.type)}\" for range query, "
                             "must be Scalar or instant Vector")
        deadline = self._deadline(timeout_s)
        ts = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        last = start_ms + (points - 1) * step_ms
        plan = self._bare_plan(expr, bare, count_samples)
        if plan is not None:
            res = _bare_result(self, selector, plan, ts, start_ms, end_ms, start_ms, last, lookback_delta_ms,
                               deadline, cancel, False)
            if res is not None:
                return res
        ev = self._evaluator(selector, start_ms, end_ms, step_ms, False, timeout_s, cancel, lookback_delta_ms,
                             positions, query_text, deadline)
        ev.known_span(ts, start_ms, last)  # no reductions over the steps
        ev.root = expr
        ev.count_samples = count_samples
        with running(ev.budget):
            val = ev.eval(expr, ts)
            return _finish(ev, val, ts, instant=False)


def _bare_functions(functions: dict[str, FunctionImpl]) -> tuple[Any, frozenset[str]]:
    """``fn_range`` (its compiled ``*_over_time`` kernel, ``over_time_columns``) and the range
    functions the short path may evaluate with it: those of ``bare.OVER_TIME_OPS`` whose
    implementation in ``functions`` is the library's."""
    from clearsight.query.promql import fn_range
    from clearsight.query.promql.functions import FUNCTIONS

    names = frozenset(n for n in OVER_TIME_OPS if functions.get(n) is not None and functions.get(n) is FUNCTIONS.get(n))
    return fn_range, names


def _bare_result(eng: Engine, selector: SeriesSelector, plan: BarePlan, ts: I64, start: int, end: int, first: int,
                 last: int, lookback_delta_ms: int | None, deadline: float, cancel: threading.Event | None,
                 instant: bool) -> QueryResult | None:
    """``plan``'s query at the steps ``ts`` (``first``..``last``; the query's ``start``/``end`` for
    ``@ start()``/``@ end()``) by the short path (bare.py), with the checkpoints, reservations and
    statistics of the general evaluator's, in the same order; None when the general evaluator must
    answer it (native histograms or start times in the selection, the kernel's columns not
    contiguous, steps a rollup could answer, an annotation): what the path did is then dropped."""
    budget = QueryBudget(eng.max_samples, deadline, cancel)
    stats = QueryStats()
    lookback = eng.lookback_delta_ms if not lookback_delta_ms else lookback_delta_ms
    k = ts.shape[0]
    at = plan.at
    off = plan.offset_ms
    if at is None and off == 0:  # (``plan.plain``, without its call)
        eff, lo, hi = ts, first, last
    elif at is None:  # Evaluator.effective_times (the span known: no reductions)
        eff, lo, hi = ts - np.int64(off), first - off, last - off
    else:
        t = at.timestamp_ms if at.timestamp_ms is not None else (start if at.start_or_end == "start" else end)
        eff = np.full(ts.shape, t - off, dtype=np.int64)
        lo = hi = t - off
    m = plan.matrix
    if m is None:  # a selector: nothing in its read polls the thread's current budget (no ``running``)
        return _bare_vector(eng, selector, plan, budget, stats, ts, eff, lo - lookback + 1, hi, lookback, instant)
    with running(budget):
        call = plan.call
        assert call is not None
        budget.check()  # (``Evaluator.eval`` of the call)
        rng = plan.range_ms
        if call.func in rollup_plan.FUNCTIONS:  # (``Evaluator.call``: a rollup may answer some steps)
            coverage = rollup_plan.resolutions(selector, lambda: rng)
            if coverage and (rollup_plan.answers_at(coverage, rng, lo) if k == 1
                             else bool(rollup_plan.plan(coverage, eff, rng).any())):
                return None
        budget.check()  # (``Evaluator.eval`` of the range selector)
        data = select_data(selector, budget, stats, eng.max_series, plan.matchers, lo - rng + 1, hi)
        if data.histograms is not None or data.start_timestamps is not None:
            return None
        labels, t_all, v_all, starts, ends = float_columns(data, budget)
        budget.settle_node(0, int(t_all.shape[0]), m)
        budget.check()  # (``Evaluator.call_raw`` after its argument)
        n = len(labels)
        budget.reserve(n * k, f"function {call.func}")
        ann = Annotations()
        if eng.range_batch_work > 0 and int(t_all.shape[0]) + n * k > eng.range_batch_work:
            ctx = FuncContext(step_times=ts, arg_exprs=list(call.args), annotations=ann, lookback_delta_ms=lookback)
            arg = float_matrix(labels, t_all, v_all, starts, ends, eff, rng, m, 0)
            out = batched_range.call(call.func, eng.functions[call.func], ctx, [arg], budget.check,
                                     eng.range_batch_work)
            if ann.warnings or ann.infos or not isinstance(out, VectorSteps):
                return None  # (not for floats: their positions would be the general evaluator's to add)
            val = out
        else:
            val = eng._fn_range.over_time_columns(plan.op, plan.keep_name, labels, t_all, v_all, starts, ends, eff,
                                                  rng)
        budget.settle_node(0, int(val.values.size), call)
        rows = val.num_series
        if rows and (rows == n and np.count_nonzero(val.present) == n * k):
            names = val.labels if plan.keep_name else [drop_meta(lbl) for lbl in val.labels]
            if n == 1 or len(set(names)) == n:
                return _bare_rows(budget, stats, names, val.values, ts, instant)
        return _result(budget, stats, ann, val, ts, instant)


def _bare_vector(eng: Engine, selector: SeriesSelector, plan: BarePlan, budget: QueryBudget, stats: QueryStats,
                 ts: I64, eff: I64, lo: int, hi: int, lookback: int, instant: bool) -> QueryResult | None:
    """``_bare_result`` of a vector selector (``Evaluator.vector_selector``'s float path)."""
    vs = plan.vector
    k = ts.shape[0]
    budget.check()  # (``Evaluator.eval`` of the selector)
    if k == 1:  # one step: the newest sample in [lo, hi] of each series, when the store tells them at once
        latest = getattr(selector, "select_latest", None)  # a LatestSelector's (isinstance is slow)
        if latest is not None:
            room = budget.max_samples - budget.held
            try:
                got = latest(plan.matchers, lo, hi, room if room > 0 else 0)
            except SampleLimitExceeded as e:  # (``select_data``'s refusal)
                budget.reserve(e.needed, "samples loaded from the store")
                raise QueryLimitExceeded(str(e)) from None
            if got is not None:
                return _latest_rows(eng, budget, stats, vs, got, ts, instant)
    data = select_data(selector, budget, stats, eng.max_series, plan.matchers, lo, hi)
    n = len(data.labels)
    budget.reserve(n * k, "an instant vector selector")
    if n == 0:
        val = VectorSteps.empty(k)
    elif (data.histograms is None and data.start_timestamps is None and data.timestamps.shape[0]
          and _kernel_fits(data, eff)):
        values, present, sample_ts, rows = _selector.latest_rows(data.offsets, data.timestamps, data.values, eff,
                                                                 lo, lookback)
        labels = data.labels
        if rows == n and (k == 1 or np.count_nonzero(present) == n * k) and (n == 1 or len(set(labels)) == n):
            budget.settle_node(0, n * k, vs)
            return _bare_rows(budget, stats, labels, values, ts, instant)
        val = VectorSteps(list(labels), values, present, None, sample_ts)
        if rows != n:
            val = compact(val)
    else:
        return None
    budget.settle_node(0, int(val.values.size), vs)
    return _result(budget, stats, Annotations(), val, ts, instant)


def _latest_rows(eng: Engine, budget: QueryBudget, stats: QueryStats, vs: Expr, got: LatestSamples, ts: I64,
                 instant: bool) -> QueryResult | None:
    """``_bare_vector``'s answer from a store's ``select_latest`` (one step, every series present):
    ``select_data``'s accounting of the read (checkpoint, statistics, series limit, the samples it
    would have loaded reserved), then the selector's, in the same order."""
    if got.chunks:
        budget.check()  # (the read limits' ``should_stop`` of a select that took chunks)
    budget.check("expression evaluation (after a store read)")
    labels = got.labels
    n = len(labels)
    stats.series_fetched += n
    stats.samples_loaded += got.samples
    if n > eng.max_series:
        raise too_many_series(n, eng.max_series)
    budget.reserve(got.samples, "samples loaded from the store")
    budget.reserve(n, "an instant vector selector")
    if n > 1 and len(set(labels)) != n:  # (a store's series are distinct label sets: never here)
        return None
    budget.settle_node(0, n, vs)
    return _bare_rows(budget, stats, labels, got.values, ts, instant)


def _bare_rows(budget: QueryBudget, stats: QueryStats, labels: Sequence[Labels], values: F64, ts: I64,
               instant: bool) -> QueryResult:
    """``_result`` of float rows with distinct ``labels``, present at every step of ``ts``, in a
    (series x steps) array of their own: each series is a row of it, all share ``ts`` (both made
    read-only); a range query's sorted by labels."""
    budget.check("result sorting")
    stats.peak_points = budget.peak
    values.flags.writeable = False
    ts.flags.writeable = False
    # (rows by index: iterating a numpy array ends in an IndexError raised and caught inside numpy,
    # ~4% of a cold small query's code cache misses, bench/request_callgrind.py)
    assert len(labels) == values.shape[0]
    if instant:  # (rows: the series are made only if read, api/prometheus_query encodes the rows)
        return QueryResult("vector", stats=stats, rows=FloatRows(labels, ts, values))
    series = [SeriesResult(lbl, ts, values[i]) for i, lbl in enumerate(labels)]
    series.sort(key=_labels_of)
    return QueryResult("matrix", series, stats=stats)


def _prepare(query: str | Expr, positions: Positions | None, query_text: str) -> tuple[Expr, Positions, str]:
    if isinstance(query, str):
        expr, pos = parse_with_positions(query)
        return expr, pos, query
    return query, positions or {}, query_text


def _type_name(t: ValueType) -> str:
    return {"matrix": "range vector", "vector": "instant vector"}.get(t.value, t.value)


def _finish(ev: Evaluator, val: Value, ts: I64, instant: bool) -> QueryResult:
    return _result(ev.budget, ev.stats, ev.annotations, val, ts, instant)


def _result(budget: QueryBudget, stats: QueryStats, ann: Annotations, val: Value, ts: I64,
            instant: bool) -> QueryResult:
    """The query result of the root expression's value ``val`` at the steps ``ts``."""
    budget.check("result sorting")
    stats.peak_points = budget.peak
    if isinstance(val, str):
        if not instant:
            raise QueryError("invalid expression type \"string\" for range query, must be Scalar or instant Vector")
        return QueryResult("string", [], string_value=val, annotations=ann, stats=stats)
    if isinstance(val, ScalarSteps):
        if instant:
            return QueryResult("scalar", [SeriesResult((), ts.copy(), val.values.copy())], annotations=ann,
                               stats=stats)
        return QueryResult("matrix", [SeriesResult((), ts.copy(), val.values.copy())], annotations=ann,
                           stats=stats)
    if isinstance(val, MatrixSteps):
        if not instant:
            raise QueryError("invalid expression type \"range vector\" for range query, must be Scalar or "
                             "instant Vector")
        out: list[SeriesResult] = []
        for i, (lbl, st, sv) in enumerate(zip(val.labels, val.timestamps, val.values, strict=True)):
            end = int(val.window_end[0])
            m = (st > end - val.range_ms) & (st <= end)
            if m.any():
                sh = val.hist_of(i)
                out.append(SeriesResult(lbl, st[m].astype(np.int64), np.asarray(sv[m], dtype=np.float64),
                                        None if sh is None else list(sh[m])))
        _check_unique([s.labels for s in out])
        out.sort(key=lambda s: s.labels)
        return QueryResult("matrix", out, annotations=ann, stats=stats)
    if instant and val.drop_name is None and val.hist is None:
        rows = _instant_rows(val, ts)  # a plain selector's usual output: no merge, no compact
        if rows is not None:
            return QueryResult("vector", annotations=ann, stats=stats, rows=rows)
    v = val
    if val.drop_name is not None:  # the rows flagged for it lose their metric name
        flags = val.drop_name.tolist()
        labels = [drop_meta(lbl) if d else lbl for lbl, d in zip(val.labels, flags, strict=True)] if any(flags) \
            else val.labels
        v = VectorSteps(labels, val.values, val.present, None, val.sample_ts, val.hist)
    if not instant:
        return QueryResult("matrix", _range_series(v, ts), annotations=ann, stats=stats)
    found = _instant_series(v, ts)
    if isinstance(found, FloatRows):
        return QueryResult("vector", annotations=ann, stats=stats, rows=found)
    return QueryResult("vector", found, annotations=ann, stats=stats)


def _instant_rows(v: VectorSteps, ts: I64) -> FloatRows | None:
    """``_instant_series`` of a one-step float vector (no histograms, no name to drop) whose rows
    are all present with distinct labels, as a plain selector usually returns: the same series in
    the same (row) order without ``compact``/``merge_rows``; None for any other vector."""
    labels = v.labels
    n = len(labels)
    if np.count_nonzero(v.present) != n or v.values.shape[1] != 1 or (n > 1 and len(set(labels)) != n):
        return None
    return _shared_columns(labels, v.values, ts)


def _shared_columns(labels: Sequence[Labels], values: F64, ts: I64) -> FloatRows:
    """Rows present at every step of ``ts``: one read-only copy of the values (their first
    ``len(ts)`` columns) and of the steps, as rows (an instant vector's result: result.py)."""
    k = ts.shape[0]
    col = np.array(values if values.shape[1] == k else values[:, :k], dtype=np.float64)
    col.flags.writeable = False
    at = ts.copy()
    at.flags.writeable = False
    assert len(labels) == col.shape[0]
    return FloatRows(labels, at, col)


def _shared_rows(labels: list[Labels], values: F64, ts: I64) -> list[SeriesResult]:
    """``_shared_columns`` as series: plain slices of the copies, shared by every series."""
    rows = _shared_columns(labels, values, ts)
    at, col = rows.timestamps, rows.values
    return [SeriesResult(lbl, at, col[i]) for i, lbl in enumerate(labels)]  # (by index: see _bare_rows)


def _instant_series(v: VectorSteps, ts: I64) -> FloatRows | list[SeriesResult]:
    """The series of a one-step vector (names already dropped): rows with the same labels merged
    (an error when two are present), absent rows left out, in row order; as rows when they hold
    floats only."""
    if v.num_series and np.count_nonzero(v.present) != v.present.size:  # one step: a row absent there is absent throughout
        v = compact(v)
    merged = merge_rows(v, strict=True)
    v = compact(merged) if merged is not v else v  # rows merged: some may now be absent throughout
    if v.hist is None:  # one step, every row present after compact
        return _shared_columns(v.labels, v.values, ts)
    return _series_rows(v, ts, [True] * v.num_series)


def _range_series(v: VectorSteps, ts: I64) -> list[SeriesResult]:
    """A range query's series: rows with the same labels merged, rows absent at every step left
    out, sorted by labels."""
    v = merge_rows(v, strict=True)
    n = v.num_series
    if not n:
        return []
    k = ts.shape[0]
    if v.hist is None and np.count_nonzero(v.present) == n * k:
        series = _shared_rows(v.labels, v.values, ts)  # every row full (a plain selector's usual output)
    else:
        counts = v.present.sum(axis=1).tolist()  # one reduction tells the absent rows and the full ones
        series = _series_rows(v, ts, [c > 0 for c in counts], [c == k for c in counts],
                              _partial_rows(v, ts, counts) if v.hist is None else None)
    series.sort(key=_labels_of)
    return series


def _labels_of(s: SeriesResult) -> Labels:
    return s.labels


def _partial_rows(v: VectorSteps, ts: I64, counts: list[int]) -> dict[int, tuple[I64, F64]] | None:
    """The points of the float rows of ``v`` present at some steps but not all (``counts``: steps
    present per row), by row: slices of one read-only array of their times and one of their
    values (a few numpy calls for all of them instead of a few per row). None without such rows."""
    k = ts.shape[0]
    rows = [i for i, c in enumerate(counts) if 0 < c < k]
    if not rows:
        return None
    if len(rows) == 1:
        i = rows[0]
        p = v.present[i]
        return {i: (ts[p].copy(), v.values[i][p].copy())}
    pres = v.present[rows]
    at = ts[None, :].repeat(len(rows), axis=0)[pres]  # row-major: each row's steps in order, row after row
    vals = np.array(v.values[rows][pres], dtype=np.float64)
    at.flags.writeable = False
    vals.flags.writeable = False
    out: dict[int, tuple[I64, F64]] = {}
    a = 0
    for i in rows:
        b = a + counts[i]
        out[i] = (at[a:b], vals[a:b])
        a = b
    return out


def _series_rows(v: VectorSteps, ts: I64, keep: list[bool], full: list[bool] | None = None,
                 partial: dict[int, tuple[I64, F64]] | None = None) -> list[SeriesResult]:
    """The rows ``keep`` of ``v`` as series of their present points. Rows present at every step
    (``full``) share one read-only copy of the steps and are rows of one read-only copy of the
    values (float rows only); rows in ``partial`` take the points given there."""
    series: list[SeriesResult] = []
    hist = v.hist
    at: I64 | None = None
    vals: F64 | None = None
    if full is not None and hist is None and any(full):
        at = ts.copy()
        at.flags.writeable = False
        vals = np.array(v.values, dtype=np.float64)
        vals.flags.writeable = False
    for i, lbl in enumerate(v.labels):
        if not keep[i]:
            continue
        if vals is not None and at is not None and full is not None and full[i]:
            series.append(SeriesResult(lbl, at, vals[i]))
            continue
        if partial is not None and (pts := partial.get(i)) is not None:
            series.append(SeriesResult(lbl, pts[0], pts[1]))
            continue
        p = v.present[i]
        hl = None
        if hist is not None:
            hrow = hist[i][p]
            if bool((hrow != None).any()):  # noqa: E711
                hl = list(hrow)
        series.append(SeriesResult(lbl, ts[p].copy(), v.values[i][p].copy(), hl))
    return series


def _check_unique(labels: list[Labels]) -> None:
    if len(set(labels)) != len(labels):
        raise QueryError("vector cannot contain metrics with the same labelset")


# ---- AST utilities used by tests and the promqltest runner ----

def with_at_everywhere(expr: Expr, at_ms: int,
                       positions: Positions | None = None) -> tuple[Expr, Positions] | None:
    """Returns a copy of ``expr`` (and its node positions) with ``@ at_ms`` set on every selector
    and subquery lacking one (not descending into subqueries), or None when the expression
    contains a function whose value depends on the evaluation time (Prometheus'
    AtModifierUnsafeFunctions)."""
    e, new_positions = copy_with_positions(expr, positions or {})
    unsafe = False

    def walk(node: Expr) -> None:
        nonlocal unsafe
        if isinstance(node, VectorSelector):
            if node.at is None:
                node.at = AtModifier(timestamp_ms=at_ms)
            return
        if isinstance(node, MatrixSelector):
            if node.vector.at is None:
                node.vector.at = AtModifier(timestamp_ms=at_ms)
            return
        if isinstance(node, SubqueryExpr):
            if node.at is None:
                node.at = AtModifier(timestamp_ms=at_ms)
            return
        if isinstance(node, Call):
            if node.func in AT_MODIFIER_UNSAFE_FUNCTIONS:
                unsafe = True
            for a in node.args:
                walk(a)
            return
        for child in _children(node):
            walk(child)

    walk(e)
    return None if unsafe else (e, new_positions)


def _children(node: Expr) -> list[Expr]:
    if isinstance(node, ParenExpr | StepInvariantExpr | UnaryExpr):
        return [node.expr]
    if isinstance(node, BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, AggregateExpr):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, SubqueryExpr):
        return [node.expr]
    if isinstance(node, MatrixSelector):
        return [node.vector]
    return []


def selector_matchers(expr: Expr) -> list[list[Matcher]]:
    """All matcher lists of the selectors in ``expr``."""
    out: list[list[Matcher]] = []

    def walk(node: Expr) -> None:
        if isinstance(node, VectorSelector):
            out.append(list(node.matchers))
            return
        for c in _children(node):
            walk(c)

    walk(expr)
    return out


__all__ = [
    "AT_MODIFIER_UNSAFE_FUNCTIONS",
    "Engine",
    "Evaluator",
    "NotImplementedQueryError",
    "QueryCanceled",
    "QueryResult",
    "copy_with_positions",
    "parse_with_positions",
    "selector_matchers",
    "with_at_everywhere",
]
