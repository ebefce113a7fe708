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
"""

from libc.math cimport fabs, isinf
from libc.stdint cimport int64_t


cdef inline void _kahan(double inc, double s, double c, double* t_out, double* c_out) noexcept nogil:
    cdef double t = s + inc, comp
    if fabs(s) >= fabs(inc):
        comp = (s - t) + inc
    else:
        comp = (inc - t) + s
    t_out[0] = t
    c_out[0] = 0.0 if isinf(t) else c + comp


def fold_sum_avg(const double[:, ::1] vals, const unsigned char[:, ::1] pres, const int64_t[::1] gid, bint avg,
                 double[:, ::1] s, double[:, ::1] c, double[:, ::1] cnt, unsigned char[:, ::1] incr,
                 double[:, ::1] mean, unsigned char[:, ::1] seen):
    """Folds ``vals``/``pres`` (rows x k) into the state arrays (groups x k) of the groups ``gid``
    (one per row, each < groups), in place."""
    cdef Py_ssize_t n = vals.shape[0], k = vals.shape[1], G = s.shape[0], i, j
    cdef int64_t g
    cdef double x, N, t, nc, q, t2, c2
    if pres.shape[0] != n or pres.shape[1] != k or gid.shape[0] != n:
        raise ValueError("rows, presence and groups differ in shape")
    if (s.shape[1] != k or c.shape[0] != G or c.shape[1] != k or cnt.shape[0] != G or cnt.shape[1] != k
            or mean.shape[0] != G or mean.shape[1] != k or incr.shape[0] != G or incr.shape[1] != k
            or seen.shape[0] != G or seen.shape[1] != k):
        raise ValueError("state arrays differ in shape")
    for i in range(n):
        if gid[i] < 0 or gid[i] >= G:
            raise ValueError("group id out of range")
    with nogil:
        for i in range(n):
            g = gid[i]
            for j in range(k):
                if not pres[i, j]:
                    continue
                x = vals[i, j]
                N = cnt[g, j] + 1
                cnt[g, j] = N
                if not seen[g, j]:
                    seen[g, j] = 1
                    s[g, j] = x
                    c[g, j] = 0.0
                    if avg:
                        mean[g, j] = x
                    continue
                _kahan(x, s[g, j], c[g, j], &t, &nc)
                if not avg:
                    s[g, j] = t
                    c[g, j] = nc
                    continue
                if not incr[g, j]:
                    if not isinf(t):
                        s[g, j] = t
                        c[g, j] = nc
                        continue
                    # the direct sum would overflow: switch this cell to the incremental mean
                    mean[g, j] = s[g, j] / (N - 1)
                    c[g, j] = c[g, j] / (N - 1)
                    incr[g, j] = 1
                q = (N - 1) / N
                _kahan(x / N, q * mean[g, j], q * c[g, j], &t2, &c2)
                mean[g, j] = t2
                c[g, j] = c2


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
