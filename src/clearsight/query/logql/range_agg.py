"""Range aggregations of one series over all steps at once (numpy).

Each step ``j`` looks at the samples with ``end[j] - range < ts <= end[j]`` (left-open, as Loki).
Window bounds come from two ``searchsorted`` calls; counts and sums from prefix sums; first/last
by index; min/max/quantile loop over the windows that hold samples (one numpy call each).
A step with no sample in its window has no value (``present`` False), as in Loki.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clearsight.query.budget import checkpoint

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArr = npt.NDArray[np.bool_]


def windows(ts: I64, ends: I64, range_ns: int) -> tuple[I64, I64]:
    """Index bounds ``[lo, hi)`` of each step's window in the sorted ``ts``."""
    hi = np.searchsorted(ts, ends, side="right").astype(np.int64)
    lo = np.searchsorted(ts, ends - range_ns, side="right").astype(np.int64)
    return lo, hi


def _prefix(x: F64) -> F64:
    out = np.zeros(x.size + 1)
    np.cumsum(x, out=out[1:])
    return out


def aggregate(op: str, ts: I64, values: F64, ends: I64, range_ns: int,
              quantile: float | None = None) -> tuple[F64, BoolArr]:
    """``op`` over each window: the per-step values and where a value exists."""
    lo, hi = windows(ts, ends, range_ns)
    n = hi - lo
    present = n > 0
    secs = range_ns / 1e9
    out = np.full(ends.shape, np.nan)
    with np.errstate(all="ignore"):
        if op == "count_over_time":
            out = n.astype(np.float64)
        elif op in ("rate", "bytes_rate", "bytes_over_time", "sum_over_time"):
            # rate/bytes_rate over lines: values are 1 per line / the line sizes; with unwrap, the values.
            cs = _prefix(values)
            out = cs[hi] - cs[lo]
            if op in ("rate", "bytes_rate"):
                out = out / secs
        elif op == "avg_over_time":
            cs = _prefix(values)
            out = (cs[hi] - cs[lo]) / n
        elif op in ("stdvar_over_time", "stddev_over_time"):
            c = float(np.mean(values)) if values.size else 0.0
            d = values - c
            s1, s2 = _prefix(d), _prefix(d * d)
            mean = (s1[hi] - s1[lo]) / n
            var = np.maximum((s2[hi] - s2[lo]) / n - mean * mean, 0.0)
            out = np.sqrt(var) if op == "stddev_over_time" else var
        elif op == "first_over_time":
            out = np.where(present, values[np.minimum(lo, max(values.size - 1, 0))] if values.size else np.nan,
                           np.nan)
        elif op == "last_over_time":
            out = np.where(present, values[np.maximum(hi - 1, 0)] if values.size else np.nan, np.nan)
        elif op in ("min_over_time", "max_over_time", "quantile_over_time"):
            for j in np.flatnonzero(present).tolist():
                w = values[lo[j]:hi[j]]
                if op == "min_over_time":
                    out[j] = np.nanmin(w) if not np.isnan(w).all() else np.nan
                elif op == "max_over_time":
                    out[j] = np.nanmax(w) if not np.isnan(w).all() else np.nan
                else:
                    out[j] = _quantile(quantile if quantile is not None else 0.5, w)
                if j % 1024 == 0:
                    checkpoint()
        elif op == "rate_counter":
            out, present = _counter_rate(ts, values, lo, hi, ends, range_ns)
        else:
            raise ValueError(f"unknown range aggregation {op!r}")
    return np.asarray(out, dtype=np.float64), present


def _quantile(q: float, w: F64) -> float:
    """Prometheus' quantile (linear interpolation between closest ranks), as Loki uses."""
    if np.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    s = np.sort(w)
    rank = q * (s.size - 1)
    lower = int(np.floor(rank))
    upper = min(lower + 1, s.size - 1)
    weight = rank - lower
    return float(s[lower] * (1 - weight) + s[upper] * weight)


def _counter_rate(ts: I64, v: F64, lo: I64, hi: I64, ends: I64, range_ns: int) -> tuple[F64, BoolArr]:
    """Prometheus' extrapolated counter rate (``rate_counter``): resets corrected, extrapolated to
    the window edges, per second. Needs two samples in the window."""
    n = hi - lo
    present = n >= 2
    out = np.full(ends.shape, np.nan)
    if not v.size or not present.any():
        return out, present
    drops = np.zeros(v.size)
    drops[1:] = np.where(v[1:] < v[:-1], v[:-1], 0.0)
    reset = np.cumsum(drops)
    last = np.maximum(hi - 1, 0)
    first = np.minimum(lo, v.size - 1)
    delta = v[last] - v[first] + reset[last] - reset[first]
    t_first = ts[first].astype(np.float64) / 1e9
    t_last = ts[last].astype(np.float64) / 1e9
    start_s = (ends - range_ns).astype(np.float64) / 1e9
    end_s = ends.astype(np.float64) / 1e9
    sampled = t_last - t_first
    avg = sampled / np.maximum(n - 1, 1)
    to_start = t_first - start_s
    to_end = end_s - t_last
    with np.errstate(all="ignore"):
        to_zero = np.where((delta > 0) & (v[first] >= 0), sampled * (v[first] / delta), np.inf)
    to_start = np.minimum(to_start, to_zero)
    threshold = avg * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, avg / 2) + np.where(to_end < threshold, to_end,
                                                                                        avg / 2)
    with np.errstate(all="ignore"):
        out = np.where(present, delta * (interval / sampled) / (range_ns / 1e9), np.nan)
    return out, present
