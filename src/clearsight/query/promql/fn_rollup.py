"""Range functions answered from rollup buckets (``model/rollups.py``) instead of raw samples.

Every window ``(e - range, e]`` is made of whole buckets (``rollup_plan.py`` checks it), so the
window's first and last sample, count, min, max, sum and reset-corrected increase are reductions of
its buckets, and each function below applies the same formula to them as ``fn_range.py`` applies to
the raw samples (``rate``/``increase``/``delta``: Prometheus' ``extrapolatedRate``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clearsight.model.rollups import Buckets, aggregate, cross_corrections
from clearsight.query.promql.fn_common import F64, I64, Flat, vector_result, window_index
from clearsight.query.promql.fn_range import _range_seconds, warn_non_counter
from clearsight.query.promql.values import BoolArr, FuncContext, VectorSteps
from clearsight.store.interface import RollupData


def _extrapolated(w: Buckets, e: I64, range_ms: int, is_counter: bool, is_rate: bool) -> F64:
    """``fn_range._extrapolated_rate`` on window aggregates (windows of >= 2 samples)."""
    range_start = e - range_ms
    with np.errstate(all="ignore"):
        result = w.v_last - w.v_first
        if is_counter:
            result = result + w.corr
        dur_start = (w.t_first - range_start).astype(np.float64) / 1000
        dur_end = (e - w.t_last).astype(np.float64) / 1000
        sampled = (w.t_last - w.t_first).astype(np.float64) / 1000
        avg_dur = sampled / (w.cnt - 1).astype(np.float64)
        threshold = avg_dur * 1.1
        dur_start = np.where(dur_start >= threshold, avg_dur / 2, dur_start)
        if is_counter:
            to_zero = np.where((result > 0) & (w.v_first >= 0), sampled * (w.v_first / result), dur_start)
            dur_start = np.where(to_zero < dur_start, to_zero, dur_start)
        dur_end = np.where(dur_end >= threshold, avg_dur / 2, dur_end)
        factor = np.where(sampled != 0, (sampled + dur_start + dur_end) / sampled, 1.0)
        if is_rate:
            factor = factor / _range_seconds(range_ms)
        out: F64 = result * factor
    return out


def _avg(w: Buckets) -> F64:
    out: F64 = w.vsum / w.cnt.astype(np.float64)
    return out


# name -> (value of a window, minimum samples per window, keeps the metric name)
_FUNCS: dict[str, tuple[Callable[[Buckets, I64, int], F64], int, bool]] = {
    "rate": (lambda w, e, r: _extrapolated(w, e, r, True, True), 2, False),
    "increase": (lambda w, e, r: _extrapolated(w, e, r, True, False), 2, False),
    "delta": (lambda w, e, r: _extrapolated(w, e, r, False, False), 2, False),
    "count_over_time": (lambda w, e, r: w.cnt.astype(np.float64), 1, False),
    "present_over_time": (lambda w, e, r: np.ones(len(w)), 1, False),
    "sum_over_time": (lambda w, e, r: w.vsum, 1, False),
    "avg_over_time": (lambda w, e, r: _avg(w), 1, False),
    "min_over_time": (lambda w, e, r: w.vmin, 1, False),
    "max_over_time": (lambda w, e, r: w.vmax, 1, False),
    "last_over_time": (lambda w, e, r: w.v_last, 1, True),
    "first_over_time": (lambda w, e, r: w.v_first, 1, True),
}
FUNCTIONS = frozenset(_FUNCS)


def evaluate(ctx: FuncContext, func: str, data: RollupData, window_end: I64, range_ms: int) -> tuple[VectorSteps, int]:
    """``func`` over the windows ``(window_end[j] - range_ms, window_end[j]]``; also returns the raw
    samples those windows hold (Prometheus' totalQueryableSamples)."""
    value, min_count, keep_name = _FUNCS[func]
    b = data.buckets
    n, k = len(data.labels), int(window_end.shape[0])
    starts, ends = data.offsets[:-1], data.offsets[1:]
    flat = Flat(b.end, b.v_last, starts, ends)
    lo = window_index(flat, window_end - range_ms)
    hi = window_index(flat, window_end)
    ok: BoolArr = hi > lo
    series_start = np.zeros(len(b), dtype=bool)
    series_start[starts[starts < len(b)]] = True
    steps = np.broadcast_to(np.arange(k, dtype=np.int64)[None, :], (n, k))[ok]
    w = aggregate(b, cross_corrections(b, series_start), lo[ok], hi[ok], window_end[steps])
    enough = w.cnt >= min_count
    vals = np.full((n, k), np.nan)
    present = np.zeros((n, k), dtype=bool)
    rows, cols = np.nonzero(ok)
    vals[rows, cols] = value(w, w.end, range_ms)
    present[rows, cols] = enough
    out = vector_result(list(data.labels), vals, present, np.full(n, not keep_name))
    if func in ("rate", "increase"):
        warn_non_counter(ctx, out)
    return out, int(w.cnt.sum())
