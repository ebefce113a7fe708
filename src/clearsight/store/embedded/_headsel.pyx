# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native row selection in a segment sorted by (series id, ts): the rows of the series ``ids``
(sorted, unique) with ``lo <= ts <= hi``, grouped by series, in one pass of binary searches (two
per id for the series' rows, two for the time range). ``head._Segment.rows_in`` uses it; its numpy
equivalent is the reference (``tests/unit/store/test_head.py`` compares them)."""

import numpy as np

from libc.stdint cimport int64_t, uint32_t


ctypedef fused key_t:
    uint32_t
    int64_t


cdef inline Py_ssize_t _lower(const key_t[::1] a, Py_ssize_t lo, Py_ssize_t hi, key_t x) nogil:
    """First position in a[lo:hi] (sorted) whose value is >= x."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline Py_ssize_t _upper(const key_t[::1] a, Py_ssize_t lo, Py_ssize_t hi, key_t x) nogil:
    """First position in a[lo:hi] (sorted) whose value is > x."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def rows_in(const uint32_t[::1] sid, const int64_t[::1] ts, const uint32_t[::1] ids, int64_t lo, int64_t hi):
    """Row positions (intp) of series ``ids`` with lo <= ts <= hi, grouped by series in id order."""
    cdef Py_ssize_t n = sid.shape[0], k = ids.shape[0], i, a, b, start = 0, total = 0, w = 0, r
    cdef Py_ssize_t[::1] bounds = np.empty(2 * k, dtype=np.intp)
    with nogil:
        for i in range(k):
            a = _lower(sid, start, n, ids[i])
            if a == n:
                bounds[2 * i] = 0
                bounds[2 * i + 1] = 0
                start = n
                continue
            b = _upper(sid, a, n, ids[i])
            start = b
            if a < b:
                a = _lower(ts, a, b, lo)
                b = _upper(ts, a, b, hi)
            bounds[2 * i] = a
            bounds[2 * i + 1] = b
            total += b - a
    out = np.empty(total, dtype=np.intp)
    cdef Py_ssize_t[::1] o = out
    with nogil:
        for i in range(k):
            for r in range(bounds[2 * i], bounds[2 * i + 1]):
                o[w] = r
                w += 1
    return out
