# cython: boundscheck=False, wraparound=False, cdivision=True
"""Compiled selector kernels. ``latest_index``/``latest_rows``: for every series and step, the
latest sample in ``(t - lookback, t]`` that is not a stale marker (``engine.latest_sample_index``).
``range_runs``: a range selector's stale markers and non-empty series (``engine._float_matrix``).

The numpy path keys every sample as ``series * span + (ts - lo)`` and makes one ``searchsorted``
over all series, then a dozen whole-array operations; for the few series and steps of a dashboard
panel those operations' fixed costs are most of a selector's time. This walks each series once,
steps in ascending order (a range query's) by one forward pass through its samples (looking one
or two samples ahead, else searching), other steps by a binary search each, with the same answers: the index of the latest sample at or before
the step (clipped at 0 when there is none, as the numpy path clips), and whether it is inside the
lookback and not a stale marker. tests/unit/query/promql/test_selector_native.py compares both
paths on random data.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer

from clearsight._bsearch cimport ptr_bound
from clearsight._buffers cimport take8

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef uint64_t STALE_BITS = 0x7FF0000000000002


cdef int _check_columns(const int64_t[::1] offsets, Py_ssize_t samples, Py_ssize_t values,
                        bint need_samples) except -1:
    """Raises unless ``offsets`` (non-decreasing) index ``samples`` timestamps aligned with as many
    values (at least one when ``need_samples``)."""
    return _check_pointers(&offsets[0] if offsets.shape[0] else NULL, offsets.shape[0] - 1, samples, values,
                           need_samples)


cdef int _check_pointers(const int64_t* offsets, Py_ssize_t n, Py_ssize_t samples, Py_ssize_t values,
                         bint need_samples) except -1:
    """``_check_columns`` on raw offsets (``n`` series)."""
    cdef Py_ssize_t i
    if n < 0 or samples != values or (need_samples and samples == 0):
        raise ValueError("offsets, timestamps and values differ in shape, or no samples")
    if n > 0 and (offsets[0] < 0 or offsets[n] > samples):
        raise ValueError("offsets outside the samples")
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            raise ValueError("offsets decrease")
    return 0


cdef inline bint _latest(const int64_t* timestamps, const double* values, int64_t a, int64_t b,
                         int64_t e, int64_t lo, int64_t lookback, int64_t* idx) noexcept nogil:
    """Whether the series ``[a, b)`` has its latest sample at ``e`` in ``(e - lookback, e]`` and
    not a stale marker; ``idx``: that sample's position (the last one <= ``e``, a step before ``lo``
    clipped to ``lo - 1`` as the numpy path clips it; 0 when there is none before). On raw pointers,
    as ``_walk`` shares them."""
    cdef int64_t s = e if e >= lo - 1 else lo - 1
    cdef int64_t p = a + ptr_bound(timestamps + a, b - a, s, True) - 1
    return _judge(timestamps, values, a, p, e, lookback, idx)


cdef inline bint _judge(const int64_t* timestamps, const double* values, int64_t a, int64_t p,
                        int64_t e, int64_t lookback, int64_t* idx) noexcept nogil:
    """``_latest``'s verdict on ``p``, the series' last sample at or before the step (``a - 1``: none)."""
    cdef uint64_t bits
    cdef bint good = False
    if p >= a:
        memcpy(&bits, &values[p], 8)
        good = timestamps[p] > e - lookback and bits != STALE_BITS
    idx[0] = p if p > 0 else 0
    return good


cdef inline int64_t _after(const int64_t* timestamps, int64_t q, int64_t b, int64_t s) noexcept nogil:
    """The first position in ``[q, b)`` whose sample is after ``s``, knowing none before ``q`` is
    (steps in order: the next step's answer is at or after this one's). Looks one and two samples
    ahead before searching: consecutive steps of a panel are usually a scrape or two apart."""
    if q >= b or timestamps[q] > s:
        return q
    q += 1
    if q >= b or timestamps[q] > s:
        return q
    return q + ptr_bound(timestamps + q, b - q, s, True)


cdef void _walk(const int64_t* timestamps, const double* values, int64_t a, int64_t b, const int64_t* eff,
                Py_ssize_t k, int64_t lo, int64_t lookback, int64_t* idx, unsigned char* ok) noexcept nogil:
    """``_latest`` of the series ``[a, b)`` at every step of ``eff``: a binary search per step, or,
    over steps in ascending order, one forward walk (``_after``) through its samples."""
    cdef Py_ssize_t j
    cdef int64_t s, q = a, prev = 0
    cdef bint ascending = True
    for j in range(1, k):
        if eff[j] < eff[j - 1]:
            ascending = False
            break
    if not ascending:
        for j in range(k):
            ok[j] = _latest(timestamps, values, a, b, eff[j], lo, lookback, &idx[j])
        return
    for j in range(k):
        s = eff[j] if eff[j] >= lo - 1 else lo - 1
        q = _after(timestamps, q, b, s)
        ok[j] = _judge(timestamps, values, a, q - 1, eff[j], lookback, &idx[j])


def latest_index(const int64_t[::1] offsets, const int64_t[::1] timestamps, const double[::1] values,
                 const int64_t[::1] eff, int64_t lo, int64_t lookback):
    """(idx, ok): int64 and bool arrays of shape (series, steps)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, k = eff.shape[0], i, j
    _check_columns(offsets, timestamps.shape[0], values.shape[0], False)
    idx_arr = np.empty((n, k), dtype=np.int64)
    ok_arr = np.empty((n, k), dtype=np.bool_)
    cdef int64_t[:, ::1] idx = idx_arr
    cdef unsigned char[:, ::1] ok = ok_arr.view(np.uint8)
    cdef const int64_t* tp = &timestamps[0] if timestamps.shape[0] else NULL
    cdef const double* vp = &values[0] if values.shape[0] else NULL
    if n == 0 or k == 0:
        return idx_arr, ok_arr
    with nogil:
        for i in range(n):
            _walk(tp, vp, offsets[i], offsets[i + 1], &eff[0], k, lo, lookback, &idx[i, 0], &ok[i, 0])
    return idx_arr, ok_arr


def latest_rows(object offsets, object timestamps, object values, object eff, int64_t lo, int64_t lookback):
    """``latest_index`` with the gather done: (values, present, sample_ts, rows) where ``values``
    and ``sample_ts`` are ``values[idx]`` and ``timestamps[idx]`` (idx clipped as ``latest_index``
    clips it, so absent cells hold what the numpy gather would) and ``rows`` counts the series
    present at some step (``vecutil.compact`` keeps them all when it equals the series count).
    Needs at least one sample (the gather of an empty column has nothing to read). Takes contiguous
    int64 offsets, timestamps and steps and float64 values through their buffers and writes the
    outputs through theirs (no typed memoryview objects: ~1 us of a small selector's call)."""
    cdef Py_buffer bufs[7]
    cdef int held = 0
    cdef Py_ssize_t n, k, i, j, rows = 0
    cdef int64_t p
    cdef bint any_ok
    cdef const int64_t* op
    cdef const int64_t* tp
    cdef const double* vp
    cdef const int64_t* ep
    cdef double* val
    cdef unsigned char* ok
    cdef int64_t* sts
    cdef int64_t* idx
    try:
        take8(offsets, &bufs[0], b'q')
        held = 1
        take8(timestamps, &bufs[1], b'q')
        held = 2
        take8(values, &bufs[2], b'd')
        held = 3
        take8(eff, &bufs[3], b'q')
        held = 4
        n = bufs[0].shape[0] - 1
        k = bufs[3].shape[0]
        op = <const int64_t*>bufs[0].buf
        tp = <const int64_t*>bufs[1].buf
        vp = <const double*>bufs[2].buf
        ep = <const int64_t*>bufs[3].buf
        _check_pointers(op, n, bufs[1].shape[0], bufs[2].shape[0], True)
        val_arr = np.empty((n, k), dtype=np.float64)
        ok_arr = np.empty((n, k), dtype=np.bool_)
        ts_arr = np.empty((n, k), dtype=np.int64)
        if n == 0 or k == 0:
            return val_arr, ok_arr, ts_arr, rows
        PyObject_GetBuffer(val_arr, &bufs[4], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
        held = 5
        PyObject_GetBuffer(ok_arr, &bufs[5], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
        held = 6
        PyObject_GetBuffer(ts_arr, &bufs[6], PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
        held = 7
        val = <double*>bufs[4].buf
        ok = <unsigned char*>bufs[5].buf
        sts = <int64_t*>bufs[6].buf
        # the positions go to the timestamps' row first, then each is replaced by its sample's time
        with nogil:
            for i in range(n):
                idx = sts + i * k
                _walk(tp, vp, op[i], op[i + 1], ep, k, lo, lookback, idx, ok + i * k)
                any_ok = False
                for j in range(k):
                    p = idx[j]
                    any_ok = any_ok or ok[i * k + j]
                    val[i * k + j] = vp[p]
                    idx[j] = tp[p]
                if any_ok:
                    rows += 1
        return val_arr, ok_arr, ts_arr, rows
    finally:
        for i in range(held):
            PyBuffer_Release(&bufs[i])


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


def one_step(int64_t t):
    """An instant query's step column: a new int64 array holding ``t`` alone (what
    ``np.array([t], dtype=np.int64)`` makes, through numpy's C API: no arguments parsed)."""
    cdef cnp.npy_intp n = 1
    out = cnp.PyArray_EMPTY(1, &n, cnp.NPY_INT64, 0)
    (<int64_t*>cnp.PyArray_DATA(<cnp.ndarray>out))[0] = t
    return out
