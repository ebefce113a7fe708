# cython: boundscheck=False, wraparound=False, cdivision=True
"""Compiled aggregation kernels: the ``sum``/``avg`` fold of ``agg_fold.SumAvg`` and the merge of
its lanes.

``fold_sum_avg`` folds rows (rows x steps) into per-group state, row after row, with the same
IEEE-754 operations in the same order per (group, step) cell as the numpy path (which walks the
rows rank by rank: the r-th member of every group at once, so each group still meets its members
in row order): Prometheus' Kahan-Neumaier ``kahansum.Inc`` for ``sum``, and for ``avg`` the direct
compensated sum until it would overflow, then the incremental mean. Bit-identical results, but
for the sign of a NaN (the compiler may order a commutative addition's operands either way, and
x86 keeps the first NaN operand's sign; no NaN sign reaches the API's output):
tests/unit/query/promql/test_agg_fold_native.py checks this on random data, infinities and NaN
included. Built with ``-ffp-contract=off`` so the compiler never fuses a multiply and an add.

With lanes (large groups: ``agg_fold.LANES`` partial sums per group), the numpy path folds each
lane with the ``sum`` operations whatever the op, so ``fold_sum_avg(..., avg=False)`` over the lane
ids folds them too; ``merge_lanes`` then adds the lanes of each group in lane order as
``SumAvg.finish`` does (a compensated sum of the partial sums, their compensations added).

``sum_avg`` is the single-lane fold of one whole vector and its ``finish`` in one call (a small
aggregation's state made, folded and read out without a numpy call per state array).
"""

from libc.math cimport fabs, isinf, isnan
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free

import numpy as np


cdef inline void _kahan(double inc, double s, double c, double* t_out, double* c_out) noexcept nogil:
    cdef double t = s + inc, comp
    if fabs(s) >= fabs(inc):
        comp = (s - t) + inc
    else:
        comp = (inc - t) + s
    t_out[0] = t
    c_out[0] = 0.0 if isinf(t) else c + comp


cdef void _fold(const double* vals, const unsigned char* pres, const int64_t* gid, Py_ssize_t n, Py_ssize_t k,
                bint avg, double* s, double* c, double* cnt, unsigned char* incr, double* mean,
                unsigned char* seen) noexcept nogil:
    """The fold of rows (n x k, C order) into the state (groups x k, C order), row after row. One
    function (not inlined into each caller) so ``fold_sum_avg`` and ``sum_avg`` run the same
    machine code: the sign of a NaN made from two NaN operands depends on their order."""
    cdef Py_ssize_t i, j, cell
    cdef int64_t g
    cdef double x, N, t, nc, q, t2, c2
    for i in range(n):
        g = gid[i]
        for j in range(k):
            if not pres[i * k + j]:
                continue
            cell = g * k + j
            x = vals[i * k + j]
            N = cnt[cell] + 1
            cnt[cell] = N
            if not seen[cell]:
                seen[cell] = 1
                s[cell] = x
                c[cell] = 0.0
                if avg:
                    mean[cell] = x
                continue
            _kahan(x, s[cell], c[cell], &t, &nc)
            if not avg:
                s[cell] = t
                c[cell] = nc
                continue
            if not incr[cell]:
                if not isinf(t):
                    s[cell] = t
                    c[cell] = nc
                    continue
                # the direct sum would overflow: switch this cell to the incremental mean
                mean[cell] = s[cell] / (N - 1)
                c[cell] = c[cell] / (N - 1)
                incr[cell] = 1
            q = (N - 1) / N
            _kahan(x / N, q * mean[cell], q * c[cell], &t2, &c2)
            mean[cell] = t2
            c[cell] = c2


cdef inline double _add(double a, double b) noexcept nogil:
    """numpy's ``a + b`` bit for bit: when both are NaN, x86 returns the first operand's (numpy's
    loops add in operand order; a compiler may swap the operands of ``+``)."""
    if isnan(a):
        return a
    return a + b


def fold_sum_avg(const double[:, ::1] vals, const unsigned char[:, ::1] pres, const int64_t[::1] gid, bint avg,
                 double[:, ::1] s, double[:, ::1] c, double[:, ::1] cnt, unsigned char[:, ::1] incr,
                 double[:, ::1] mean, unsigned char[:, ::1] seen):
    """Folds ``vals``/``pres`` (rows x k) into the state arrays (groups x k) of the groups ``gid``
    (one per row, each < groups), in place."""
    cdef Py_ssize_t n = vals.shape[0], k = vals.shape[1], G = s.shape[0], i
    if pres.shape[0] != n or pres.shape[1] != k or gid.shape[0] != n:
        raise ValueError("rows, presence and groups differ in shape")
    if (s.shape[1] != k or c.shape[0] != G or c.shape[1] != k or cnt.shape[0] != G or cnt.shape[1] != k
            or mean.shape[0] != G or mean.shape[1] != k or incr.shape[0] != G or incr.shape[1] != k
            or seen.shape[0] != G or seen.shape[1] != k):
        raise ValueError("state arrays differ in shape")
    for i in range(n):
        if gid[i] < 0 or gid[i] >= G:
            raise ValueError("group id out of range")
    if n == 0 or k == 0:
        return
    with nogil:
        _fold(&vals[0, 0], &pres[0, 0], &gid[0], n, k, avg, &s[0, 0], &c[0, 0], &cnt[0, 0], &incr[0, 0],
              &mean[0, 0], &seen[0, 0])


def merge_lanes(const double[:, ::1] s, const double[:, ::1] c, const double[:, ::1] cnt,
                const unsigned char[:, ::1] seen, Py_ssize_t lanes, double[:, ::1] gs, double[:, ::1] gc,
                double[:, ::1] gcnt, unsigned char[:, ::1] gseen):
    """Merges the lane state (groups * lanes x k; lane ``l`` of group ``g`` is row ``g * lanes + l``)
    into the zeroed group arrays (groups x k), in place."""
    cdef Py_ssize_t G = gs.shape[0], k = gs.shape[1], g, lane, j, row
    cdef double t, nc
    if lanes < 1 or s.shape[0] != G * lanes or s.shape[1] != k:
        raise ValueError("lane state and group arrays differ in shape")
    if (c.shape[0] != s.shape[0] or c.shape[1] != k or cnt.shape[0] != s.shape[0] or cnt.shape[1] != k
            or seen.shape[0] != s.shape[0] or seen.shape[1] != k or gc.shape[0] != G or gc.shape[1] != k
            or gcnt.shape[0] != G or gcnt.shape[1] != k or gseen.shape[0] != G or gseen.shape[1] != k):
        raise ValueError("lane state and group arrays differ in shape")
    with nogil:
        for g in range(G):
            for lane in range(lanes):
                row = g * lanes + lane
                for j in range(k):
                    gcnt[g, j] = gcnt[g, j] + cnt[row, j]
                    if not seen[row, j]:
                        continue
                    if not gseen[g, j]:
                        gseen[g, j] = 1
                        gs[g, j] = s[row, j]
                        gc[g, j] = c[row, j]
                        continue
                    _kahan(s[row, j], gs[g, j], gc[g, j], &t, &nc)
                    gs[g, j] = t
                    gc[g, j] = nc + c[row, j]


def sum_avg(const double[:, ::1] vals, const unsigned char[:, ::1] pres, const int64_t[::1] gid,
            Py_ssize_t groups, bint avg):
    """``SumAvg(op, 1, k, groups)``, one ``add`` of these rows, then ``finish``: (result, seen),
    both (groups x k), with the state held in C (no state arrays made, none returned). The
    result's cells are ``s + c`` for ``sum`` and ``mean + c`` / ``s / cnt + c / cnt`` for ``avg``,
    as ``finish`` computes them, unseen cells included."""
    cdef Py_ssize_t n = vals.shape[0], k = vals.shape[1], G = groups, i, j, cell
    cdef int64_t g
    if pres.shape[0] != n or pres.shape[1] != k or gid.shape[0] != n:
        raise ValueError("rows, presence and groups differ in shape")
    if G < 0:
        raise ValueError("negative group count")
    for i in range(n):
        if gid[i] < 0 or gid[i] >= G:
            raise ValueError("group id out of range")
    result = np.empty((G, k), dtype=np.float64)
    seen_arr = np.zeros((G, k), dtype=np.bool_)
    cdef double[:, ::1] out = result
    cdef unsigned char[:, ::1] seen = seen_arr.view(np.uint8)
    cdef double* s = <double*>calloc(max(G * k, 1), sizeof(double))
    cdef double* c = <double*>calloc(max(G * k, 1), sizeof(double))
    cdef double* cnt = <double*>calloc(max(G * k, 1), sizeof(double))
    cdef double* mean = <double*>calloc(max(G * k, 1), sizeof(double))
    cdef unsigned char* incr = <unsigned char*>calloc(max(G * k, 1), sizeof(unsigned char))
    if s == NULL or c == NULL or cnt == NULL or mean == NULL or incr == NULL:
        free(s); free(c); free(cnt); free(mean); free(incr)
        raise MemoryError()
    with nogil:
        if n and k:
            _fold(&vals[0, 0], &pres[0, 0], &gid[0], n, k, avg, s, c, cnt, incr, mean, &seen[0, 0])
        for g in range(G):
            for j in range(k):
                cell = g * k + j
                if not avg:
                    out[g, j] = _add(s[cell], c[cell])
                elif incr[cell]:
                    out[g, j] = _add(mean[cell], c[cell])
                else:
                    out[g, j] = _add(s[cell] / cnt[cell], c[cell] / cnt[cell])
    free(s); free(c); free(cnt); free(mean); free(incr)
    return result, seen_arr
