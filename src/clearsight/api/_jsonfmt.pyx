# cython: boundscheck=False, wraparound=False, cdivision=True
"""Fast JSON text for Prometheus ``[[t, "v"], ...]`` point lists (one bytes object per series).

Floats use CPython's shortest round-trip repr (``PyOS_double_to_string`` mode 'r') with Go's
encoding/json rule applied: exponent form only below 1e-6 and from 1e21 on; the few values that
need a positional rewrite (1e-6 <= |v| < 1e-4, 1e16 <= |v| < 1e21) are handed to ``slow(v)``.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport fabs, isinf, isnan
from libc.stdio cimport snprintf
from libc.string cimport memcpy, strlen


cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* ptype) except NULL


cdef struct Buf:
    char* data
    Py_ssize_t len
    Py_ssize_t cap


cdef int _grow(Buf* b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap
    cdef char* p
    if b.len + need <= b.cap:
        return 0
    cap = b.cap * 2
    while cap < b.len + need:
        cap *= 2
    p = <char*>PyMem_Realloc(b.data, cap)
    if p == NULL:
        raise MemoryError()
    b.data = p
    b.cap = cap
    return 0


cdef int _put(Buf* b, const char* s, Py_ssize_t n) except -1:
    _grow(b, n)
    memcpy(b.data + b.len, s, n)
    b.len += n
    return 0


cdef int _put_ts(Buf* b, long long ms) except -1:
    cdef char tmp[48]
    cdef int n
    cdef unsigned long long a
    cdef unsigned long long sec
    cdef int frac
    a = <unsigned long long>(-ms) if ms < 0 else <unsigned long long>ms
    sec = a // 1000
    frac = <int>(a % 1000)
    if frac == 0:
        n = snprintf(tmp, 48, "%s%llu", "-" if ms < 0 else "", sec)
    elif frac % 100 == 0:
        n = snprintf(tmp, 48, "%s%llu.%d", "-" if ms < 0 else "", sec, frac // 100)
    elif frac % 10 == 0:
        n = snprintf(tmp, 48, "%s%llu.%02d", "-" if ms < 0 else "", sec, frac // 10)
    else:
        n = snprintf(tmp, 48, "%s%llu.%03d", "-" if ms < 0 else "", sec, frac)
    return _put(b, tmp, n)


cdef int _put_float(Buf* b, double v, object slow) except -1:
    cdef char* s
    cdef Py_ssize_t n
    cdef double a
    cdef bytes fallback
    if isnan(v):
        return _put(b, "NaN", 3)
    if isinf(v):
        if v > 0:
            return _put(b, "+Inf", 4)
        return _put(b, "-Inf", 4)
    a = fabs(v)
    if a != 0 and ((a < 1e-4 and a >= 1e-6) or (a >= 1e16 and a < 1e21)):
        fallback = slow(v).encode()
        return _put(b, fallback, len(fallback))
    s = PyOS_double_to_string(v, b'r', 0, 0, NULL)
    try:
        n = strlen(s)
        _put(b, s, n)
    finally:
        PyMem_Free(s)
    return 0


def encode_points(const long long[:] ts, const double[:] vals, object slow):
    """``[[t,"v"],...]`` as JSON bytes; ``slow(v)`` formats the rare values needing Go's rule."""
    cdef Buf b
    cdef Py_ssize_t i, n = ts.shape[0]
    if vals.shape[0] != n:
        raise ValueError("timestamps and values differ in length")
    b.cap = 64 + n * 32
    b.len = 0
    b.data = <char*>PyMem_Malloc(b.cap)
    if b.data == NULL:
        raise MemoryError()
    try:
        _put(&b, "[", 1)
        for i in range(n):
            if i:
                _put(&b, ",[", 2)
            else:
                _put(&b, "[", 1)
            _put_ts(&b, ts[i])
            _put(&b, ",\"", 2)
            _put_float(&b, vals[i], slow)
            _put(&b, "\"]", 2)
        _put(&b, "]", 1)
        return PyBytes_FromStringAndSize(b.data, b.len)
    finally:
        PyMem_Free(b.data)
