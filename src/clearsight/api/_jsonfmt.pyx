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


# "00".."99": two digits of a number per table lookup.
cdef char _PAIRS[200]
cdef int _i
for _i in range(100):
    _PAIRS[2 * _i] = <char>(48 + _i // 10)
    _PAIRS[2 * _i + 1] = <char>(48 + _i % 10)

# The longest text ``_fmt_ts`` writes: a sign, 19 digits of seconds, a point and 3 decimals.
DEF TS_MAX = 24


cdef inline Py_ssize_t _fmt_ts(char* out, long long ms) noexcept:
    """Seconds with up to 3 decimals, trailing zeros dropped (``format_ts``), written to ``out``
    (at least ``TS_MAX`` bytes); returns the length."""
    cdef char tmp[TS_MAX]
    cdef int i = TS_MAX
    cdef unsigned long long a
    cdef unsigned long long sec
    cdef int frac
    cdef int r
    a = <unsigned long long>(-ms) if ms < 0 else <unsigned long long>ms
    sec = a // 1000
    frac = <int>(a % 1000)
    if frac:
        if frac % 100 == 0:
            i -= 1
            tmp[i] = <char>(48 + frac // 100)
        elif frac % 10 == 0:
            i -= 2
            r = frac // 10
            tmp[i] = _PAIRS[2 * r]
            tmp[i + 1] = _PAIRS[2 * r + 1]
        else:
            i -= 3
            tmp[i] = <char>(48 + frac // 100)
            r = frac % 100
            tmp[i + 1] = _PAIRS[2 * r]
            tmp[i + 2] = _PAIRS[2 * r + 1]
        i -= 1
        tmp[i] = 46  # '.'
    while sec >= 100:
        r = <int>(sec % 100)
        sec //= 100
        i -= 2
        tmp[i] = _PAIRS[2 * r]
        tmp[i + 1] = _PAIRS[2 * r + 1]
    if sec >= 10:
        i -= 2
        tmp[i] = _PAIRS[2 * sec]
        tmp[i + 1] = _PAIRS[2 * sec + 1]
    else:
        i -= 1
        tmp[i] = <char>(48 + sec)
    if ms < 0:
        i -= 1
        tmp[i] = 45  # '-'
    memcpy(out, tmp + i, TS_MAX - i)
    return TS_MAX - i


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


cdef class _Times:
    """A timestamp column's texts (``_fmt_ts``), kept while the next series has the same column
    (the rows of a range result present at every step share one)."""
    cdef object column
    cdef char* text
    cdef Py_ssize_t* ends
    cdef Py_ssize_t n

    def __dealloc__(self):
        PyMem_Free(self.text)
        PyMem_Free(self.ends)

    cdef int load(self, object column, const long long[:] ts) except -1:
        cdef Py_ssize_t i, at = 0, n = ts.shape[0]
        cdef char* text = <char*>PyMem_Malloc(n * TS_MAX + 1)
        cdef Py_ssize_t* ends = <Py_ssize_t*>PyMem_Malloc((n + 1) * sizeof(Py_ssize_t))
        if text == NULL or ends == NULL:
            PyMem_Free(text)
            PyMem_Free(ends)
            raise MemoryError()
        PyMem_Free(self.text)
        PyMem_Free(self.ends)
        self.text = text
        self.ends = ends
        self.n = n
        self.column = column
        ends[0] = 0
        for i in range(n):
            at += _fmt_ts(text + at, ts[i])
            ends[i + 1] = at
        return 0


cdef bytes _encode(_Times times, object vals_obj, const double[:] vals, object slow):
    """``[[t,"v"],...]`` of ``times``' column and ``vals`` as JSON bytes."""
    cdef Buf b
    cdef Py_ssize_t i, n = vals.shape[0]
    cdef bytes rendered
    cdef const char* tok
    cdef const char* end
    cdef Py_ssize_t k, t0, t1
    cdef bint plain
    cdef double a
    cdef char* out
    if times.n != n:
        raise ValueError("timestamps and values differ in length")
    # "[v0,v1,...]": one orjson call for the whole column (NaN and Inf come out as null).
    rendered = orjson.dumps(vals_obj, option=orjson.OPT_SERIALIZE_NUMPY)
    tok = <const char*>rendered + 1
    # every point but a slow-path one fits: '[' ts ',"' token '"]' ','
    b.cap = 64 + times.ends[n] + len(rendered) + n * 6
    b.len = 0
    b.data = <char*>PyMem_Malloc(b.cap)
    if b.data == NULL:
        raise MemoryError()
    try:
        b.data[0] = 91  # '['
        b.len = 1
        for i in range(n):
            # This value's token: up to the next ',' (or the closing ']').
            end = tok
            plain = True
            while end[0] != 44 and end[0] != 93:  # ',' ']'
                if end[0] == 101 or end[0] == 110:  # 'e' (exponent), 'n' (null)
                    plain = False
                end += 1
            t0 = times.ends[i]
            t1 = times.ends[i + 1]
            _grow(&b, (t1 - t0) + (end - tok) + 8)
            out = b.data + b.len
            if i:
                out[0] = 44  # ','
                out += 1
            out[0] = 91  # '['
            memcpy(out + 1, times.text + t0, t1 - t0)
            out += 1 + (t1 - t0)
            out[0] = 44  # ','
            out[1] = 34  # '"'
            out += 2
            a = fabs(vals[i])
            if plain and (a == 0 or (a >= 1e-4 and a < 1e16)):
                k = end - tok
                if k >= 2 and end[-1] == 48 and end[-2] == 46:  # a trailing ".0"
                    k -= 2
                memcpy(out, tok, k)
                out += k
                b.len = out - b.data
            else:
                b.len = out - b.data
                _put_float(&b, vals[i], slow)
            tok = end + 1
            _put(&b, "\"]", 2)
        _put(&b, "]", 1)
        return PyBytes_FromStringAndSize(b.data, b.len)
    finally:
        PyMem_Free(b.data)


def encode_points(object ts, object vals, object slow):
    """``[[t,"v"],...]`` as JSON bytes from int64 ``ts`` and float64 ``vals`` (contiguous numpy
    arrays); ``slow(v)`` formats the rare values needing Go's rule."""
    cdef _Times times = _Times()
    times.load(ts, ts)
    return _encode(times, vals, vals, slow)


def encode_many(list ts_columns, list vals_columns, object slow):
    """``encode_points`` of each pair of ``ts_columns``/``vals_columns`` (the same bytes); a
    timestamp column that is the previous pair's object is formatted once."""
    cdef _Times times = _Times()
    cdef list out = []
    cdef Py_ssize_t i
    if len(ts_columns) != len(vals_columns):
        raise ValueError("timestamps and values differ in length")
    for i in range(len(ts_columns)):
        ts = ts_columns[i]
        if ts is not times.column:
            times.load(ts, ts)
        out.append(_encode(times, vals_columns[i], vals_columns[i], slow))
    return out
