# cython: boundscheck=False, wraparound=False, cdivision=True
"""Compiled selector kernels. ``latest_index``/``latest_rows``: for every series and step, the
latest sample in ``(t - lookback, t]`` that is not a stale marker (``engine.latest_sample_index``).
``range_runs``: a range selector's stale markers and non-empty series (``engine._float_matrix``).

The numpy path keys every sample as ``series * span + (ts - lo)`` and makes one ``searchsorted``
over all series, then a dozen whole-array operations; for the few series and steps of a dashboard
panel those operations' fixed costs are most of a selector's time. This walks each series once
with a binary search per step, with the same answers: the index of the latest sample at or before
the step (clipped at 0 when there is none, as the numpy path clips), and whether it is inside the
lookback and not a stale marker. tests/unit/query/promql/test_selector_native.py compares both
paths on random data.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from clearsight._bsearch cimport upper_bound

import numpy as np

cdef uint64_t STALE_BITS = 0x7FF0000000000002


cdef int _check_columns(const int64_t[::1] offsets, Py_ssize_t samples, Py_ssize_t values,
                        bint need_samples) except -1:
    """Raises unless ``offsets`` index ``samples`` timestamps aligned with as many values (at least
    one when ``need_samples``)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    if n < 0 or samples != values or (need_samples and samples == 0):
        raise ValueError("offsets, timestamps and values differ in shape, or no samples")
    if n > 0 and (offsets[0] < 0 or offsets[n] > samples):
        raise ValueError("offsets outside the samples")
    return 0


cdef inline bint _latest(const int64_t[::1] timestamps, const double[::1] values, int64_t a, int64_t b,
                         int64_t e, int64_t lo, int64_t lookback, int64_t* idx) noexcept nogil:
    """Whether the series ``[a, b)`` has its latest sample at ``e`` in ``(e - lookback, e]`` and
    not a stale marker; ``idx``: that sample's position (the last one <= ``e``, a step before ``lo``
    clipped to ``lo - 1`` as the numpy path clips it; 0 when there is none before)."""
    cdef int64_t s = e if e >= lo - 1 else lo - 1
    cdef int64_t p = upper_bound(timestamps, a, b, s) - 1
    cdef uint64_t bits
    cdef bint good = False
    if p >= a:
        memcpy(&bits, &values[p], 8)
        good = timestamps[p] > e - lookback and bits != STALE_BITS
    idx[0] = p if p > 0 else 0
    return good


def latest_index(const int64_t[::1] offsets, const int64_t[::1] timestamps, const double[::1] values,
                 const int64_t[::1] eff, int64_t lo, int64_t lookback):
    """(idx, ok): int64 and bool arrays of shape (series, steps)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, k = eff.shape[0], i, j
    _check_columns(offsets, timestamps.shape[0], values.shape[0], False)
    idx_arr = np.empty((n, k), dtype=np.int64)
    ok_arr = np.empty((n, k), dtype=np.bool_)
    cdef int64_t[:, ::1] idx = idx_arr
    cdef unsigned char[:, ::1] ok = ok_arr.view(np.uint8)
    with nogil:
        for i in range(n):
            for j in range(k):
                ok[i, j] = _latest(timestamps, values, offsets[i], offsets[i + 1], eff[j], lo, lookback, &idx[i, j])
    return idx_arr, ok_arr


def latest_rows(const int64_t[::1] offsets, const int64_t[::1] timestamps, const double[::1] values,
                const int64_t[::1] eff, int64_t lo, int64_t lookback):
    """``latest_index`` with the gather done: (values, present, sample_ts, rows) where ``values``
    and ``sample_ts`` are ``values[idx]`` and ``timestamps[idx]`` (idx clipped as ``latest_index``
    clips it, so absent cells hold what the numpy gather would) and ``rows`` counts the series
    present at some step (``vecutil.compact`` keeps them all when it equals the series count).
    Needs at least one sample (the gather of an empty column has nothing to read)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, k = eff.shape[0], i, j, rows = 0
    cdef int64_t p
    cdef bint any_ok, good
    _check_columns(offsets, timestamps.shape[0], values.shape[0], True)
    val_arr = np.empty((n, k), dtype=np.float64)
    ok_arr = np.empty((n, k), dtype=np.bool_)
    ts_arr = np.empty((n, k), dtype=np.int64)
    cdef double[:, ::1] val = val_arr
    cdef int64_t[:, ::1] sts = ts_arr
    cdef unsigned char[:, ::1] ok = ok_arr.view(np.uint8)
    with nogil:
        for i in range(n):
            any_ok = False
            for j in range(k):
                good = _latest(timestamps, values, offsets[i], offsets[i + 1], eff[j], lo, lookback, &p)
                ok[i, j] = good
                any_ok = any_ok or good
                val[i, j] = values[p]
                sts[i, j] = timestamps[p]
            if any_ok:
                rows += 1
    return val_arr, ok_arr, ts_arr, rows


def range_runs(const int64_t[::1] offsets, const double[::1] values):
    """For a range selector's columns: (gone, nonempty), the ascending positions of the stale
    markers (int64) and, when some series has no sample once they are dropped, the ascending
    indices of the series that have one (int64; None when every series has), in one pass where
    ``engine._float_matrix`` made five numpy calls."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, size = values.shape[0], i, p, ng = 0, nn = 0
    cdef int64_t a, b, kept
    cdef uint64_t bits
    if n < 0 or (n > 0 and (offsets[0] < 0 or offsets[n] > size)):
        raise ValueError("offsets outside the samples")
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            raise ValueError("offsets decrease")
    gone_arr = np.empty(size, dtype=np.int64)
    keep_arr = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] gone = gone_arr
    cdef int64_t[::1] keep = keep_arr
    with nogil:
        for p in range(size):
            memcpy(&bits, &values[p], 8)
            if bits == STALE_BITS:
                gone[ng] = p
                ng += 1
        for i in range(n):
            a = offsets[i]
            b = offsets[i + 1]
            kept = 0
            for p in range(a, b):
                memcpy(&bits, &values[p], 8)
                if bits != STALE_BITS:
                    kept = 1
                    break
            if kept:
                keep[nn] = i
                nn += 1
    return gone_arr[:ng].copy(), (None if nn == n else keep_arr[:nn].copy())
