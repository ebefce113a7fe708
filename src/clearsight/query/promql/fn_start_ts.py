"""rate, increase, irate and resets over samples that carry start (created) timestamps.

Prometheus uses a sample's start timestamp (ST) to see counter resets that the values alone hide
(a new ST after the previous sample: the counter restarted) and, for ``rate``/``increase``, to
replace extrapolation towards the window start by a zero at the first sample's ST when that lies
inside the window (``promql/functions.go``: ``extrapolatedRate``, ``histogramRate``,
``instantValue``, ``funcResets``, ``isStartTimestampReset``, ``checkStartTimeOverlap``).

The engine calls these only for plain range selectors whose series have start timestamps
(anchored/smoothed selectors and subqueries do not carry them); windows are evaluated one by one
in Python (floats and native histograms alike).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clearsight.model.histogram import CounterResetHint, FloatHistogram, HistogramError
from clearsight.query.promql import nh_common as nc
from clearsight.query.promql.fn_common import flatten, window_index
from clearsight.query.promql.values import (
    I64,
    FuncContext,
    MatrixSteps,
    ObjArr,
    QueryError,
    Value,
    VectorSteps,
)
from clearsight.query.promql.vecutil import go_quote


def is_st_reset(prev_st: int, prev_t: int, cur_st: int, cur_t: int) -> bool:
    """Whether the current sample's start timestamp says the counter restarted since ``prev``."""
    if cur_st == 0 or cur_st >= cur_t:
        return False
    if cur_st < prev_t:
        return False
    if cur_st > prev_t:
        return True
    # cur_st == prev_t: a delta sample, unless the previous start was unknown/invalid (OTel's
    # cumulative series with unknown start).
    if prev_st > prev_t:
        return False
    return prev_st not in (0, prev_t)


def st_overlap(prev_st: int, prev_t: int, cur_st: int) -> bool:
    return cur_st != 0 and cur_st < prev_t and cur_st != prev_st


def overlap_warning(name: str) -> str:
    return f"PromQL warning: sample has start time that overlaps with previous sample timestamp for metric {go_quote(name)}"


class _Win:
    """Window ``(end - range, end]`` samples of one series at one step."""

    def __init__(self, m: MatrixSteps) -> None:
        self.m = m
        self.flat = flatten(m)
        e = np.asarray(m.window_end, dtype=np.int64)
        self.lo = window_index(self.flat, e - int(m.range_ms))
        self.hi = window_index(self.flat, e)
        n = m.num_series
        hs: list[ObjArr] = []
        sts: list[I64] = []
        for i in range(n):
            h = m.hist_of(i)
            hs.append(h if h is not None else np.full(len(m.timestamps[i]), None, dtype=object))
            s = m.sts[i] if m.sts is not None else None
            sts.append(s if s is not None else np.zeros(len(m.timestamps[i]), dtype=np.int64))
        self.fh = np.concatenate(hs) if hs else np.empty(0, dtype=object)
        self.fst = np.concatenate(sts) if sts else np.zeros(0, dtype=np.int64)

    def samples(self, i: int, j: int) -> tuple[list[int], list[float], list[FloatHistogram | None], list[int]]:
        a, b = int(self.lo[i, j]), int(self.hi[i, j])
        return (self.flat.t[a:b].tolist(), self.flat.v[a:b].tolist(), list(self.fh[a:b]),
                self.fst[a:b].tolist())


def _add(ctx: FuncContext, a: FloatHistogram, b: FloatHistogram, sub: bool = False) -> FloatHistogram:
    r = a.sub(b) if sub else a.add(b)
    if r.nhcb_bounds_reconciled:
        ctx.annotations.info(nc.mismatched_custom("subtraction" if sub else "addition"))
    return r.histogram


def _hist_increase(ctx: FuncContext, ts: list[int], hs: list[FloatHistogram], sts: list[int],
                   name: str) -> FloatHistogram | None:
    """``histogramRate`` for a counter with start timestamps."""
    ann = ctx.annotations
    prev = hs[0]
    last = hs[-1]
    custom = prev.uses_custom_buckets
    if prev.counter_reset_hint == CounterResetHint.GAUGE or last.counter_reset_hint == CounterResetHint.GAUGE:
        ann.warn(nc.not_counter(name))
    if is_st_reset(sts[0], ts[0], sts[1], ts[1]) or hs[1].detect_reset(prev):
        prev = FloatHistogram(schema=hs[1].schema, custom_values=hs[1].custom_values)
        custom = hs[1].uses_custom_buckets
    if last.uses_custom_buckets != custom or any(h.uses_custom_buckets != custom for h in hs[1:-1]):
        ann.warn(nc.mixed_exp_custom(name))
        return None
    min_schema = min([last.schema, prev.schema] + [h.schema for h in hs[1:-1]])
    for h in hs[1:-1]:
        if h.counter_reset_hint == CounterResetHint.GAUGE:
            ann.warn(nc.not_counter(name))
    try:
        h = last.copy_to_schema(min_schema) if not last.uses_custom_buckets else last
        h = _add(ctx, h, prev, sub=True)
        overlap = False
        p = prev
        for k in range(1, len(hs)):
            if not overlap and st_overlap(sts[k - 1], ts[k - 1], sts[k]):
                ann.warn(overlap_warning(name))
                overlap = True
            if is_st_reset(sts[k - 1], ts[k - 1], sts[k], ts[k]) or hs[k].detect_reset(p):
                h = _add(ctx, h, p)
            p = hs[k]
    except HistogramError:
        ann.warn(nc.mixed_exp_custom(name))
        return None
    return h.with_hint(CounterResetHint.GAUGE).compact()


def _rate_impl(is_rate: bool) -> Callable[[FuncContext, list[Value]], Value]:
    def impl(ctx: FuncContext, args: list[Value]) -> Value:
        m = args[0]
        if not isinstance(m, MatrixSteps):
            raise QueryError("expected a range vector")
        k = int(m.window_end.shape[0])
        w = _Win(m)
        out = nc.Out.new(m.labels, k)
        range_s = m.range_ms / 1000.0
        for i in range(m.num_series):
            name = nc.metric_name(m.labels[i])
            for j in range(k):
                if w.hi[i, j] == w.lo[i, j]:
                    continue
                ts, vs, hs, sts = w.samples(i, j)
                nh = sum(h is not None for h in hs)
                if 0 < nh < len(hs):
                    ctx.annotations.warn(nc.mixed_floats_histograms(name))
                    continue
                end = int(m.window_end[j])
                start = end - int(m.range_ms)
                n1 = len(ts) - 1
                first_t, last_t = ts[0], ts[-1]
                res_f = 0.0
                res_h: FloatHistogram | None = None
                if nh:
                    hist = [h for h in hs if h is not None]
                    if len(hist) > 1:
                        res_h = _hist_increase(ctx, ts, hist, sts, name)
                        if res_h is None:
                            continue
                else:
                    res_f = vs[-1] - vs[0]
                    overlap = False
                    for q in range(1, len(vs)):
                        if not overlap and st_overlap(sts[q - 1], ts[q - 1], sts[q]):
                            ctx.annotations.warn(overlap_warning(name))
                            overlap = True
                        if vs[q] < vs[q - 1] or is_st_reset(sts[q - 1], ts[q - 1], sts[q], ts[q]):
                            res_f += vs[q - 1]
                to_start = (first_t - start) / 1000.0
                to_end = (end - last_t) / 1000.0
                sampled = (last_t - first_t) / 1000.0
                avg = sampled / n1 if n1 > 0 else 0.0
                thr = avg * 1.1
                if sts[0] != 0 and start < sts[0] < first_t:
                    to_start = 0.0
                    sampled = (last_t - sts[0]) / 1000.0
                    if nh:
                        h0 = hs[0]
                        assert h0 is not None
                        res_h = h0 if res_h is None else _add(ctx, res_h, h0)
                    else:
                        res_f += vs[0]
                elif n1 == 0:
                    continue
                else:
                    if to_start >= thr:
                        to_start = avg / 2
                    to_zero = to_start
                    if res_h is None and res_f > 0 and vs[0] >= 0:
                        to_zero = sampled * (vs[0] / res_f)
                    elif res_h is not None and res_h.count > 0:
                        h0 = hs[0]
                        if h0 is not None and h0.count >= 0:
                            to_zero = sampled * (h0.count / res_h.count)
                    to_start = min(to_start, to_zero)
                if to_end >= thr:
                    to_end = avg / 2
                factor = (sampled + to_start + to_end) / sampled if sampled != 0 else 1.0
                if is_rate:
                    factor /= range_s
                if res_h is not None:
                    out.set_hist(i, j, res_h.mul(factor))
                else:
                    out.set_float(i, j, res_f * factor)
        return out.result(drop_name=True)

    return impl


def fn_irate(ctx: FuncContext, args: list[Value]) -> Value:
    m = args[0]
    if not isinstance(m, MatrixSteps):
        raise QueryError("expected a range vector")
    k = int(m.window_end.shape[0])
    w = _Win(m)
    out = nc.Out.new(m.labels, k)
    for i in range(m.num_series):
        name = nc.metric_name(m.labels[i])
        for j in range(k):
            if w.hi[i, j] - w.lo[i, j] < 2:
                continue
            ts, vs, hs, sts = w.samples(i, j)
            t0, t1 = ts[-2], ts[-1]
            if t1 == t0:
                continue
            h0, h1 = hs[-2], hs[-1]
            if h0 is None and h1 is None:
                f = vs[-1]
                if not (vs[-1] < vs[-2] or is_st_reset(sts[-2], t0, sts[-1], t1)):
                    f = vs[-1] - vs[-2]
                out.set_float(i, j, f / ((t1 - t0) / 1000.0))
            elif h0 is not None and h1 is not None:
                if h1.counter_reset_hint == CounterResetHint.GAUGE or h0.counter_reset_hint == CounterResetHint.GAUGE:
                    ctx.annotations.warn(nc.not_counter(name))
                res = h1
                if not is_st_reset(sts[-2], t0, sts[-1], t1) and not h1.detect_reset(h0):
                    try:
                        res = _add(ctx, h1, h0, sub=True)
                    except HistogramError:
                        ctx.annotations.warn(nc.mixed_exp_custom(name))
                        continue
                out.set_hist(i, j, res.with_hint(CounterResetHint.GAUGE).compact().div((t1 - t0) / 1000.0))
            else:
                ctx.annotations.warn(nc.mixed_floats_histograms(name))
    return out.result(drop_name=True)


def fn_resets(ctx: FuncContext, args: list[Value]) -> Value:
    m = args[0]
    if not isinstance(m, MatrixSteps):
        raise QueryError("expected a range vector")
    k = int(m.window_end.shape[0])
    w = _Win(m)
    out = nc.Out.new(m.labels, k)
    for i in range(m.num_series):
        for j in range(k):
            if w.hi[i, j] == w.lo[i, j]:
                continue
            ts, vs, hs, sts = w.samples(i, j)
            n = 0
            for q in range(1, len(ts)):
                a, b = hs[q - 1], hs[q]
                if a is None and b is None:
                    n += vs[q] < vs[q - 1] or is_st_reset(sts[q - 1], ts[q - 1], sts[q], ts[q])
                elif a is None or b is None:
                    n += 1
                else:
                    n += is_st_reset(sts[q - 1], ts[q - 1], sts[q], ts[q]) or b.detect_reset(a)
            out.set_float(i, j, float(n))
    return out.result(drop_name=True)


ST_FUNCTIONS: dict[str, Callable[[FuncContext, list[Value]], Value]] = {
    "rate": _rate_impl(True),
    "increase": _rate_impl(False),
    "irate": fn_irate,
    "resets": fn_resets,
}

__all__ = ["ST_FUNCTIONS", "VectorSteps", "is_st_reset", "st_overlap"]
