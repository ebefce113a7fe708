"""Range-vector functions (``rate``, ``*_over_time``, ...), evaluated for all series and steps at once.

Every function receives a ``MatrixSteps``; the window of series ``i`` at step ``j`` is the flat
index range ``[lo[i, j], hi[i, j])`` (samples with ``window_end[j] - range < t <= window_end[j]``).
Semantics follow Prometheus 3's ``promql/functions.go`` (float samples only: native histograms
are not supported by the engine yet).

Compiled kernels replace the numpy paths when built: ``_rate.pyx`` (``rate``/``increase``/
``delta``, ``irate``/``idelta``, ``deriv``/``predict_linear``) and ``_overtime.pyx`` (the simple
``*_over_time`` functions, ``changes``, ``resets``: ``over_time_native``), with the same answers
(tests/unit/query/promql/test_rate_native.py, test_overtime_native.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels, with_label
from clearsight.model.matchers import MatchType
from clearsight.query.promql import ast
from clearsight.query.promql.bare import OVER_TIME_OPS
from clearsight.query.promql.fn_common import (
    F64,
    I64,
    Flat,
    RaggedWindows,
    arg_matrix,
    arg_scalar,
    flatten,
    go_format_g,
    kahan_inc,
    metric_name_of,
    padded_windows,
    vector_result,
    window_index,
)
from clearsight.query.promql.values import (
    BoolArr,
    FuncContext,
    MatrixSteps,
    QueryError,
    Value,
    VectorSteps,
)

try:
    from clearsight.query.promql import _rate  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the extension is built by `pip install -e .`
    _rate = None
try:
    from clearsight.query.promql import _overtime  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the extension is built by `pip install -e .`
    _overtime = None


def has_compiled_kernels() -> bool:
    """Whether the compiled kernels (``_rate.pyx``) are built (the numpy fallbacks otherwise)."""
    return _rate is not None


ANCHORED_SAFE = ("changes", "delta", "increase", "rate", "resets")
SMOOTHED_SAFE = ("delta", "increase", "rate")

NON_COUNTER_INFO = (
    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name}"
)


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def invalid_quantile_warning(q: float) -> str:
    return f"PromQL warning: quantile value should be between 0 and 1, got {go_format_g(q)}"


def _check_modifiers(m: MatrixSteps, func: str) -> None:
    if m.anchored and func not in ANCHORED_SAFE:
        raise QueryError(f"anchored modifier can only be used with: {', '.join(ANCHORED_SAFE)} - not with {func}")
    if m.smoothed and func not in SMOOTHED_SAFE:
        raise QueryError(f"smoothed modifier can only be used with: {', '.join(SMOOTHED_SAFE)} - not with {func}")


def _go_f(x: float) -> str:
    """Go's ``%f``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:f}"


def _range_seconds(range_ms: int) -> float:
    """Go's ``time.Duration.Seconds()`` for a duration of ``range_ms`` milliseconds."""
    sec, rem = divmod(range_ms, 1000)
    return float(sec) + float(rem * 1_000_000) / 1e9


@dataclass
class _Win:
    """The windows of a MatrixSteps: flat samples, per (series, step) bounds, and the non-empty
    windows as 1-D arrays (``ok`` mask order)."""

    m: MatrixSteps
    flat: Flat
    lo: I64  # (n, k)
    hi: I64  # (n, k)
    ok: BoolArr  # (n, k): window has at least ``min_count`` samples
    w_lo: I64  # (W,)
    w_cnt: I64  # (W,)
    w_step: I64  # (W,) step index of each window

    @property
    def shape(self) -> tuple[int, int]:
        return (self.m.num_series, int(self.m.window_end.shape[0]))

    def fill(self, w_vals: F64, w_ok: BoolArr | None = None) -> tuple[F64, BoolArr]:
        """Scatters per-window results back to (n, k); ``w_ok`` masks windows without a result."""
        vals = np.full(self.shape, np.nan)
        present = self.ok.copy()
        vals[self.ok] = w_vals
        if w_ok is not None:
            present[self.ok] = w_ok
        return vals, present


def _windows(m: MatrixSteps, min_count: int = 1) -> _Win:
    flat = flatten(m)
    e = np.asarray(m.window_end, dtype=np.int64)
    lo = window_index(flat, e - int(m.range_ms))
    hi = window_index(flat, e)
    cnt = hi - lo
    ok = cnt >= min_count
    k = int(e.shape[0])
    steps = np.broadcast_to(np.arange(k, dtype=np.int64)[None, :], cnt.shape)
    return _Win(m, flat, lo, hi, ok, lo[ok], cnt[ok], steps[ok])


def _result(win: _Win, vals: F64, present: BoolArr, keep_name: bool = False) -> VectorSteps:
    """Output of a range function: every function but last/first_over_time drops the metric name
    (delayed: ``drop_name``). Subquery inputs arrive with their own name drops already applied
    by the engine."""
    drop = np.full(win.m.num_series, not keep_name)
    return vector_result(list(win.m.labels), vals, present, drop)


# ---------------------------------------------------------------------------------------------
# rate, increase, delta


def _counter_resets(flat: Flat) -> I64:
    """Ascending flat positions ``p`` (not a series start) with ``v[p] < v[p-1]``: compiled when
    built (``_rate.counter_resets``), else ``_counter_resets_numpy``."""
    if _rate is not None:
        return np.asarray(_rate.counter_resets(flat.v, flat.starts), dtype=np.int64)
    return _counter_resets_numpy(flat)


def _counter_resets_numpy(flat: Flat) -> I64:
    """``_counter_resets`` in numpy."""
    v = flat.v
    if flat.size < 2:
        return np.zeros(0, dtype=np.int64)
    dec = np.zeros(flat.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        np.less(v[1:], v[:-1], out=dec[1:])
    dec[flat.starts[flat.starts < flat.size]] = False
    return np.flatnonzero(dec).astype(np.int64)


def _reset_corrections(flat: Flat, first: I64, last: I64, acc: F64) -> F64:
    """Adds, in time order, the value before every counter reset in ``(first, last]`` to ``acc``
    (Prometheus adds them one by one after ``last - first``)."""
    v = flat.v
    pos = _counter_resets(flat)
    if pos.size == 0:
        return acc
    a = np.searchsorted(pos, first, side="right")
    b = np.searchsorted(pos, last, side="right")
    nres = (b - a).astype(np.int64)
    sel = np.flatnonzero(nres > 0)
    if sel.size == 0:
        return acc
    rw = RaggedWindows(a[sel].astype(np.int64), nres[sel])
    part = acc[sel][rw.order]
    for _p, na, idx in rw:
        part[:na] = part[:na] + v[pos[idx] - 1]
    acc = acc.copy()
    acc[sel] = rw.unsort(part)
    return acc


def _native_setup(m: MatrixSteps) -> tuple[Flat, I64, F64, npt.NDArray[np.uint8]] | None:
    """What a compiled kernel of ``_rate`` takes: the flat samples, the window ends and the output
    arrays (n x k); None when the kernel is not built or the window ends are not non-decreasing."""
    if _rate is None:
        return None
    e = np.ascontiguousarray(m.window_end, dtype=np.int64)
    if e.shape[0] > 1 and not _rate.nondecreasing(e):
        return None
    n, k = m.num_series, int(e.shape[0])
    return flatten(m), e, np.empty((n, k), dtype=np.float64), np.empty((n, k), dtype=np.uint8)


def _extrapolated_rate_native(m: MatrixSteps, is_counter: bool, is_rate: bool) -> VectorSteps | None:
    """The compiled kernel (``_rate.pyx``); None when it is not built or the window ends are not
    non-decreasing."""
    setup = _native_setup(m)
    if setup is None:
        return None
    flat, e, vals, present = setup
    n = m.num_series
    resets = _counter_resets(flat) if is_counter else np.zeros(0, dtype=np.int64)
    _rate.extrapolated_rate(
        np.ascontiguousarray(flat.t, dtype=np.int64),
        np.ascontiguousarray(flat.v, dtype=np.float64),
        flat.starts,
        flat.ends,
        e,
        int(m.range_ms),
        is_counter,
        is_rate,
        _range_seconds(int(m.range_ms)),
        resets,
        vals,
        present,
    )
    return vector_result(list(m.labels), vals, present.view(bool), np.ones(n, dtype=bool))


def _extrapolated_rate(ctx: FuncContext, args: list[Value], func: str, is_counter: bool, is_rate: bool) -> VectorSteps:
    m = arg_matrix(args, 0, func)
    _check_modifiers(m, func)
    if m.anchored or m.smoothed:
        out = _extended_rate(m, is_counter, is_rate)
    elif (native := _extrapolated_rate_native(m, is_counter, is_rate)) is not None:
        out = native
    else:
        win = _windows(m, min_count=2)
        t, v = win.flat.t, win.flat.v
        first = win.w_lo
        last = win.w_lo + win.w_cnt - 1
        e = np.asarray(m.window_end, dtype=np.int64)[win.w_step]
        range_start = e - int(m.range_ms)
        with np.errstate(all="ignore"):
            result = v[last] - v[first]
            if is_counter:
                result = _reset_corrections(win.flat, first, last, result)
            dur_start = (t[first] - range_start).astype(np.float64) / 1000
            dur_end = (e - t[last]).astype(np.float64) / 1000
            sampled = (t[last] - t[first]).astype(np.float64) / 1000
            avg_dur = sampled / (win.w_cnt - 1).astype(np.float64)
            threshold = avg_dur * 1.1
            dur_start = np.where(dur_start >= threshold, avg_dur / 2, dur_start)
            if is_counter:
                to_zero = np.where(
                    (result > 0) & (v[first] >= 0), sampled * (v[first] / result), dur_start
                )
                dur_start = np.where(to_zero < dur_start, to_zero, dur_start)
            dur_end = np.where(dur_end >= threshold, avg_dur / 2, dur_end)
            factor = np.where(sampled != 0, (sampled + dur_start + dur_end) / sampled, 1.0)
            if is_rate:
                factor = factor / _range_seconds(int(m.range_ms))
            result = result * factor
        vals, present = win.fill(result)
        out = _result(win, vals, present)
    if func in ("rate", "increase"):
        warn_non_counter(ctx, out)
    return out


def warn_non_counter(ctx: FuncContext, out: VectorSteps) -> None:
    """rate/increase's info annotation for metric names that do not look like counters."""
    names = {metric_name_of(lbls) for lbls in out.labels}
    for name in sorted(names):
        if name and not name.endswith(("_total", "_sum", "_count", "_bucket")):
            ctx.annotations.info(NON_COUNTER_INFO.format(name=_go_quote(name)))


def _extended_rate(m: MatrixSteps, is_counter: bool, is_rate: bool) -> VectorSteps:
    """rate/increase/delta over ``anchored`` or ``smoothed`` range selectors."""
    flat = flatten(m)
    t, v = flat.t, flat.v
    e_all = np.asarray(m.window_end, dtype=np.int64)
    rng = int(m.range_ms)
    lb = int(m.lookback_ms)
    smoothed = m.smoothed
    n, k = m.num_series, int(e_all.shape[0])
    ext_lo = window_index(flat, e_all - rng - lb)
    ext_hi = window_index(flat, e_all + (lb if smoothed else 0))
    gt_start = window_index(flat, e_all - rng)
    ge_end = window_index(flat, e_all, side_right=False) if smoothed else ext_hi
    nonempty = ext_hi > ext_lo
    steps = np.broadcast_to(np.arange(k, dtype=np.int64)[None, :], (n, k))[nonempty]
    e = e_all[steps]
    lo0 = ext_lo[nonempty]
    last = ext_hi[nonempty] - 1
    first = np.maximum(lo0, np.minimum(gt_start[nonempty], last) - 1)
    if smoothed:
        last = np.minimum(ge_end[nonempty], last)
    range_start = e - rng
    valid = t[last] > range_start
    if smoothed:
        valid &= t[first] <= e
    sel = np.flatnonzero(valid)
    first, last, lo0, e, range_start = first[sel], last[sel], lo0[sel], e[sel], range_start[sel]

    def interp(i1: I64, i2: I64, at: I64) -> F64:
        y1, y2 = v[i1], v[i2]
        if is_counter:
            y1 = np.where(y2 < y1, 0.0, y1)
        return y1 + (y2 - y1) * (at - t[i1]).astype(np.float64) / (t[i2] - t[i1]).astype(np.float64)

    with np.errstate(all="ignore"):
        left = v[first].copy()
        right = v[last].copy()
        if smoothed:
            li = np.flatnonzero(t[first] < range_start)
            left[li] = interp(first[li], first[li] + 1, range_start[li])
            ri = np.flatnonzero((last > lo0) & (t[last] > e))
            right[ri] = interp(last[ri] - 1, last[ri], e[ri])
        result = right - left
        if is_counter:
            # Resets between the boundary values: ``left`` -> samples in (rangeStart, rangeEnd)
            # -> ``right``, accumulated in time order as Prometheus' correctForCounterResets.
            f2 = first + (t[first] <= range_start)
            l2 = last - (t[last] >= e)
            inner = l2 >= f2
            f2c = np.where(inner, f2, first)
            l2c = np.where(inner, l2, first)
            first_inner = np.where(inner, v[f2c], right)
            corr = np.where(first_inner < left, left, 0.0)
            corr = np.where(inner, _reset_corrections(flat, f2c, l2c, corr), corr)
            last_inner = v[l2c]
            corr = corr + np.where(inner & (right < last_inner), last_inner, 0.0)
            result = result + corr
        if is_rate:
            result = result / _range_seconds(rng)
    vals = np.full((n, k), np.nan)
    present = np.zeros((n, k), dtype=bool)
    rows, cols = np.nonzero(nonempty)
    rows, cols = rows[sel], cols[sel]
    vals[rows, cols] = result
    present[rows, cols] = True
    drop = np.ones(n, dtype=bool)
    return vector_result(list(m.labels), vals, present, drop)


def fn_rate(ctx: FuncContext, args: list[Value]) -> Value:
    return _extrapolated_rate(ctx, args, "rate", True, True)


def fn_increase(ctx: FuncContext, args: list[Value]) -> Value:
    return _extrapolated_rate(ctx, args, "increase", True, False)


def fn_delta(ctx: FuncContext, args: list[Value]) -> Value:
    return _extrapolated_rate(ctx, args, "delta", False, False)


# ---------------------------------------------------------------------------------------------
# irate, idelta


def _instant_value_native(m: MatrixSteps, is_rate: bool) -> VectorSteps | None:
    """The compiled kernel (``_rate.instant_value``); None when it is not built or the window ends
    are not non-decreasing."""
    setup = _native_setup(m)
    if setup is None:
        return None
    flat, e, vals, present = setup
    n = m.num_series
    _rate.instant_value(np.ascontiguousarray(flat.t, dtype=np.int64), np.ascontiguousarray(flat.v, dtype=np.float64),
                        flat.starts, flat.ends, e, int(m.range_ms), is_rate, vals, present)
    return vector_result(list(m.labels), vals, present.view(bool), np.ones(n, dtype=bool))


def _instant_value(args: list[Value], func: str, is_rate: bool) -> VectorSteps:
    m = arg_matrix(args, 0, func)
    _check_modifiers(m, func)
    if (native := _instant_value_native(m, is_rate)) is not None:
        return native
    win = _windows(m, min_count=2)
    t, v = win.flat.t, win.flat.v
    last = win.w_lo + win.w_cnt - 1
    prev = last - 1
    cur, pv = v[last], v[prev]
    dt = t[last] - t[prev]
    with np.errstate(all="ignore"):
        if is_rate:
            res = np.where(cur < pv, cur, cur - pv) / (dt.astype(np.float64) / 1000)
        else:
            res = cur - pv
    vals, present = win.fill(res, dt != 0)
    return _result(win, vals, present)


def fn_irate(ctx: FuncContext, args: list[Value]) -> Value:
    return _instant_value(args, "irate", True)


def fn_idelta(ctx: FuncContext, args: list[Value]) -> Value:
    return _instant_value(args, "idelta", False)


# ---------------------------------------------------------------------------------------------
# changes, resets


def _count_transitions(args: list[Value], func: str, indicator: Callable[[F64, F64], BoolArr]) -> VectorSteps:
    if (native := over_time_native(args, func)) is not None:
        return native
    m = arg_matrix(args, 0, func)
    _check_modifiers(m, func)
    win = _windows(m, min_count=1)
    flat = win.flat
    size = flat.size
    ind = np.zeros(size, dtype=np.int64)
    if size > 1:
        with np.errstate(invalid="ignore"):
            ind[1:] = indicator(flat.v[1:], flat.v[:-1])
        ind[flat.starts[flat.starts < size]] = 0
    csum = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(ind, out=csum[1:])
    first = win.w_lo
    if m.anchored:
        e = np.asarray(m.window_end, dtype=np.int64)
        lb_lo = window_index(flat, e - int(m.range_ms) - int(m.lookback_ms))[win.ok]
        first = np.where(first - 1 >= lb_lo, first - 1, first)
    end = win.w_lo + win.w_cnt
    res = (csum[end] - csum[first + 1]).astype(np.float64)
    vals, present = win.fill(res)
    return _result(win, vals, present)


def fn_changes(ctx: FuncContext, args: list[Value]) -> Value:
    return _count_transitions(
        args, "changes", lambda cur, prev: (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
    )


def fn_resets(ctx: FuncContext, args: list[Value]) -> Value:
    return _count_transitions(args, "resets", lambda cur, prev: cur < prev)


# ---------------------------------------------------------------------------------------------
# *_over_time


def _simple_over_time(args: list[Value], func: str) -> _Win:
    m = arg_matrix(args, 0, func)
    _check_modifiers(m, func)
    return _windows(m, min_count=1)


# The functions the compiled ``_overtime.over_time`` computes: name -> (op, keeps the metric name).
_OVER_TIME_OPS = OVER_TIME_OPS


def over_time_native(args: list[Value], func: str) -> VectorSteps | None:
    """``func`` by the compiled kernel (``_overtime.pyx``): each window found by binary search on
    its series' timestamps and reduced in C, without the ``_Win`` machinery (a small query's
    instant step costs a few numpy calls instead of tens). None, for the numpy path, when the
    kernel is not built, the selector is ``anchored`` (``changes``/``resets``) or the samples
    include native histograms."""
    m = arg_matrix(args, 0, func)
    _check_modifiers(m, func)
    if _overtime is None or m.anchored or m.hists is not None:
        return None
    op, keep_name = _OVER_TIME_OPS[func]
    flat = flatten(m)
    return over_time_columns(op, keep_name, list(m.labels), flat.t, flat.v, flat.starts, flat.ends,
                             np.asarray(m.window_end, dtype=np.int64), int(m.range_ms))


def over_time_columns(op: str, keep_name: bool, labels: list[Labels], t: I64, v: F64, starts: I64, ends: I64,
                      e: I64, range_ms: int) -> VectorSteps:
    """The compiled ``*_over_time`` operation ``op`` (``_OVER_TIME_OPS``) over float series without
    stale markers, ``t[starts[i]:ends[i]]``/``v[...]`` for series ``labels[i]``, at the window ends
    ``e`` (windows ``(e - range_ms, e]``); the series' metric names flagged to drop unless
    ``keep_name``. Series without a value at any step are left out."""
    n, k = len(labels), int(e.shape[0])
    vals = np.empty((n, k), dtype=np.float64)
    present = np.empty((n, k), dtype=np.uint8)
    filled = _overtime.over_time(getattr(_overtime, op), np.ascontiguousarray(t, dtype=np.int64),
                                 np.ascontiguousarray(v, dtype=np.float64), starts, ends, e,
                                 range_ms, _CONDITION_LIMIT, vals, present)
    drop = np.zeros(n, dtype=bool) if keep_name else np.ones(n, dtype=bool)
    if n and k and filled == n * k:  # a value in every window: nothing for vector_result to drop
        return VectorSteps(labels, vals, present.view(bool), drop)
    return vector_result(labels, vals, present.view(bool), drop)


def fn_count_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "count_over_time")) is not None:
        return native
    win = _simple_over_time(args, "count_over_time")
    vals, present = win.fill(win.w_cnt.astype(np.float64))
    return _result(win, vals, present)


def fn_present_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "present_over_time")) is not None:
        return native
    win = _simple_over_time(args, "present_over_time")
    vals, present = win.fill(np.ones(win.w_cnt.shape[0]))
    return _result(win, vals, present)


def fn_last_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "last_over_time")) is not None:
        return native
    win = _simple_over_time(args, "last_over_time")
    vals, present = win.fill(win.flat.v[win.w_lo + win.w_cnt - 1])
    return _result(win, vals, present, keep_name=True)


def fn_first_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "first_over_time")) is not None:
        return native
    win = _simple_over_time(args, "first_over_time")
    vals, present = win.fill(win.flat.v[win.w_lo])
    return _result(win, vals, present, keep_name=True)


def fn_ts_of_last_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "ts_of_last_over_time")) is not None:
        return native
    win = _simple_over_time(args, "ts_of_last_over_time")
    vals, present = win.fill(win.flat.t[win.w_lo + win.w_cnt - 1].astype(np.float64) / 1000)
    return _result(win, vals, present)


def fn_ts_of_first_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "ts_of_first_over_time")) is not None:
        return native
    win = _simple_over_time(args, "ts_of_first_over_time")
    vals, present = win.fill(win.flat.t[win.w_lo].astype(np.float64) / 1000)
    return _result(win, vals, present)


def _reduceat(ufunc: np.ufunc, win: _Win) -> F64:
    if win.w_lo.shape[0] == 0:
        return np.zeros(0)
    vext = np.append(win.flat.v, np.nan)
    idx = np.column_stack([win.w_lo, win.w_lo + win.w_cnt]).ravel()
    res: F64 = ufunc.reduceat(vext, idx)[::2]
    return res


def fn_max_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "max_over_time")) is not None:
        return native
    win = _simple_over_time(args, "max_over_time")
    vals, present = win.fill(_reduceat(np.fmax, win))
    return _result(win, vals, present)


def fn_min_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "min_over_time")) is not None:
        return native
    win = _simple_over_time(args, "min_over_time")
    vals, present = win.fill(_reduceat(np.fmin, win))
    return _result(win, vals, present)


def _ts_of_extreme(args: list[Value], func: str, use_max: bool) -> VectorSteps:
    if (native := over_time_native(args, func)) is not None:
        return native
    win = _simple_over_time(args, func)
    res = np.empty(win.w_lo.shape[0])
    t = win.flat.t
    for rows, x in padded_windows(win.flat.v, win.w_lo, win.w_cnt):
        ext = np.fmax.reduce(x, axis=1) if use_max else np.fmin.reduce(x, axis=1)
        width = x.shape[1]
        hit = x == ext[:, None]
        last_hit = width - 1 - np.argmax(hit[:, ::-1], axis=1)
        cnt = win.w_cnt[rows]
        pos = np.where(np.isnan(ext), cnt - 1, last_hit)
        res[rows] = t[win.w_lo[rows] + pos].astype(np.float64) / 1000
    vals, present = win.fill(res)
    return _result(win, vals, present)


def fn_ts_of_max_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    return _ts_of_extreme(args, "ts_of_max_over_time", True)


def fn_ts_of_min_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    return _ts_of_extreme(args, "ts_of_min_over_time", False)


def _kahan_window_sum(v: F64, lo: I64, cnt: I64) -> F64:
    """Prometheus' sum_over_time, replayed: Neumaier-compensated, in time order."""
    rw = RaggedWindows(lo, cnt)
    s = np.zeros(rw.size)
    c = np.zeros(rw.size)
    for _p, a, idx in rw:
        s[:a], c[:a] = kahan_inc(v[idx], s[:a], c[:a])
    with np.errstate(invalid="ignore"):
        res = np.where(np.isinf(s), s, s + c)
    out: F64 = rw.unsort(res)
    return out


# A plain sequential sum of n terms is off by at most (n-1)·eps·Σ|x|. Windows where that bound is
# below 1e-9·|Σx| take the fast path (exact for integer data below 2**53, as Prometheus'
# compensated sum is); the rest are replayed exactly as Prometheus computes them.
_CONDITION_LIMIT = 1e-9 / np.finfo(np.float64).eps


def plain_window_sums(v: F64, lo: I64, cnt: I64) -> tuple[F64, BoolArr]:
    """Window sums by ``np.add.reduceat`` and a mask of the windows where that plain sum is
    known to agree with Prometheus' compensated sum (finite and well conditioned)."""
    w = int(lo.shape[0])
    if w == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    idx = np.column_stack([lo, lo + cnt]).ravel()
    with np.errstate(all="ignore"):
        vext = np.append(v, 0.0)
        sums = np.add.reduceat(vext, idx)[::2]
        abs_sums = np.add.reduceat(np.abs(vext), idx)[::2]
        good = np.isfinite(abs_sums) & (abs_sums * cnt <= _CONDITION_LIMIT * np.abs(sums))
        good |= abs_sums == 0
    return sums, good


def window_sum(v: F64, lo: I64, cnt: I64) -> F64:
    """Prometheus' sum_over_time over windows ``[lo, lo+cnt)``."""
    sums, good = plain_window_sums(v, lo, cnt)
    if not good.all():
        bad = np.flatnonzero(~good)
        sums[bad] = _kahan_window_sum(v, lo[bad], cnt[bad])
    return sums


def window_avg(v: F64, lo: I64, cnt: I64) -> F64:
    """Prometheus' avg_over_time (see ``window_sum`` for the fast path)."""
    sums, good = plain_window_sums(v, lo, cnt)
    out = sums / np.maximum(cnt, 1).astype(np.float64)
    if not good.all():
        bad = np.flatnonzero(~good)
        out[bad] = _replay_window_avg(v, lo[bad], cnt[bad])
    return out


def _replay_window_avg(v: F64, lo: I64, cnt: I64) -> F64:
    """Prometheus' avg_over_time, replayed: compensated sum divided by count, switching to an
    incremental mean for windows whose sum overflows."""
    rw = RaggedWindows(lo, cnt)
    w = rw.size
    s = np.zeros(w)
    c = np.zeros(w)
    mean = np.zeros(w)
    incr = np.zeros(w, dtype=bool)
    with np.errstate(all="ignore"):
        for p, a, idx in rw:
            f = v[idx]
            if p == 0:
                s[:a] = f
                continue
            count = float(p + 1)
            sa, ca, ma, ia = s[:a], c[:a], mean[:a], incr[:a]
            new_s, new_c = kahan_inc(f, sa, ca)
            still = ~ia & ~np.isinf(new_s)
            sa[still] = new_s[still]
            ca[still] = new_c[still]
            switch = ~ia & np.isinf(new_s)
            if switch.any():
                ia[switch] = True
                ma[switch] = sa[switch] / (count - 1)
                ca[switch] = ca[switch] / (count - 1)
            if ia.any():
                q = (count - 1) / count
                nm, nc = kahan_inc(f[ia] / count, q * ma[ia], q * ca[ia])
                ma[ia] = nm
                ca[ia] = nc
        counts = rw.cnt.astype(np.float64)
        res = np.where(incr, mean + c, s / counts + c / counts)
    out: F64 = rw.unsort(res)
    return out


def fn_sum_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "sum_over_time")) is not None:
        return native
    win = _simple_over_time(args, "sum_over_time")
    vals, present = win.fill(window_sum(win.flat.v, win.w_lo, win.w_cnt))
    return _result(win, vals, present)


def fn_avg_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    if (native := over_time_native(args, "avg_over_time")) is not None:
        return native
    win = _simple_over_time(args, "avg_over_time")
    vals, present = win.fill(window_avg(win.flat.v, win.w_lo, win.w_cnt))
    return _result(win, vals, present)


def _variance(win: _Win) -> F64:
    return _variance_replay(win) if _use_replay(win) else _variance_padded(win)


def _variance_padded(win: _Win) -> F64:
    """Two-pass population variance over whole windows (see REPLAY_MAX_WINDOW).
    Constant windows are exactly 0, as with Prometheus' running algorithm."""
    res = np.empty(win.w_lo.shape[0])
    for rows, x in padded_windows(win.flat.v, win.w_lo, win.w_cnt):
        cnt = win.w_cnt[rows]
        valid = np.arange(x.shape[1])[None, :] < cnt[:, None]
        n = cnt.astype(np.float64)
        with np.errstate(all="ignore"):
            mean = np.where(valid, x, 0.0).sum(axis=1) / n
            dev = np.where(valid, x - mean[:, None], 0.0)
            var = (dev * dev).sum(axis=1) / n
            const = np.all(~valid | (x == x[:, :1]), axis=1)
        res[rows] = np.where(const, 0.0, var)
    return res


def _variance_replay(win: _Win) -> F64:
    rw = RaggedWindows(win.w_lo, win.w_cnt)
    w = rw.size
    mean = np.zeros(w)
    c_mean = np.zeros(w)
    aux = np.zeros(w)
    c_aux = np.zeros(w)
    v = win.flat.v
    with np.errstate(all="ignore"):
        for p, a, idx in rw:
            f = v[idx]
            count = float(p + 1)
            delta = f - (mean[:a] + c_mean[:a])
            mean[:a], c_mean[:a] = kahan_inc(delta / count, mean[:a], c_mean[:a])
            aux[:a], c_aux[:a] = kahan_inc(delta * (f - (mean[:a] + c_mean[:a])), aux[:a], c_aux[:a])
        res = (aux + c_aux) / rw.cnt.astype(np.float64)
    out: F64 = rw.unsort(res)
    return out


def fn_stdvar_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    win = _simple_over_time(args, "stdvar_over_time")
    vals, present = win.fill(_variance(win))
    return _result(win, vals, present)


def fn_stddev_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    win = _simple_over_time(args, "stddev_over_time")
    with np.errstate(invalid="ignore"):
        vals, present = win.fill(np.sqrt(_variance(win)))
    return _result(win, vals, present)


def sorted_quantile(xs: F64, nan_count: I64, cnt: I64, q: F64) -> F64:
    """Prometheus' ``quantile`` over rows of ``xs``, where each row holds its window's non-NaN
    values sorted ascending first (NaNs and padding after). Prometheus sorts NaNs *first*, so
    position ``p`` of its sorted order is NaN for ``p < nan_count`` and ``xs[p - nan_count]``
    otherwise. ``q`` is per row."""
    w = xs.shape[0]
    res = np.full(w, np.nan)
    if w == 0:
        return res
    with np.errstate(invalid="ignore"):
        n = cnt.astype(np.float64)
        rank = q * (n - 1)
        fr = np.floor(rank)
        lower = np.maximum(0.0, fr)
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - fr
        finite_q = ~np.isnan(q) & (q >= 0) & (q <= 1) & (cnt > 0)
        li = np.where(finite_q, lower, 0).astype(np.int64)
        ui = np.where(finite_q, upper, 0).astype(np.int64)
        rows = np.arange(w)

        def at(pos: I64) -> F64:
            src = np.clip(pos - nan_count, 0, xs.shape[1] - 1)
            got = xs[rows, src]
            return np.where(pos < nan_count, np.nan, got)

        val = at(li) * (1 - weight) + at(ui) * weight
        res = np.where(finite_q, val, res)
        res = np.where(q < 0, -np.inf, res)
        res = np.where(q > 1, np.inf, res)
    return res


def fn_quantile_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    m = arg_matrix(args, 1, "quantile_over_time")
    _check_modifiers(m, "quantile_over_time")
    k = int(m.window_end.shape[0])
    qs = arg_scalar(args, 0, "quantile_over_time", k)
    win = _windows(m)
    w_q = qs[win.w_step]
    res = np.empty(win.w_lo.shape[0])
    for rows, x in padded_windows(win.flat.v, win.w_lo, win.w_cnt):
        nan_count = (np.isnan(x).sum(axis=1) - (x.shape[1] - win.w_cnt[rows])).astype(np.int64)
        xs = np.sort(x, axis=1)
        res[rows] = sorted_quantile(xs, nan_count, win.w_cnt[rows], w_q[rows])
    bad = w_q[~((w_q >= 0) & (w_q <= 1))]
    for msg in sorted({invalid_quantile_warning(float(q)) for q in bad}):
        ctx.annotations.warn(msg)
    vals, present = win.fill(res)
    return _result(win, vals, present)


def fn_mad_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    win = _simple_over_time(args, "mad_over_time")
    res = np.empty(win.w_lo.shape[0])
    for rows, x in padded_windows(win.flat.v, win.w_lo, win.w_cnt):
        cnt = win.w_cnt[rows]
        width = x.shape[1]
        has_nan = (np.isnan(x).sum(axis=1) - (width - cnt)) > 0
        zero = np.zeros(cnt.shape[0], dtype=np.int64)
        half = np.full(cnt.shape[0], 0.5)
        xs = np.sort(x, axis=1)
        med = sorted_quantile(xs, zero, cnt, half)
        with np.errstate(invalid="ignore"):
            dev = np.abs(x - med[:, None])
        ds = np.sort(dev, axis=1)
        mad = sorted_quantile(ds, zero, cnt, half)
        res[rows] = np.where(has_nan, np.nan, mad)
    vals, present = win.fill(res)
    return _result(win, vals, present)


# ---------------------------------------------------------------------------------------------
# deriv, predict_linear, double_exponential_smoothing


# Sequential algorithms (compensated running sums in deriv/predict_linear, Welford variance) are
# replayed position by position, bit for bit as Prometheus computes them, when that is cheap:
# windows up to REPLAY_MAX_WINDOW samples and at most REPLAY_MAX_WORK window-positions in all.
# Beyond that (``[6h]`` windows, long range queries) whole-window pairwise sums are used, which
# agree with the replay to ~1e-12 relative on well-conditioned data (tested) at a fraction of
# the numpy passes.
REPLAY_MAX_WINDOW = 64
REPLAY_MAX_WORK = 1 << 20


def _use_replay(win: _Win) -> bool:
    if win.w_cnt.shape[0] == 0:
        return True
    longest = int(win.w_cnt.max())
    return longest <= REPLAY_MAX_WINDOW and longest * int(win.w_cnt.shape[0]) <= REPLAY_MAX_WORK


def _linear_regression(win: _Win, intercept_ms: I64) -> tuple[F64, F64]:
    """Slope and intercept per window (windows with at least two samples), as Prometheus'
    ``linearRegression`` with x in seconds relative to ``intercept_ms``."""
    if _rate is not None:
        w = int(win.w_lo.shape[0])
        slope, intercept = np.empty(w), np.empty(w)
        _rate.linear_regression(
            np.ascontiguousarray(win.flat.t, dtype=np.int64),
            np.ascontiguousarray(win.flat.v, dtype=np.float64),
            np.ascontiguousarray(win.w_lo, dtype=np.int64),
            np.ascontiguousarray(win.w_cnt, dtype=np.int64),
            np.ascontiguousarray(intercept_ms, dtype=np.int64),
            slope,
            intercept,
        )
        return slope, intercept
    if _use_replay(win):
        return _linear_regression_replay(win, intercept_ms)
    return _linear_regression_padded(win, intercept_ms)


def _regression_result(
    n: F64, sx: F64, sy: F64, sxy: F64, sx2: F64, const_y: BoolArr, init_y: F64
) -> tuple[F64, F64]:
    with np.errstate(all="ignore"):
        cov_xy = sxy - sx * sy / n
        var_x = sx2 - sx * sx / n
        slope = cov_xy / var_x
        intercept = sy / n - slope * sx / n
        inf_y = np.isinf(init_y)
        slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
        intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
    return slope, intercept


def _linear_regression_padded(win: _Win, intercept_ms: I64) -> tuple[F64, F64]:
    w = int(win.w_lo.shape[0])
    slope = np.empty(w)
    intercept = np.empty(w)
    last = win.flat.size - 1
    for rows, y in padded_windows(win.flat.v, win.w_lo, win.w_cnt):
        cnt = win.w_cnt[rows]
        width = y.shape[1]
        valid = np.arange(width)[None, :] < cnt[:, None]
        idx = np.minimum(win.w_lo[rows, None] + np.arange(width)[None, :], last)
        with np.errstate(all="ignore"):
            # int64 difference first, as Prometheus, then seconds
            x = (win.flat.t[idx] - intercept_ms[rows, None]).astype(np.float64) / 1e3
            x = np.where(valid, x, 0.0)
            yz = np.where(valid, y, 0.0)
            init_y = y[:, 0]
            const_y = np.all(~valid | (y == init_y[:, None]), axis=1)
            res = _regression_result(
                cnt.astype(np.float64),
                x.sum(axis=1),
                yz.sum(axis=1),
                (x * yz).sum(axis=1),
                (x * x).sum(axis=1),
                const_y,
                init_y,
            )
        slope[rows], intercept[rows] = res
    return slope, intercept


def _linear_regression_replay(win: _Win, intercept_ms: I64) -> tuple[F64, F64]:
    rw = RaggedWindows(win.w_lo, win.w_cnt)
    w = rw.size
    t, v = win.flat.t, win.flat.v
    icpt = intercept_ms[rw.order]
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (np.zeros(w) for _ in range(8))
    init_y = v[rw.lo] if w else np.zeros(0)
    const_y = np.ones(w, dtype=bool)
    with np.errstate(all="ignore"):
        for p, a, idx in rw:
            f = v[idx]
            if p > 0:
                const_y[:a] &= ~(f != init_y[:a])
            x = (t[idx] - icpt[:a]).astype(np.float64) / 1e3
            sx[:a], cx[:a] = kahan_inc(x, sx[:a], cx[:a])
            sy[:a], cy[:a] = kahan_inc(f, sy[:a], cy[:a])
            sxy[:a], cxy[:a] = kahan_inc(x * f, sxy[:a], cxy[:a])
            sx2[:a], cx2[:a] = kahan_inc(x * x, sx2[:a], cx2[:a])
    slope, intercept = _regression_result(
        rw.cnt.astype(np.float64), sx + cx, sy + cy, sxy + cxy, sx2 + cx2, const_y, init_y
    )
    return rw.unsort(slope), rw.unsort(intercept)


def fn_deriv(ctx: FuncContext, args: list[Value]) -> Value:
    m = arg_matrix(args, 0, "deriv")
    _check_modifiers(m, "deriv")
    win = _windows(m, min_count=2)
    slope, _ = _linear_regression(win, win.flat.t[win.w_lo])
    vals, present = win.fill(slope)
    return _result(win, vals, present)


def fn_predict_linear(ctx: FuncContext, args: list[Value]) -> Value:
    m = arg_matrix(args, 0, "predict_linear")
    _check_modifiers(m, "predict_linear")
    k = int(m.window_end.shape[0])
    dur = arg_scalar(args, 1, "predict_linear", k)
    win = _windows(m, min_count=2)
    step_times = np.asarray(ctx.step_times, dtype=np.int64)
    slope, intercept = _linear_regression(win, step_times[win.w_step])
    with np.errstate(all="ignore"):
        res = slope * dur[win.w_step] + intercept
    vals, present = win.fill(res)
    return _result(win, vals, present)


def fn_double_exponential_smoothing(ctx: FuncContext, args: list[Value]) -> Value:
    func = "double_exponential_smoothing"
    m = arg_matrix(args, 0, func)
    _check_modifiers(m, func)
    k = int(m.window_end.shape[0])
    sf_all = arg_scalar(args, 1, func, k)
    tf_all = arg_scalar(args, 2, func, k)
    any_win = _windows(m, min_count=1)
    used = np.zeros(k, dtype=bool)
    used[any_win.w_step] = True
    for j in np.flatnonzero(used):
        sfj, tfj = float(sf_all[j]), float(tf_all[j])
        if not (0 < sfj < 1):
            raise QueryError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {_go_f(sfj)}")
        if not (0 < tfj < 1):
            raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {_go_f(tfj)}")
    win = _windows(m, min_count=2)
    rw = RaggedWindows(win.w_lo, win.w_cnt)
    v = win.flat.v
    sf = sf_all[win.w_step][rw.order]
    tf = tf_all[win.w_step][rw.order]
    w = rw.size
    s0 = np.zeros(w)
    s1 = v[rw.lo].copy() if w else np.zeros(0)
    with np.errstate(all="ignore"):
        b = (v[rw.lo + 1] - v[rw.lo]) if w else np.zeros(0)
        for p, a, idx in rw:
            if p == 0:
                continue
            x = sf[:a] * v[idx]
            if p > 1:
                b[:a] = tf[:a] * (s1[:a] - s0[:a]) + (1 - tf[:a]) * b[:a]
            y = (1 - sf[:a]) * (s1[:a] + b[:a])
            s0[:a] = s1[:a]
            s1[:a] = x + y
    vals, present = win.fill(rw.unsort(s1))
    return _result(win, vals, present)


# ---------------------------------------------------------------------------------------------
# absent_over_time


def absent_labels(expr: ast.Expr | None) -> Labels:
    """Labels of absent()/absent_over_time() output: the equality matchers of a selector."""
    while isinstance(expr, ast.StepInvariantExpr):
        expr = expr.expr
    if isinstance(expr, ast.MatrixSelector):
        matchers = expr.vector.matchers
    elif isinstance(expr, ast.VectorSelector):
        matchers = expr.matchers
    else:
        return ()
    lbls: Labels = ()
    has: set[str] = set()
    for mt in matchers:
        if mt.name == "__name__":
            continue
        if mt.type is MatchType.EQ and mt.name not in has:
            lbls = with_label(lbls, mt.name, mt.value)
            has.add(mt.name)
        else:
            lbls = with_label(lbls, mt.name, "")
    return lbls


def fn_absent_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    m = arg_matrix(args, 0, "absent_over_time")
    _check_modifiers(m, "absent_over_time")
    k = int(m.window_end.shape[0])
    win = _windows(m)
    any_present: BoolArr = np.asarray(win.ok.any(axis=0) if m.num_series else np.zeros(k), dtype=bool)
    if any_present.all():
        return VectorSteps.empty(k)
    expr = ctx.arg_exprs[0] if ctx.arg_exprs else None
    present = ~any_present[None, :]
    return VectorSteps([absent_labels(expr)], np.where(present, 1.0, np.nan), present, np.ones(1, dtype=bool))
