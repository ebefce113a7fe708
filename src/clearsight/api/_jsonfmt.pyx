# cython: boundscheck=False, wraparound=False, cdivision=True
"""Fast JSON text for Prometheus ``[[t, "v"], ...]`` point lists (one bytes object per series).

Floats are the shortest round-trip digits in Prometheus' layout (Go's ``strconv`` 'f' format, 'e'
below 1e-6 and from 1e21 on). The digits come from orjson, which renders a whole float64 array in
one call (its shortest round-trip formatter is ~20x faster than CPython's ``repr``); a token is
copied as is (minus a trailing ``.0``) when it is positional and the value is in [1e-4, 1e16), the
range where CPython's repr is positional too. Every other value goes through CPython's repr
(``PyOS_double_to_string`` mode 'r'), and the few that need a positional rewrite
(1e-6 <= |v| < 1e-4, 1e16 <= |v| < 1e21) are handed to ``slow(v)``. tests/unit/api/test_jsonfmt.py
checks the output byte for byte against the pure-Python encoder.
"""

import numpy as np
import orjson

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport fabs, isinf, isnan
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
    """Seconds with up to 3 decimals, trailing zeros dropped (``format_ts``)."""
    cdef char tmp[32]
    cdef int i = 32
    cdef int digits = 3
    cdef unsigned long long a
    cdef unsigned long long sec
    cdef int frac
    a = <unsigned long long>(-ms) if ms < 0 else <unsigned long long>ms
    sec = a // 1000
    frac = <int>(a % 1000)
    if frac:
        while frac % 10 == 0:
            frac //= 10
            digits -= 1
        while digits:
            i -= 1
            tmp[i] = <char>(48 + frac % 10)
            frac //= 10
            digits -= 1
        i -= 1
        tmp[i] = 46  # '.'
    while True:
        i -= 1
        tmp[i] = <char>(48 + sec % 10)
        sec //= 10
        if sec == 0:
            break
    if ms < 0:
        i -= 1
        tmp[i] = 45  # '-'
    return _put(b, tmp + i, 32 - i)


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
    cdef bytes rendered
    cdef const char* tok
    cdef const char* end
    cdef Py_ssize_t k
    cdef bint plain
    cdef double a
    if vals.shape[0] != n:
        raise ValueError("timestamps and values differ in length")
    # "[v0,v1,...]": one orjson call for the whole column (NaN and Inf come out as null).
    rendered = orjson.dumps(np.asarray(vals), option=orjson.OPT_SERIALIZE_NUMPY)
    tok = <const char*>rendered + 1
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
            # This value's token: up to the next ',' (or the closing ']').
            end = tok
            plain = True
            while end[0] != 44 and end[0] != 93:  # ',' ']'
                if end[0] == 101 or end[0] == 110:  # 'e' (exponent), 'n' (null)
                    plain = False
                end += 1
            a = fabs(vals[i])
            k = end - tok
            if plain and (a == 0 or (a >= 1e-4 and a < 1e16)):
                if k >= 2 and end[-1] == 48 and end[-2] == 46:  # a trailing ".0"
                    k -= 2
                _put(&b, tok, k)
            else:
                _put_float(&b, vals[i], slow)
            tok = end + 1
            _put(&b, "\"]", 2)
        _put(&b, "]", 1)
        return PyBytes_FromStringAndSize(b.data, b.len)
    finally:
        PyMem_Free(b.data)
