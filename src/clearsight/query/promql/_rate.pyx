# cython: boundscheck=False, wraparound=False, cdivision=True
"""Compiled range-function kernels.

``extrapolated_rate``: ``rate``/``increase``/``delta`` over plain range selectors, one pass per
series with two pointers over its samples (the window of step ``j`` is
``(wend[j] - range_ms, wend[j]]``) and one over its counter resets, instead of a binary search per
window and ~20 whole-array numpy passes.

``linear_regression``: ``deriv``/``predict_linear``, Prometheus' compensated sums per window in
sample order.

``instant_value``: ``irate``/``idelta`` from the last two samples of each window, with the same
two pointers.

``counter_resets`` and ``nondecreasing``: the set-up of the kernels above in one pass each instead
of a handful of numpy calls (what a small query's rate spends most of its time on).

Both perform the same IEEE-754 operations in the same order as the numpy paths in ``fn_range``
(Prometheus' ``extrapolatedRate`` and ``linearRegression``), so results are bit-identical
(tests/unit/query/promql/test_rate_native.py checks this on random data). Built with
``-ffp-contract=off`` so the compiler never fuses a multiply and an add.
"""

from libc.math cimport NAN, fabs, isinf
from clearsight.query.promql._kahan cimport kahan_inc

import numpy as np


cdef inline void _advance(const long long[:] t, Py_ssize_t e, long long rs, long long we, Py_ssize_t* lo,
                          Py_ssize_t* hi) noexcept nogil:
    """Moves the window ``[lo, hi)`` of a series' samples (ending at ``e``) to ``(rs, we]``."""
    while lo[0] < e and t[lo[0]] <= rs:
        lo[0] += 1
    while hi[0] < e and t[hi[0]] <= we:
        hi[0] += 1


def extrapolated_rate(
    const long long[:] t,
    const double[:] v,
    const long long[:] starts,
    const long long[:] ends,
    const long long[:] wend,
    long long range_ms,
    bint is_counter,
    bint is_rate,
    double range_s,
    const long long[:] resets,
    double[:, :] out,
    unsigned char[:, :] present,
):
    """Fills ``out[i, j]`` / ``present[i, j]`` for series ``i`` (flat samples
    ``starts[i]:ends[i]``, ascending time) and step ``j``. ``wend`` must be non-decreasing.
    ``resets``: ascending flat positions ``p`` (not a series start) with ``v[p] < v[p-1]``."""
    cdef Py_ssize_t n = starts.shape[0]
    cdef Py_ssize_t k = wend.shape[0]
    cdef Py_ssize_t nres = resets.shape[0]
    cdef Py_ssize_t i, j, s, e, lo, hi, first, last, ra, rb, r
    cdef long long we, rs
    cdef double result, dur_start, dur_end, sampled, avg_dur, threshold, to_zero, factor
    with nogil:
        ra = 0
        rb = 0
        for i in range(n):
            s = starts[i]
            e = ends[i]
            lo = s
            hi = s
            while ra < nres and resets[ra] <= s:
                ra += 1
            if rb < ra:
                rb = ra
            for j in range(k):
                we = wend[j]
                rs = we - range_ms
                _advance(t, e, rs, we, &lo, &hi)
                if hi - lo < 2:
                    out[i, j] = NAN
                    present[i, j] = 0
                    continue
                first = lo
                last = hi - 1
                result = v[last] - v[first]
                if is_counter:
                    # resets at positions in (first, last], in time order
                    while ra < nres and resets[ra] <= first:
                        ra += 1
                    if rb < ra:
                        rb = ra
                    while rb < nres and resets[rb] <= last:
                        rb += 1
                    for r in range(ra, rb):
                        result = result + v[resets[r] - 1]
                dur_start = <double>(t[first] - rs) / 1000.0
                dur_end = <double>(we - t[last]) / 1000.0
                sampled = <double>(t[last] - t[first]) / 1000.0
                avg_dur = sampled / <double>(last - first)
                threshold = avg_dur * 1.1
                if dur_start >= threshold:
                    dur_start = avg_dur / 2.0
                if is_counter:
                    if result > 0 and v[first] >= 0:
                        to_zero = sampled * (v[first] / result)
                    else:
                        to_zero = dur_start
                    if to_zero < dur_start:
                        dur_start = to_zero
                if dur_end >= threshold:
                    dur_end = avg_dur / 2.0
                if sampled != 0:
                    factor = (sampled + dur_start + dur_end) / sampled
                else:
                    factor = 1.0
                if is_rate:
                    factor = factor / range_s
                out[i, j] = result * factor
                present[i, j] = 1


def instant_value(
    const long long[:] t,
    const double[:] v,
    const long long[:] starts,
    const long long[:] ends,
    const long long[:] wend,
    long long range_ms,
    bint is_rate,
    double[:, :] out,
    unsigned char[:, :] present,
):
    """``irate`` (``is_rate``) / ``idelta``: from the last two samples of each window
    ``(wend[j] - range_ms, wend[j]]`` of series ``i`` (flat samples ``starts[i]:ends[i]``, ascending
    time); absent with fewer than two samples or when they share a timestamp. ``wend`` must be
    non-decreasing."""
    cdef Py_ssize_t n = starts.shape[0]
    cdef Py_ssize_t k = wend.shape[0]
    cdef Py_ssize_t i, j, s, e, lo, hi
    cdef long long dt
    cdef double cur, pv, result
    with nogil:
        for i in range(n):
            s = starts[i]
            e = ends[i]
            lo = s
            hi = s
            for j in range(k):
                _advance(t, e, wend[j] - range_ms, wend[j], &lo, &hi)
                dt = t[hi - 1] - t[hi - 2] if hi - lo >= 2 else 0
                if dt == 0:
                    out[i, j] = NAN
                    present[i, j] = 0
                    continue
                cur = v[hi - 1]
                pv = v[hi - 2]
                if is_rate:
                    result = cur if cur < pv else cur - pv
                    result = result / (<double>dt / 1000.0)
                else:
                    result = cur - pv
                out[i, j] = result
                present[i, j] = 1


def linear_regression(
    const long long[:] t,
    const double[:] v,
    const long long[:] w_lo,
    const long long[:] w_cnt,
    const long long[:] intercept_ms,
    double[:] slope_out,
    double[:] intercept_out,
):
    """Prometheus' ``linearRegression`` for every window (samples ``w_lo[w] .. w_lo[w] +
    w_cnt[w] - 1``, at least one), x in seconds relative to ``intercept_ms[w]``: compensated
    sums in sample order, the same operations as ``fn_range._linear_regression_replay``."""
    cdef Py_ssize_t nw = w_lo.shape[0]
    cdef Py_ssize_t w, p, lo, hi
    cdef double n, x, f, init_y, sx, cx, sy, cy, sxy, cxy, sx2, cx2, cov_xy, var_x, slope
    cdef bint const_y
    with nogil:
        for w in range(nw):
            lo = w_lo[w]
            hi = lo + w_cnt[w]
            init_y = v[lo]
            const_y = True
            sx = 0.0
            cx = 0.0
            sy = 0.0
            cy = 0.0
            sxy = 0.0
            cxy = 0.0
            sx2 = 0.0
            cx2 = 0.0
            for p in range(lo, hi):
                f = v[p]
                if p > lo and f != init_y:
                    const_y = False
                x = <double>(t[p] - intercept_ms[w]) / 1e3
                kahan_inc(x, &sx, &cx)
                kahan_inc(f, &sy, &cy)
                kahan_inc(x * f, &sxy, &cxy)
                kahan_inc(x * x, &sx2, &cx2)
            if const_y:
                if isinf(init_y):
                    slope_out[w] = NAN
                    intercept_out[w] = NAN
                else:
                    slope_out[w] = 0.0
                    intercept_out[w] = init_y
                continue
            n = <double>(hi - lo)
            sx = sx + cx
            sy = sy + cy
            sxy = sxy + cxy
            sx2 = sx2 + cx2
            cov_xy = sxy - sx * sy / n
            var_x = sx2 - sx * sx / n
            slope = cov_xy / var_x
            slope_out[w] = slope
            intercept_out[w] = sy / n - slope * sx / n


def counter_resets(const double[:] v, const long long[:] starts):
    """``fn_range._counter_resets_numpy``: ascending positions ``p >= 1`` with ``v[p] < v[p - 1]``
    that are not a series start (``starts``; as numpy indexes, a negative one counts from the end)."""
    cdef Py_ssize_t size = v.shape[0], p, i, n = 0, s
    if size < 2:
        return np.zeros(0, dtype=np.int64)
    start_arr = np.zeros(size, dtype=np.uint8)
    cdef unsigned char[::1] is_start = start_arr
    for i in range(starts.shape[0]):
        s = starts[i]
        if s < size:
            if s < 0:
                s += size
                if s < 0:
                    raise IndexError("series start out of bounds")
            is_start[s] = 1
    out_arr = np.empty(size - 1, dtype=np.int64)
    cdef long long[::1] out = out_arr
    with nogil:
        for p in range(1, size):
            if v[p] < v[p - 1] and not is_start[p]:
                out[n] = p
                n += 1
    return out_arr[:n]


def nondecreasing(const long long[:] e):
    """Whether ``e[j] >= e[j - 1]`` for every ``j`` (window ends a kernel above can walk)."""
    cdef Py_ssize_t j
    for j in range(1, e.shape[0]):
        if not e[j] >= e[j - 1]:
            return False
    return True
