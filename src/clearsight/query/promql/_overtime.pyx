# cython: boundscheck=False, wraparound=False, cdivision=True
"""Compiled ``*_over_time`` kernels (and ``changes``/``resets``) for float samples.

``over_time`` fills the (series x steps) output of one function in one call: for every series and
step it finds the window ``(wend[j] - range_ms, wend[j]]`` by binary search on the series' own
timestamps and reduces it in C. For a small query (one step, a handful of series) this replaces
the generic window machinery of ``fn_range`` (a global ``searchsorted`` over banded keys, the
``_Win`` masks, ``reduceat`` over an appended copy, the scatter back to (n, k)) that costs tens of
numpy calls on arrays of a few elements.

Every reduction performs the same IEEE-754 operations in the same order as the numpy path it
replaces, so results are bit-identical but for the sign of a NaN (the compiler may order a
commutative addition's operands either way, and x86 keeps the first NaN operand's sign; no NaN sign
reaches the API's output). tests/unit/query/promql/test_overtime_native.py checks this on random
data:

- ``sum``/``avg``: numpy's ``add.reduceat`` is the window's first value plus numpy's pairwise sum
  of the rest (8 accumulators, blocks of 128, ``-0.0`` as the empty sum); ``plain_window_sums``'
  conditioning test picks that sum or Prometheus' Kahan-Neumaier replay, as ``fn_range`` does.
- ``min``/``max``: Prometheus' loop (``cur > max || isNaN(max)``). This is the one intended
  difference: numpy's ``fmax.reduceat`` returns either zero when a window holds both ``0`` and
  ``-0`` (its SIMD reduction of long windows keeps the last), Prometheus and this kernel the first.
- ``ts_of_max``/``ts_of_min``: the last sample equal to the NaN-ignoring extreme, as the padded
  numpy path.

Built with ``-ffp-contract=off`` so the compiler never fuses a multiply and an add.
"""

from libc.math cimport NAN, fabs, isinf, isnan, isfinite
from clearsight.query.promql._kahan cimport kahan_inc

import numpy as np

cdef enum:
    OP_COUNT = 0
    OP_PRESENT = 1
    OP_LAST = 2
    OP_FIRST = 3
    OP_TS_LAST = 4
    OP_TS_FIRST = 5
    OP_MAX = 6
    OP_MIN = 7
    OP_SUM = 8
    OP_AVG = 9
    OP_CHANGES = 10
    OP_RESETS = 11
    OP_TS_MAX = 12
    OP_TS_MIN = 13

# the ops, for Python
COUNT = OP_COUNT
PRESENT = OP_PRESENT
LAST = OP_LAST
FIRST = OP_FIRST
TS_LAST = OP_TS_LAST
TS_FIRST = OP_TS_FIRST
MAX = OP_MAX
MIN = OP_MIN
SUM = OP_SUM
AVG = OP_AVG
CHANGES = OP_CHANGES
RESETS = OP_RESETS
TS_MAX = OP_TS_MAX
TS_MIN = OP_TS_MIN

# numpy's PW_BLOCKSIZE (numpy/_core/src/umath/loops_utils.h.src)
cdef enum:
    _PW_BLOCK = 128

# Samples plus windows above which ``over_time`` releases the GIL (~50 us of work)
cdef enum:
    _NOGIL_MIN_WORK = 1 << 15


cdef inline Py_ssize_t _after(const long long[::1] t, Py_ssize_t a, Py_ssize_t b, long long x) noexcept nogil:
    """The first index in ``[a, b)`` with ``t[i] > x`` (``b`` when none): ``searchsorted`` right."""
    cdef Py_ssize_t mid
    while a < b:
        mid = a + (b - a) // 2
        if t[mid] <= x:
            a = mid + 1
        else:
            b = mid
    return a


cdef double _pairwise(const double* a, Py_ssize_t n, bint absval) noexcept nogil:
    """numpy's ``pairwise_sum`` of ``a[:n]`` (of ``|a[:n]|`` with ``absval``)."""
    cdef Py_ssize_t i, n2
    cdef double res, r0, r1, r2, r3, r4, r5, r6, r7
    if n < 8:
        res = -0.0
        for i in range(n):
            res += fabs(a[i]) if absval else a[i]
        return res
    if n <= _PW_BLOCK:
        if absval:
            r0 = fabs(a[0]); r1 = fabs(a[1]); r2 = fabs(a[2]); r3 = fabs(a[3])
            r4 = fabs(a[4]); r5 = fabs(a[5]); r6 = fabs(a[6]); r7 = fabs(a[7])
        else:
            r0 = a[0]; r1 = a[1]; r2 = a[2]; r3 = a[3]
            r4 = a[4]; r5 = a[5]; r6 = a[6]; r7 = a[7]
        i = 8
        while i < n - (n % 8):
            if absval:
                r0 += fabs(a[i]); r1 += fabs(a[i + 1]); r2 += fabs(a[i + 2]); r3 += fabs(a[i + 3])
                r4 += fabs(a[i + 4]); r5 += fabs(a[i + 5]); r6 += fabs(a[i + 6]); r7 += fabs(a[i + 7])
            else:
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3]
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += fabs(a[i]) if absval else a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, n2, absval) + _pairwise(a + n2, n - n2, absval)


cdef inline bint _plain_sum(const double* w, Py_ssize_t cnt, double limit, double* out) noexcept nogil:
    """``fn_range.plain_window_sums`` for one window: its ``add.reduceat`` sum, and whether that
    plain sum is known to agree with the compensated one."""
    cdef double s = w[0], a = fabs(w[0])
    if cnt > 1:
        s = s + _pairwise(w + 1, cnt - 1, False)
        a = a + _pairwise(w + 1, cnt - 1, True)
    out[0] = s
    return (isfinite(a) and a * <double>cnt <= limit * fabs(s)) or a == 0


cdef inline double _kahan_sum(const double* w, Py_ssize_t cnt) noexcept nogil:
    """``fn_range._kahan_window_sum`` for one window."""
    cdef double s = 0.0, c = 0.0
    cdef Py_ssize_t p
    for p in range(cnt):
        kahan_inc(w[p], &s, &c)
    return s if isinf(s) else s + c


cdef inline double _replay_avg(const double* w, Py_ssize_t cnt) noexcept nogil:
    """``fn_range._replay_window_avg`` for one window."""
    cdef double s = w[0], c = 0.0, mean = 0.0, count, q, ns, nc, f
    cdef bint incr = False
    cdef Py_ssize_t p
    for p in range(1, cnt):
        f = w[p]
        count = <double>(p + 1)
        if not incr:
            ns = s
            nc = c
            kahan_inc(f, &ns, &nc)
            if not isinf(ns):
                s = ns
                c = nc
            else:
                incr = True
                mean = s / (count - 1)
                c = c / (count - 1)
        if incr:
            q = (count - 1) / count
            mean = q * mean
            c = q * c
            kahan_inc(f / count, &mean, &c)
    if incr:
        return mean + c
    return s / <double>cnt + c / <double>cnt


cdef inline double _extreme(const double* w, Py_ssize_t cnt, bint use_max) noexcept nogil:
    """Prometheus' ``max_over_time`` (``use_max``) / ``min_over_time`` loop (``cur > max ||
    isNaN(max)``), with four independent running extremes (no loop-carried compare chain): the
    extreme of the non-NaN values, whose zero is the window's first zero (all that loop can keep:
    before it every value was NaN or of the other sign, after it no value beats it); the last
    NaN when all are NaN."""
    cdef Py_ssize_t p = 0, i
    cdef double r0, r1, r2, r3, f
    while p < cnt and isnan(w[p]):
        p += 1
    if p == cnt:
        return w[cnt - 1]
    r0 = w[p]
    r1 = r0
    r2 = r0
    r3 = r0
    i = p + 1
    if use_max:
        while i + 4 <= cnt:
            f = w[i]; r0 = f if f > r0 else r0
            f = w[i + 1]; r1 = f if f > r1 else r1
            f = w[i + 2]; r2 = f if f > r2 else r2
            f = w[i + 3]; r3 = f if f > r3 else r3
            i += 4
        while i < cnt:
            f = w[i]; r0 = f if f > r0 else r0
            i += 1
        r0 = r1 if r1 > r0 else r0
        r2 = r3 if r3 > r2 else r2
        r0 = r2 if r2 > r0 else r0
    else:
        while i + 4 <= cnt:
            f = w[i]; r0 = f if f < r0 else r0
            f = w[i + 1]; r1 = f if f < r1 else r1
            f = w[i + 2]; r2 = f if f < r2 else r2
            f = w[i + 3]; r3 = f if f < r3 else r3
            i += 4
        while i < cnt:
            f = w[i]; r0 = f if f < r0 else r0
            i += 1
        r0 = r1 if r1 < r0 else r0
        r2 = r3 if r3 < r2 else r2
        r0 = r2 if r2 < r0 else r0
    if r0 == 0:
        while w[p] != 0:
            p += 1
        return w[p]
    return r0


cdef inline Py_ssize_t _extreme_pos(const double* w, Py_ssize_t cnt, bint use_max) noexcept nogil:
    """``fn_range._ts_of_extreme``'s position: the last sample equal to the NaN-ignoring extreme,
    the last sample when all are NaN."""
    cdef double ext = _extreme(w, cnt, use_max)
    cdef Py_ssize_t p = cnt - 1
    if isnan(ext):
        return p
    while w[p] != ext:
        p -= 1
    return p


cdef inline int _transition(int op, double cur, double prev) noexcept nogil:
    """Whether ``prev -> cur`` counts for ``changes`` (a change, NaN to NaN is none) or ``resets``."""
    if op == OP_CHANGES:
        return cur != prev and not (isnan(cur) and isnan(prev))
    return cur < prev


cdef inline double _reduce(int op, const long long[::1] t, const double[::1] v, Py_ssize_t lo,
                           Py_ssize_t hi, double limit) noexcept nogil:
    """Function ``op`` over the (non-empty) window ``[lo, hi)``."""
    cdef Py_ssize_t cnt = hi - lo, p, n
    cdef double r, f, prev
    cdef const double* w = &v[lo]
    if op == OP_COUNT:
        return <double>cnt
    if op == OP_PRESENT:
        return 1.0
    if op == OP_LAST:
        return v[hi - 1]
    if op == OP_FIRST:
        return v[lo]
    if op == OP_TS_LAST:
        return <double>t[hi - 1] / 1000.0
    if op == OP_TS_FIRST:
        return <double>t[lo] / 1000.0
    if op == OP_MAX or op == OP_MIN:
        return _extreme(w, cnt, op == OP_MAX)
    if op == OP_SUM:
        if _plain_sum(w, cnt, limit, &r):
            return r
        return _kahan_sum(w, cnt)
    if op == OP_AVG:
        if _plain_sum(w, cnt, limit, &r):
            return r / <double>cnt
        return _replay_avg(w, cnt)
    if op == OP_CHANGES or op == OP_RESETS:
        n = 0
        for p in range(1, cnt):
            n += _transition(op, w[p], w[p - 1])
        return <double>n
    # OP_TS_MAX, OP_TS_MIN
    return <double>t[lo + _extreme_pos(w, cnt, op == OP_TS_MAX)] / 1000.0


cdef Py_ssize_t _fill(int op, const long long[::1] t, const double[::1] v, const long long[:] starts,
                      const long long[:] ends, const long long[:] wend, long long range_ms, double limit,
                      bint prefix, long long[::1] counted, double[:, :] out,
                      unsigned char[:, :] present) noexcept nogil:
    """``over_time``'s loop (arguments checked)."""
    cdef Py_ssize_t n = starts.shape[0], k = wend.shape[0]
    cdef Py_ssize_t i, j, s, e, lo, hi, lo_from, p, filled = 0
    cdef long long we, prev_we
    for i in range(n):
        s = starts[i]
        e = ends[i]
        lo = s
        hi = s
        prev_we = 0
        if prefix and e > s:
            counted[1] = 0
            for p in range(s + 1, e):
                counted[p - s + 1] = counted[p - s] + _transition(op, v[p], v[p - 1])
        for j in range(k):
            we = wend[j]
            # window ends of a query rise: each search starts where the last window did
            lo_from = lo if j > 0 and we >= prev_we else s
            lo = _after(t, lo_from, e, we - range_ms)
            hi = _after(t, lo, e, we)
            prev_we = we
            if hi == lo:
                out[i, j] = NAN
                present[i, j] = 0
            else:
                if prefix:
                    out[i, j] = <double>(counted[hi - s] - counted[lo - s + 1])
                else:
                    out[i, j] = _reduce(op, t, v, lo, hi, limit)
                present[i, j] = 1
                filled += 1
    return filled


def over_time(
    int op,
    const long long[::1] t,
    const double[::1] v,
    const long long[:] starts,
    const long long[:] ends,
    const long long[:] wend,
    long long range_ms,
    double limit,
    double[:, :] out,
    unsigned char[:, :] present,
):
    """Fills ``out[i, j]`` / ``present[i, j]`` with function ``op`` (a constant of this module)
    over the window ``(wend[j] - range_ms, wend[j]]`` of series ``i`` (flat samples
    ``starts[i]:ends[i]``, ascending time): NaN / 0 for an empty window. ``limit`` is
    ``fn_range._CONDITION_LIMIT`` (sum and avg). Returns the number of windows with a value."""
    if op < OP_COUNT or op > OP_TS_MIN:
        raise ValueError(f"unknown over_time op {op}")
    if not (starts.shape[0] == ends.shape[0] == out.shape[0] == present.shape[0]
            and wend.shape[0] == out.shape[1] == present.shape[1]):
        raise ValueError("over_time: mismatched shapes")
    cdef Py_ssize_t n = starts.shape[0]
    cdef Py_ssize_t k = wend.shape[0]
    cdef Py_ssize_t size = t.shape[0]
    cdef Py_ssize_t i, longest = 0, filled
    if v.shape[0] != size:
        raise ValueError("over_time: timestamps and values differ in length")
    for i in range(n):
        if not 0 <= starts[i] <= ends[i] <= size:
            raise ValueError("over_time: series bounds out of range")
        longest = max(longest, ends[i] - starts[i])
    # changes/resets over several steps: the windows of a series overlap, so count its transitions
    # once (``counted[q]``: those before its sample ``q``) and answer each window by a difference
    cdef bint prefix = (op == OP_CHANGES or op == OP_RESETS) and k > 1
    counted_arr = np.zeros(longest + 1 if prefix else 0, dtype=np.int64)
    cdef long long[::1] counted = counted_arr
    # A small call (a dashboard's instant query, often run on the event loop) keeps the GIL: taking
    # it back after releasing it can wait a switch interval (5 ms) behind a busy thread.
    if size + n * k <= _NOGIL_MIN_WORK:
        return _fill(op, t, v, starts, ends, wend, range_ms, limit, prefix, counted, out, present)
    with nogil:
        filled = _fill(op, t, v, starts, ends, wend, range_ms, limit, prefix, counted, out, present)
    return filled
