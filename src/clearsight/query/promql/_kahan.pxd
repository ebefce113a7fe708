# cython: boundscheck=False, wraparound=False, cdivision=True
"""Prometheus' kahanSumInc (Neumaier's compensated sum, ``fn_common.kahan_inc``), shared by the
compiled range-function kernels (``_rate.pyx``, ``_overtime.pyx``); built with
``-ffp-contract=off`` by each, so no fused multiply-add changes its rounding."""

from libc.math cimport fabs, isinf


cdef inline void kahan_inc(double inc, double* s, double* c) noexcept nogil:
    cdef double t = s[0] + inc
    if isinf(t):
        c[0] = 0.0
    elif fabs(s[0]) >= fabs(inc):
        c[0] = c[0] + ((s[0] - t) + inc)
    else:
        c[0] = c[0] + ((inc - t) + s[0])
    s[0] = t
