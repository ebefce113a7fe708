# cython: boundscheck=False, wraparound=False
"""Native locating of a read's series and chunks by their time bounds, for the small reads where
numpy's fixed cost per call (a few of them on arrays of a few elements) was most of the work.

``ids_in_range``: the series of a selection with samples in a range (the store's per-series
min/max timestamps); ``chunks_in_range``: the catalogue positions of the chunks of some series
overlapping a range; ``samples_inside``: the samples of chunks wholly inside a range (what a read
under a sample limit is certain to return); ``samples_overlapping``: the samples of the chunks of
some series overlapping a range (a bound on what a read of them returns). Their numpy equivalents are the references
(``EmbeddedMetricsStore._ids``, ``catalog.ChunkRows.find_py``, ``samples_inside_py`` and
``samples_overlapping_py``;
``tests/unit/store/test_inrange.py`` compares them)."""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint32_t

from clearsight._bsearch cimport lower_bound, upper_bound
from clearsight._ndarray cimport data_1d

cnp.import_array()


def ids_in_range(object ids, object min_ts, object max_ts, int64_t floor, int64_t lo, int64_t hi):
    """The ids whose ``[max(min_ts[id], floor), max_ts[id]]`` meets ``[lo, hi]``, in their order:
    ``ids`` itself when all of them do, else a new uint32 array. The arrays
    are read in place (``_ndarray.data_1d``: a typed memoryview's acquisition per argument was most of
    this call's cost on a small read): ``ids`` uint32, the bounds int64, each 1-d, contiguous."""
    cdef Py_ssize_t k, n, nmax, i, w = 0
    cdef const void* d
    data_1d(ids, cnp.NPY_UINT32, &d, &k)
    cdef const uint32_t* idp = <const uint32_t*>d
    data_1d(min_ts, cnp.NPY_INT64, &d, &n)
    cdef const int64_t* mn = <const int64_t*>d
    data_1d(max_ts, cnp.NPY_INT64, &d, &nmax)
    cdef const int64_t* mx = <const int64_t*>d
    cdef uint32_t s
    cdef uint32_t* o
    n = min(n, nmax)
    for i in range(k):
        if idp[i] >= n:
            raise ValueError("a series id past the per-series bounds")
    for i in range(k):
        s = idp[i]
        if max(mn[s], floor) <= hi and mx[s] >= lo:
            w += 1
    if w == k:
        return ids
    out = np.empty(w, dtype=np.uint32)
    o = <uint32_t*>cnp.PyArray_DATA(<cnp.ndarray>out)
    w = 0
    for i in range(k):
        s = idp[i]
        if max(mn[s], floor) <= hi and mx[s] >= lo:
            o[w] = s
            w += 1
    return out


cdef Py_ssize_t _overlapping(const uint32_t[::1] series_id, const int64_t[::1] min_ts, const int64_t[::1] max_ts,
                             const uint32_t[::1] ids, int64_t lo, int64_t hi, Py_ssize_t* out, const int64_t* n,
                             int64_t* total) noexcept:
    """Walks the chunks of the series ``ids`` (sorted, unique) with max_ts >= lo and min_ts <= hi, in
    catalogue order: returns how many, writes their positions to ``out`` and adds their ``n`` to
    ``total`` (each when not NULL)."""
    cdef Py_ssize_t m = series_id.shape[0], k = ids.shape[0], i, a, b, r, start = 0, w = 0
    for i in range(k):
        a = lower_bound(series_id, start, m, ids[i])
        b = upper_bound(series_id, a, m, ids[i]) if a < m else a
        start = b
        for r in range(a, b):
            if max_ts[r] >= lo and min_ts[r] <= hi:
                if out != NULL:
                    out[w] = r
                if n != NULL:
                    total[0] += n[r]
                w += 1
    return w


def chunks_in_range(const uint32_t[::1] series_id, const int64_t[::1] min_ts, const int64_t[::1] max_ts,
                    const uint32_t[::1] ids, int64_t lo, int64_t hi):
    """Positions (intp) of the chunks of the series ``ids`` (sorted, unique) with max_ts >= lo and
    min_ts <= hi, in catalogue order (the columns sorted by (series id, min_ts))."""
    cdef Py_ssize_t n = series_id.shape[0]
    if min_ts.shape[0] != n or max_ts.shape[0] != n:
        raise ValueError("catalogue columns differ in length")
    out = np.empty(_overlapping(series_id, min_ts, max_ts, ids, lo, hi, NULL, NULL, NULL), dtype=np.intp)
    if out.shape[0] == 0:
        return out
    cdef Py_ssize_t[::1] o = out
    _overlapping(series_id, min_ts, max_ts, ids, lo, hi, &o[0], NULL, NULL)
    return out


def samples_inside(const Py_ssize_t[::1] pos, const int64_t[::1] min_ts, const int64_t[::1] max_ts,
                   const int64_t[::1] n, int64_t lo, int64_t hi):
    """The samples (``n``) of the chunks at ``pos`` lying wholly inside [lo, hi]."""
    cdef Py_ssize_t m = n.shape[0], i, p
    cdef int64_t total = 0
    if min_ts.shape[0] != m or max_ts.shape[0] != m:
        raise ValueError("catalogue columns differ in length")
    for i in range(pos.shape[0]):
        p = pos[i]
        if p < 0 or p >= m:
            raise ValueError("a position past the catalogue")
        if min_ts[p] >= lo and max_ts[p] <= hi:
            total += n[p]
    return total


def samples_overlapping(const uint32_t[::1] series_id, const int64_t[::1] min_ts, const int64_t[::1] max_ts,
                        const int64_t[::1] n, const uint32_t[::1] ids, int64_t lo, int64_t hi):
    """The samples (``n``) of the chunks of the series ``ids`` (sorted, unique) with max_ts >= lo and
    min_ts <= hi: ``n[chunks_in_range(...)].sum()`` without the positions."""
    cdef Py_ssize_t m = series_id.shape[0]
    cdef int64_t total = 0
    if min_ts.shape[0] != m or max_ts.shape[0] != m or n.shape[0] != m:
        raise ValueError("catalogue columns differ in length")
    if m:
        _overlapping(series_id, min_ts, max_ts, ids, lo, hi, NULL, &n[0], &total)
    return total
