"""PromQL functions over native histogram samples (Prometheus 3 semantics, ``promql/functions.go``).

``HIST_FUNCTIONS`` maps a function name to ``impl(ctx, args, float_impl)``; the engine calls it
instead of the float implementation when an argument carries histogram samples. Each wrapper
runs the float implementation on the arguments without histograms for the float part and adds
the histogram part (or the annotations Prometheus emits when a window mixes both kinds).
Functions not listed here never see histograms: the engine strips them (``nh_common``), except
those in ``PASS_THROUGH``, whose float implementation treats every sample alike (counting or
timestamps) and sees histogram samples as NaN floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from clearsight.model.histogram import CounterResetHint, FloatHistogram, HistogramError, KahanHistogramSum
from clearsight.model.histogram import IncompatibleSchemaError as _Incompatible
from clearsight.model.histogram_math import (
    HistInfo,
    histogram_avg,
    histogram_count,
    histogram_fraction,
    histogram_quantile,
    histogram_stddev,
    histogram_stdvar,
    histogram_sum,
)
from clearsight.model.labels import Labels
from clearsight.query.promql import nh_common as nc
from clearsight.query.promql.fn_common import format_openmetrics_float
from clearsight.query.promql.nh_aggregations import histogram_mean
from clearsight.query.promql.values import (
    FuncContext,
    FunctionImpl,
    MatrixSteps,
    ObjArr,
    QueryError,
    ScalarSteps,
    Value,
    VectorSteps,
)
from clearsight.query.promql.vecutil import floats_only, go_quote, stack

HistImpl = Callable[[FuncContext, list[Value], FunctionImpl | None], Value]

# Functions whose float implementation handles histogram samples correctly as they are.
PASS_THROUGH = frozenset({
    "count_over_time", "present_over_time", "absent_over_time", "absent", "ts_of_last_over_time",
    "ts_of_first_over_time", "timestamp", "start_timestamp",
})


def _stripped(args: list[Value]) -> list[Value]:
    return [nc.floats_only_value(a) for a in args]


def _call_float(impl: FunctionImpl | None, ctx: FuncContext, args: list[Value]) -> Value | None:
    if impl is None:
        return None
    return impl(ctx, _stripped(args))


def _k(ctx: FuncContext) -> int:
    return int(ctx.step_times.shape[0])


def _matrix(args: list[Value], i: int, func: str) -> MatrixSteps:
    a = args[i]
    if not isinstance(a, MatrixSteps):
        raise QueryError(f"expected range vector argument for {func}")
    return a


def _vector(args: list[Value], i: int, func: str) -> VectorSteps:
    a = args[i]
    if not isinstance(a, VectorSteps):
        raise QueryError(f"expected instant vector argument for {func}")
    return a


# ------------------------------------------------------------------------------ histogram_* funcs


def _simple(f: Callable[[FloatHistogram], float]) -> HistImpl:
    def impl(ctx: FuncContext, args: list[Value], _float_impl: FunctionImpl | None) -> Value:
        v = _vector(args, 0, "histogram function")
        if v.hist is None:
            return VectorSteps.empty(_k(ctx))
        out = nc.Out.new(v.labels, _k(ctx))
        for i, j in zip(*np.nonzero(v.hist_mask()), strict=True):
            with np.errstate(all="ignore"):
                out.set_float(int(i), int(j), f(_hist(v)[i, j]))
        return out.result(drop_name=True)

    return impl


def _hist(v: VectorSteps) -> ObjArr:
    if v.hist is None:
        return np.full(v.present.shape, None, dtype=object)
    return v.hist


def _scalar_at(args: list[Value], i: int, k: int) -> np.ndarray:
    a = args[i]
    if isinstance(a, ScalarSteps):
        return a.values
    raise QueryError("expected scalar argument")


def _native_quantile(ctx: FuncContext, v: VectorSteps, q: np.ndarray) -> VectorSteps:
    out = nc.Out.new(v.labels, _k(ctx))
    for i, j in zip(*np.nonzero(v.hist_mask()), strict=True):
        i, j = int(i), int(j)
        val, info = histogram_quantile(float(q[j]), _hist(v)[i, j])
        _quantile_infos(ctx, info, v.labels[i])
        out.set_float(i, j, val)
    return out.result(drop_name=True)


def _quantile_infos(ctx: FuncContext, info: HistInfo, labels: Labels) -> None:
    name = nc.metric_name(labels)
    if info & HistInfo.QUANTILE_NAN_RESULT:
        ctx.annotations.info(nc.quantile_nan_result(name))
    if info & HistInfo.QUANTILE_NAN_SKEW:
        ctx.annotations.info(nc.quantile_nan_skew(name))
    if info & HistInfo.FRACTION_NANS:
        ctx.annotations.info(nc.fraction_nans(name))


def _combine(classic: Value | None, native: VectorSteps, k: int) -> VectorSteps:
    parts = [native]
    if isinstance(classic, VectorSteps):
        parts.insert(0, classic)
    return stack(parts, k)


def _without_conflicts(ctx: FuncContext, args: list[Value], i: int) -> list[Value]:
    """Drops, per step, native histograms that share their label set with a classic histogram
    (its ``le`` buckets) at that step, together with those buckets, warning about the mix."""
    v = args[i]
    if not isinstance(v, VectorSteps) or v.hist is None:
        return args
    hm = v.hist_mask()
    fm = v.present & ~hm
    classic: dict[Labels, list[int]] = {}
    for r, lbl in enumerate(v.labels):
        d = dict(lbl)
        le = d.pop("le", None)
        if le is None:
            continue
        try:
            float(le.replace("Inf", "inf"))
        except ValueError:
            continue
        classic.setdefault(tuple(sorted(d.items())), []).append(r)
    if not classic:
        return args
    present = v.present.copy()
    changed = False
    for r, lbl in enumerate(v.labels):
        rows = classic.get(lbl)
        if rows is None or not hm[r].any():
            continue
        clash = hm[r] & fm[rows].any(axis=0)
        if clash.any():
            ctx.annotations.warn(f"{nc.W}vector contains a mix of classic and native histograms for metric name "
                                 f"{go_quote(nc.metric_name(lbl))}")
            present[r, clash] = False
            for cr in rows:
                present[cr, clash] = False
            changed = True
    if not changed:
        return args
    hist = v.hist.copy()
    hist[~present] = None
    out = list(args)
    out[i] = VectorSteps(v.labels, v.values, present, v.drop_name, v.sample_ts, hist)
    return out


def hist_quantile(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
    k = _k(ctx)
    args = _without_conflicts(ctx, args, 1)
    classic = _call_float(float_impl, ctx, args)
    v = _vector(args, 1, "histogram_quantile")
    return _combine(classic, _native_quantile(ctx, v, _scalar_at(args, 0, k)), k)


def hist_fraction(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
    k = _k(ctx)
    args = _without_conflicts(ctx, args, 2)
    classic = _call_float(float_impl, ctx, args)
    v = _vector(args, 2, "histogram_fraction")
    lo = _scalar_at(args, 0, k)
    hi = _scalar_at(args, 1, k)
    out = nc.Out.new(v.labels, k)
    for i, j in zip(*np.nonzero(v.hist_mask()), strict=True):
        i, j = int(i), int(j)
        val, info = histogram_fraction(float(lo[j]), float(hi[j]), _hist(v)[i, j])
        _quantile_infos(ctx, info, v.labels[i])
        out.set_float(i, j, val)
    return _combine(classic, out.result(drop_name=True), k)


def hist_quantiles(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
    k = _k(ctx)
    args = _without_conflicts(ctx, args, 0)
    classic = _call_float(float_impl, ctx, args)
    v = _vector(args, 0, "histogram_quantiles")
    label = args[1]
    if not isinstance(label, str):
        raise QueryError("expected string argument for histogram_quantiles")
    parts: list[VectorSteps] = []
    hm = v.hist_mask()
    for a in args[2:]:
        if not isinstance(a, ScalarSteps):
            raise QueryError("expected scalar argument for histogram_quantiles")
        q = a.values
        by_text: dict[str, nc.Out] = {}
        for i, j in zip(*np.nonzero(hm), strict=True):
            i, j = int(i), int(j)
            qt = format_openmetrics_float(float(q[j]))
            out = by_text.get(qt)
            if out is None:
                out = by_text[qt] = nc.Out.new(
                    [tuple(sorted([p for p in x if p[0] != label] + [(label, qt)])) for x in v.labels], k)
            val, info = histogram_quantile(float(q[j]), _hist(v)[i, j])
            _quantile_infos(ctx, info, v.labels[i])
            out.set_float(i, j, val)
        parts.extend(o.result(drop_name=True) for o in by_text.values())
    return _combine(classic, stack(parts, k), k)


# ------------------------------------------------------------------------------ rate and friends


def _add(a: FloatHistogram, b: FloatHistogram, ctx: FuncContext, sub: bool = False) -> FloatHistogram:
    res = a.sub(b) if sub else a.add(b)
    if res.nhcb_bounds_reconciled:
        ctx.annotations.info(nc.mismatched_custom("subtraction" if sub else "addition"))
    return res.histogram


def histogram_rate(ctx: FuncContext, hs: list[FloatHistogram], is_counter: bool, name: str) -> FloatHistogram | None:
    """The increase (counter) or difference (gauge) between the first and last histogram of a
    window, with counter resets accounted for; None (with a warning) when incompatible."""
    ann = ctx.annotations
    prev = hs[0]
    last = hs[-1]
    custom = prev.uses_custom_buckets
    if is_counter and (prev.counter_reset_hint == CounterResetHint.GAUGE
                       or last.counter_reset_hint == CounterResetHint.GAUGE):
        ann.warn(nc.not_counter(name))
    if is_counter and len(hs) > 1 and hs[1].detect_reset(prev):
        prev = FloatHistogram(schema=hs[1].schema, custom_values=hs[1].custom_values)
        custom = hs[1].uses_custom_buckets
    if last.uses_custom_buckets != custom:
        ann.warn(nc.mixed_exp_custom(name))
        return None
    min_schema = min(last.schema, prev.schema)
    for cur in hs[1:-1]:
        if not is_counter:
            continue
        if cur.counter_reset_hint == CounterResetHint.GAUGE:
            ann.warn(nc.not_counter(name))
        min_schema = min(min_schema, cur.schema)
        if cur.uses_custom_buckets != custom:
            ann.warn(nc.mixed_exp_custom(name))
            return None
    try:
        h = last.copy_to_schema(min_schema) if not last.uses_custom_buckets else last
        h = _add(h, prev, ctx, sub=True)
        if is_counter:
            p = prev
            for cur in hs[1:]:
                if cur.detect_reset(p):
                    h = _add(h, p, ctx)
                p = cur
        elif hs[0].counter_reset_hint != CounterResetHint.GAUGE or hs[-1].counter_reset_hint != CounterResetHint.GAUGE:
            ann.warn(nc.not_gauge(name))
    except _Incompatible:
        ann.warn(nc.mixed_exp_custom(name))
        return None
    except HistogramError:
        ann.warn(nc.mixed_exp_custom(name))
        return None
    return h.with_hint(CounterResetHint.GAUGE).compact()


def _interpolate(ctx: FuncContext, h1: FloatHistogram, t1: int, h2: FloatHistogram, t2: int, t: int,
                 is_counter: bool) -> FloatHistogram:
    """The histogram at ``t`` between two samples (a counter reset counts from zero)."""
    if t == t1:
        return h1
    if t == t2:
        return h2
    fraction = (t - t1) / (t2 - t1)
    if is_counter and h2.detect_reset(h1):
        return h2.mul(fraction)
    d = _add(h2, h1, ctx, sub=True)
    return _add(d.mul(fraction), h1, ctx)


def _search(n: int, pred: Callable[[int], bool]) -> int:
    """Go's sort.Search: the smallest i in [0, n) with pred(i), else n."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def extended_histogram_rate(ctx: FuncContext, ts: list[int], hs: list[FloatHistogram], range_start: int,
                            range_end: int, smoothed: bool, is_counter: bool, is_rate: bool, range_s: float,
                            name: str) -> FloatHistogram | None:
    """rate/increase/delta of an ``anchored`` or ``smoothed`` range over histograms (Prometheus'
    ``extendedHistogramRate``): the boundary values are the sample at or before the range start
    (interpolated to it when smoothed) and the last sample (interpolated to the end when smoothed)."""
    ann = ctx.annotations
    last = len(hs) - 1
    first = max(0, _search(last, lambda i: ts[i] > range_start) - 1)
    if smoothed:
        last = _search(last, lambda i: ts[i] >= range_end)
    if ts[last] <= range_start:
        return None
    if smoothed and ts[first] > range_end:
        return None
    custom = hs[first].uses_custom_buckets
    for h in hs[first:last + 1]:
        if h.uses_custom_buckets != custom:
            ann.warn(nc.mixed_exp_custom(name))
            return None
        if is_counter and h.counter_reset_hint == CounterResetHint.GAUGE:
            ann.warn(nc.not_counter(name))
    try:
        left = hs[first]
        if smoothed and ts[first] < range_start:
            left = _interpolate(ctx, hs[first], ts[first], hs[first + 1], ts[first + 1], range_start, is_counter)
        right = hs[last]
        if smoothed and last > 0 and ts[last] > range_end:
            right = _interpolate(ctx, hs[last - 1], ts[last - 1], hs[last], ts[last], range_end, is_counter)
        if not is_counter and (left.counter_reset_hint != CounterResetHint.GAUGE
                               or right.counter_reset_hint != CounterResetHint.GAUGE):
            ann.warn(nc.not_gauge(name))
        res = _add(right, left, ctx, sub=True)
        if is_counter:
            lo = first + 1
            prev = left
            if smoothed and ts[first] < range_start and hs[first + 1].detect_reset(hs[first]):
                prev = hs[first + 1]
                lo += 1
            hi = last - 1
            correction: FloatHistogram | None = None
            if lo <= hi + 1:
                for cur in hs[lo:hi + 1]:
                    if cur.detect_reset(prev):
                        correction = prev if correction is None else _add(correction, prev, ctx)
                    prev = cur
                if right.detect_reset(prev):
                    correction = prev if correction is None else _add(correction, prev, ctx)
            if correction is not None:
                res = _add(res, correction, ctx)
    except HistogramError:
        ann.warn(nc.mixed_exp_custom(name))
        return None
    if is_rate:
        res = res.div(range_s)
    return res.with_hint(CounterResetHint.GAUGE).compact()


def _extrapolated(func: str, is_counter: bool, is_rate: bool) -> HistImpl:
    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        m = _matrix(args, 0, func)
        k = _k(ctx)
        if m.anchored or m.smoothed:
            return _extended(ctx, args, float_impl, m, is_counter, is_rate)
        win = nc.hwindows(m)
        fout = _call_float(float_impl, ctx, args)
        out = nc.Out.new(m.labels, k)
        out.take_floats(fout, win.nh == 0)
        range_s = m.range_ms / 1000.0
        for i, j in zip(*np.nonzero(win.nh > 0), strict=True):
            i, j = int(i), int(j)
            name = nc.metric_name(m.labels[i])
            if win.nf[i, j] > 0:
                ctx.annotations.warn(nc.mixed_floats_histograms(name))
                continue
            ts, hs = win.hists(i, j)
            if len(hs) < 2:
                continue
            h = histogram_rate(ctx, hs, is_counter, name)
            if h is None:
                continue
            end = int(m.window_end[j])
            start = end - int(m.range_ms)
            first_t, last_t = int(ts[0]), int(ts[-1])
            to_start = (first_t - start) / 1000.0
            to_end = (end - last_t) / 1000.0
            sampled = (last_t - first_t) / 1000.0
            avg = sampled / (len(hs) - 1)
            thr = avg * 1.1
            if to_start >= thr:
                to_start = avg / 2
            if is_counter and h.count > 0 and hs[0].count >= 0:
                to_zero = sampled * (hs[0].count / h.count)
                to_start = min(to_start, to_zero)
            if to_end >= thr:
                to_end = avg / 2
            factor = (sampled + to_start + to_end) / sampled if sampled != 0 else 1.0
            if is_rate:
                factor /= range_s
            out.set_hist(i, j, h.mul(factor))
        return out.result(drop_name=True)

    return impl


def _extended(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None, m: MatrixSteps,
              is_counter: bool, is_rate: bool) -> VectorSteps:
    """Anchored/smoothed rate, increase, delta: the window is extended by the lookback before the
    range (and after it when smoothed); a window mixing floats and histograms warns."""
    k = _k(ctx)
    win = nc.hwindows(m, extended=True)
    fout = _call_float(float_impl, ctx, args)
    out = nc.Out.new(m.labels, k)
    out.take_floats(fout, win.nh == 0)
    for i, j in zip(*np.nonzero(win.nh > 0), strict=True):
        i, j = int(i), int(j)
        name = nc.metric_name(m.labels[i])
        if win.nf[i, j] > 0:
            ctx.annotations.warn(nc.mixed_floats_histograms(name))
            continue
        ts, hs = win.hists(i, j)
        end = int(m.window_end[j])
        h = extended_histogram_rate(ctx, [int(t) for t in ts], hs, end - int(m.range_ms), end, m.smoothed,
                                    is_counter, is_rate, m.range_ms / 1000.0, name)
        if h is not None:
            out.set_hist(i, j, h)
    return out.result(drop_name=True)


def _instant(func: str, is_rate: bool) -> HistImpl:
    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        m = _matrix(args, 0, func)
        k = _k(ctx)
        win = nc.hwindows(m)
        # Kind of the last two samples of each window.
        cnt = win.hi - win.lo
        last_h = win.is_h[np.clip(win.hi - 1, 0, max(win.flat.size - 1, 0))] if win.flat.size else \
            np.zeros(cnt.shape, dtype=bool)
        prev_h = win.is_h[np.clip(win.hi - 2, 0, max(win.flat.size - 1, 0))] if win.flat.size else \
            np.zeros(cnt.shape, dtype=bool)
        two = cnt >= 2
        both_f = two & ~last_h & ~prev_h
        fout = _call_float(float_impl, ctx, args)
        out = nc.Out.new(m.labels, k)
        out.take_floats(fout, both_f)
        for i, j in zip(*np.nonzero(two & (last_h | prev_h)), strict=True):
            i, j = int(i), int(j)
            name = nc.metric_name(m.labels[i])
            if not (last_h[i, j] and prev_h[i, j]):
                ctx.annotations.warn(nc.mixed_floats_histograms(name))
                continue
            b = int(win.hi[i, j])
            t0, t1 = int(win.flat.t[b - 2]), int(win.flat.t[b - 1])
            h0, h1 = win.fh[b - 2], win.fh[b - 1]
            if t1 == t0:
                continue
            if is_rate and (h1.counter_reset_hint == CounterResetHint.GAUGE
                            or h0.counter_reset_hint == CounterResetHint.GAUGE):
                ctx.annotations.warn(nc.not_counter(name))
            if not is_rate and (h1.counter_reset_hint != CounterResetHint.GAUGE
                                or h0.counter_reset_hint != CounterResetHint.GAUGE):
                ctx.annotations.warn(nc.not_gauge(name))
            res = h1
            if not is_rate or not h1.detect_reset(h0):
                try:
                    res = _add(h1, h0, ctx, sub=True)
                except HistogramError:
                    ctx.annotations.warn(nc.mixed_exp_custom(name))
                    continue
            res = res.with_hint(CounterResetHint.GAUGE).compact()
            if is_rate:
                res = res.div((t1 - t0) / 1000.0)
            out.set_hist(i, j, res)
        return out.result(drop_name=True)

    return impl


# ------------------------------------------------------------------------------ *_over_time


def _sum_avg_over_time(func: str, avg: bool) -> HistImpl:
    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        m = _matrix(args, 0, func)
        k = _k(ctx)
        win = nc.hwindows(m)
        fout = _call_float(float_impl, ctx, args)
        out = nc.Out.new(m.labels, k)
        out.take_floats(fout, win.nh == 0)
        for i, j in zip(*np.nonzero(win.nh > 0), strict=True):
            i, j = int(i), int(j)
            name = nc.metric_name(m.labels[i])
            if win.nf[i, j] > 0:
                ctx.annotations.warn(nc.mixed_floats_histograms(name))
                continue
            _, hs = win.hists(i, j)
            seen_reset = any(h.counter_reset_hint == CounterResetHint.RESET for h in hs)
            seen_not = any(h.counter_reset_hint == CounterResetHint.NOT_RESET for h in hs)
            reconciled = False
            try:
                if avg:
                    res, reconciled = histogram_mean(hs)
                else:
                    acc = KahanHistogramSum(hs[0])
                    for h in hs[1:]:
                        _, rec = acc.add(h)
                        reconciled |= rec
                    res = acc.result()
            except HistogramError:
                ctx.annotations.warn(nc.mixed_exp_custom(name))
                continue
            if seen_reset and seen_not:
                ctx.annotations.warn(nc.counter_reset_collision("aggregation"))
            if reconciled:
                ctx.annotations.info(nc.mismatched_custom("aggregation"))
            out.set_hist(i, j, res)
        return out.result(drop_name=True)

    return impl


def _first_last(func: str, last: bool) -> HistImpl:
    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        m = _matrix(args, 0, func)
        k = _k(ctx)
        win = nc.hwindows(m)
        cnt = win.hi - win.lo
        has = cnt > 0
        size = max(win.flat.size - 1, 0)
        pick = np.clip(win.hi - 1 if last else win.lo, 0, size)
        is_h = win.is_h[pick] & has if win.flat.size else np.zeros(cnt.shape, dtype=bool)
        out = nc.Out.new(m.labels, k)
        for i, j in zip(*np.nonzero(has), strict=True):
            i, j = int(i), int(j)
            p = int(pick[i, j])
            if is_h[i, j]:
                out.set_hist(i, j, win.fh[p])
            else:
                out.set_float(i, j, float(win.flat.v[p]))
        return out.result(drop_name=False)

    return impl


def _changes_resets(func: str, resets: bool) -> HistImpl:
    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        m = _matrix(args, 0, func)
        k = _k(ctx)
        win = nc.hwindows(m)
        if m.smoothed:
            raise QueryError(f"{func} with smoothed selectors over native histograms is not supported")
        fout = _call_float(float_impl, ctx, args)
        out = nc.Out.new(m.labels, k)
        out.take_floats(fout, win.nh == 0)
        for i, j in zip(*np.nonzero(win.nh > 0), strict=True):
            i, j = int(i), int(j)
            a, b = int(win.lo[i, j]), int(win.hi[i, j])
            n = 0
            for p in range(a + 1, b):
                h0, h1 = win.fh[p - 1], win.fh[p]
                if (h0 is None) != (h1 is None):
                    n += 1
                elif h0 is None:
                    x0, x1 = float(win.flat.v[p - 1]), float(win.flat.v[p])
                    if resets:
                        n += x1 < x0
                    elif x1 != x0 and not (math.isnan(x0) and math.isnan(x1)):
                        n += 1
                elif resets:
                    n += h1.detect_reset(h0)
                else:
                    n += not h1.equals(h0)
            out.set_float(i, j, float(n))
        return out.result(drop_name=True)

    return impl


def _floats_with_info(func: str) -> HistImpl:
    """Range functions over floats only: histograms in a window with floats are ignored (info);
    windows with only histograms give nothing."""

    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        mi = next((i for i, a in enumerate(args) if isinstance(a, MatrixSteps)), 0)
        m = _matrix(args, mi, func)
        win = nc.hwindows(m)
        for i, j in zip(*np.nonzero((win.nh > 0) & (win.nf > 0)), strict=True):
            ctx.annotations.info(nc.ignored_in_mixed_range(nc.metric_name(m.labels[int(i)])))
            del j
        out = _call_float(float_impl, ctx, args)
        if out is None:
            return VectorSteps.empty(_k(ctx))
        return out

    return impl


def _keep_rows(func: str) -> HistImpl:
    """Functions that pass samples through with other labels (label_replace, label_join): run the
    float implementation on all rows (histograms as NaN floats) and reattach the histograms."""

    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        if float_impl is None:
            raise QueryError(f"function {func!r} is not implemented")
        v = _vector(args, 0, func)
        out = float_impl(ctx, args)
        if not isinstance(out, VectorSteps) or v.hist is None:
            return out
        if out.num_series == v.num_series and bool((out.present == v.present).all()):
            return VectorSteps(out.labels, out.values, out.present, out.drop_name, out.sample_ts, v.hist)
        raise QueryError(f"{func} over native histograms that merges series is not supported")

    return impl


def _sort_by_label(func: str) -> HistImpl:
    def impl(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
        if float_impl is None:
            raise QueryError(f"function {func!r} is not implemented")
        v = _vector(args, 0, func)
        out = float_impl(ctx, args)
        if not isinstance(out, VectorSteps) or v.hist is None:
            return out
        row_of = {lbl: i for i, lbl in enumerate(v.labels)}
        idx = np.asarray([row_of[lbl] for lbl in out.labels], dtype=np.int64)
        return VectorSteps(out.labels, out.values, out.present, out.drop_name, out.sample_ts, v.hist[idx])

    return impl


def _floats_vector_only(ctx: FuncContext, args: list[Value], float_impl: FunctionImpl | None) -> Value:
    out = _call_float(float_impl, ctx, args)
    return out if out is not None else VectorSteps.empty(_k(ctx))


HIST_FUNCTIONS: dict[str, HistImpl] = {
    "histogram_count": _simple(histogram_count),
    "histogram_sum": _simple(histogram_sum),
    "histogram_avg": _simple(histogram_avg),
    "histogram_stddev": _simple(histogram_stddev),
    "histogram_stdvar": _simple(histogram_stdvar),
    "histogram_quantile": hist_quantile,
    "histogram_quantiles": hist_quantiles,
    "histogram_fraction": hist_fraction,
    "rate": _extrapolated("rate", True, True),
    "increase": _extrapolated("increase", True, False),
    "delta": _extrapolated("delta", False, False),
    "irate": _instant("irate", True),
    "idelta": _instant("idelta", False),
    "sum_over_time": _sum_avg_over_time("sum_over_time", False),
    "avg_over_time": _sum_avg_over_time("avg_over_time", True),
    "last_over_time": _first_last("last_over_time", True),
    "first_over_time": _first_last("first_over_time", False),
    "changes": _changes_resets("changes", False),
    "resets": _changes_resets("resets", True),
    "label_replace": _keep_rows("label_replace"),
    "label_join": _keep_rows("label_join"),
    "sort_by_label": _sort_by_label("sort_by_label"),
    "sort_by_label_desc": _sort_by_label("sort_by_label_desc"),
    **{f: _floats_with_info(f) for f in (
        "max_over_time", "min_over_time", "stddev_over_time", "stdvar_over_time", "quantile_over_time",
        "mad_over_time", "deriv", "predict_linear", "double_exponential_smoothing", "ts_of_max_over_time",
        "ts_of_min_over_time",
    )},
}


def call_function(name: str, ctx: FuncContext, args: list[Value], impl: FunctionImpl | None) -> Value | None:
    """Evaluates ``name`` when an argument holds histogram samples; None means "not handled here"
    (the caller runs the float implementation on the stripped arguments)."""
    if name in PASS_THROUGH:
        return None
    h = HIST_FUNCTIONS.get(name)
    if h is None:
        return None
    return h(ctx, args, impl)


__all__ = ["HIST_FUNCTIONS", "PASS_THROUGH", "call_function", "floats_only", "histogram_rate"]
