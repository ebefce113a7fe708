# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native row selection in a segment sorted by (series id, ts): the rows of the series ``ids``
(sorted, unique) with ``lo <= ts <= hi``, grouped by series, in one pass of binary searches (two
per id for the series' rows, two for the time range). ``head._Segment.rows_in`` uses it; its numpy
equivalent is the reference (``tests/unit/store/test_head.py`` compares them)."""

import numpy as np

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uint32_t

from clearsight._bsearch cimport lower_bound, upper_bound


def rows_in(const uint32_t[::1] sid, const int64_t[::1] ts, const uint32_t[::1] ids, int64_t lo, int64_t hi):
    """Row positions (intp) of series ``ids`` with lo <= ts <= hi, grouped by series in id order."""
    cdef Py_ssize_t n = sid.shape[0], k = ids.shape[0], i, a, b, start = 0, total = 0, w = 0, r
    cdef Py_ssize_t[::1] bounds = np.empty(2 * k, dtype=np.intp)
    with nogil:
        for i in range(k):
            a = lower_bound(sid, start, n, ids[i])
            if a == n:
                bounds[2 * i] = 0
                bounds[2 * i + 1] = 0
                start = n
                continue
            b = upper_bound(sid, a, n, ids[i])
            start = b
            if a < b:
                a = lower_bound(ts, a, b, lo)
                b = upper_bound(ts, a, b, hi)
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


def head_bounds(const uint32_t[::1] ids, tuple seg_sid, tuple seg_ts, int64_t lo, int64_t hi):
    """For each series of ``ids`` (sorted, unique) and each segment (its ``sid`` and ``ts``
    columns, sorted by (series id, ts)): the rows ``[a, b)`` of the series with lo <= ts <= hi.
    Returns the bounds as int64 ``[(i * segments + s) * 2]`` = a, ``+ 1`` = b, and their total."""
    cdef Py_ssize_t k = ids.shape[0], nseg = len(seg_sid), s, i, a, b, start, n
    cdef int64_t total = 0
    out = np.empty(2 * k * nseg, dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef const uint32_t[::1] sid
    cdef const int64_t[::1] ts
    for s in range(nseg):
        sid = seg_sid[s]
        ts = seg_ts[s]
        n = sid.shape[0]
        start = 0
        with nogil:
            for i in range(k):
                a = lower_bound(sid, start, n, ids[i])
                b = upper_bound(sid, a, n, ids[i]) if a < n else a
                start = b
                if a < b:
                    a = lower_bound(ts, a, b, lo)
                    b = upper_bound(ts, a, b, hi)
                o[(i * nseg + s) * 2] = a
                o[(i * nseg + s) * 2 + 1] = b
                total += b - a
    return out, total


def assemble(const uint32_t[::1] ids, object perm, const int64_t[::1] bounds, tuple seg_ts, tuple seg_vals,
             const uint32_t[::1] c_sid, const int64_t[::1] kept, const int64_t[::1] c_ts, const double[::1] c_val):
    """One read's series as columns, in one pass: per series of ``ids`` (sorted, unique), taken in
    the order ``perm`` (positions into ``ids``; None: as they are), its decoded chunk samples
    (chunks ordered by (series, min ts), ``kept[j]`` samples from chunk ``j``, series ``c_sid[j]``)
    then its head rows, segment after segment (``bounds`` as ``head_bounds`` gives them).

    Returns (samples per series in output order, timestamps, values), or None when some series'
    pieces are not in strictly ascending time order as they come (late samples compacted after
    newer ones, or out-of-order rows in an older segment): the caller then sorts."""
    cdef Py_ssize_t k = ids.shape[0], nseg = len(seg_ts), nc = c_sid.shape[0]
    cdef Py_ssize_t i, j, jj, s, a, b, pos = 0
    cdef int64_t total = 0, t
    cdef const int64_t[::1] pv
    if perm is None:
        pv = np.arange(k, dtype=np.int64)
    else:
        pv = perm
    if pv.shape[0] != k:
        raise ValueError("perm must hold one position per id")
    if bounds.shape[0] != 2 * k * nseg or len(seg_vals) != nseg or kept.shape[0] != nc:
        raise ValueError("bounds, segments or chunks do not match")
    cstart_a = np.zeros(k, dtype=np.int64)
    ccount_a = np.zeros(k, dtype=np.int64)
    cdef int64_t[::1] cstart = cstart_a, ccount = ccount_a
    i = 0
    for j in range(nc):
        while i < k and ids[i] < c_sid[j]:
            i += 1
        if i == k or ids[i] != c_sid[j] or kept[j] < 0:
            raise ValueError("a chunk's series is not among the ids")
        if ccount[i] == 0:
            cstart[i] = pos
        elif cstart[i] + ccount[i] != pos:
            raise ValueError("a series' chunks are not consecutive")
        ccount[i] += kept[j]
        pos += kept[j]
    if pos > c_ts.shape[0] or pos > c_val.shape[0]:
        raise ValueError("kept counts exceed the decoded samples")
    counts_a = np.empty(k, dtype=np.int64)
    cdef int64_t[::1] counts = counts_a
    for jj in range(k):
        i = pv[jj]
        if i < 0 or i >= k:
            raise ValueError("perm out of range")
        t = ccount[i]
        for s in range(nseg):
            t += bounds[(i * nseg + s) * 2 + 1] - bounds[(i * nseg + s) * 2]
        counts[jj] = t
        total += t
    # the segments' columns as pointers, each bound checked against its segment once
    keep_alive = []
    cdef const int64_t[::1] sts
    cdef const double[::1] svals
    cdef const int64_t** tsp = <const int64_t**>PyMem_Malloc(max(nseg, 1) * sizeof(int64_t*))
    cdef const double** vsp = <const double**>PyMem_Malloc(max(nseg, 1) * sizeof(double*))
    cdef Py_ssize_t w
    if tsp == NULL or vsp == NULL:
        PyMem_Free(tsp)
        PyMem_Free(vsp)
        raise MemoryError()
    try:
        for s in range(nseg):
            sts = seg_ts[s]
            svals = seg_vals[s]
            if sts.shape[0] != svals.shape[0]:
                raise ValueError("a segment's columns differ in length")
            for i in range(k):
                a = bounds[(i * nseg + s) * 2]
                b = bounds[(i * nseg + s) * 2 + 1]
                if a < b and (a < 0 or b > sts.shape[0]):
                    raise ValueError("bounds outside a segment")
            keep_alive.append((sts, svals))
            tsp[s] = &sts[0] if sts.shape[0] else NULL
            vsp[s] = &svals[0] if svals.shape[0] else NULL
        ts_out = np.empty(total, dtype=np.int64)
        val_out = np.empty(total, dtype=np.float64)
        w = _fill(pv, bounds, nseg, tsp, vsp, cstart, ccount, c_ts, c_val, ts_out, val_out)
    finally:
        PyMem_Free(tsp)
        PyMem_Free(vsp)
    if w < 0:
        return None
    return counts_a, ts_out, val_out


cdef Py_ssize_t _fill(const int64_t[::1] pv, const int64_t[::1] bounds, Py_ssize_t nseg, const int64_t** tsp,
                      const double** vsp, const int64_t[::1] cstart, const int64_t[::1] ccount,
                      const int64_t[::1] c_ts, const double[::1] c_val, int64_t[::1] to, double[::1] vo):
    """Copies the pieces in order; -1 at the first sample not after its series' previous one."""
    cdef Py_ssize_t k = pv.shape[0], i, jj, s, r, a, b, w = 0
    cdef int64_t t, last = 0
    cdef bint started
    with nogil:
        for jj in range(k):
            i = pv[jj]
            started = False
            a = cstart[i]
            b = a + ccount[i]
            for r in range(a, b):
                t = c_ts[r]
                if started and t <= last:
                    return -1
                started = True
                last = t
                to[w] = t
                vo[w] = c_val[r]
                w += 1
            for s in range(nseg):
                a = bounds[(i * nseg + s) * 2]
                b = bounds[(i * nseg + s) * 2 + 1]
                for r in range(a, b):
                    t = tsp[s][r]
                    if started and t <= last:
                        return -1
                    started = True
                    last = t
                    to[w] = t
                    vo[w] = vsp[s][r]
                    w += 1
    return w
