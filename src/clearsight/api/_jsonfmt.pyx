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

Before that, a column is tried without orjson (``_short_digits``): most values of a dashboard's
series have a few decimals (a load average, a ratio) or none (bytes, counts). For ``|v|`` in
[1e-4, 2**49), ``d`` = 0, 1, 2, ... decimals are tried: ``m = rint(v * 10**d)``, and ``v`` is
``m / 10**d`` printed with ``d`` decimals as soon as the division gives ``v`` back. That is Go's
(and CPython's) shortest digits, by this argument: a decimal ``j / 10**d`` that parses back to ``v``
is within half an ulp of ``v``, and the ulp is at most ``v * 2**-52``; with ``v * 10**d < 2**49``
it is within ``2**-4`` of ``v * 10**d``, whose floating-point product is within ``2**-5`` of it,
so ``j`` is ``rint`` of the product: at most one candidate per ``d``, and the division (correctly
rounded, as parsing is, ``m`` and ``10**d`` being exact) tells whether it parses back. No decimal
with more decimals has fewer significant digits (its leading digit can be one place lower only
across a power of ten, which two candidates within one ulp of each other cannot straddle), so the
first ``d`` that parses back gives the shortest text, and it is unique. A column with a value this
cannot print (more than ~15 significant digits, out of the range) is encoded through orjson as
before, from its start.
"""

import numpy as np
import orjson

cimport numpy as cnp
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport fabs, isinf, isnan, rint, signbit
from libc.string cimport memcpy, strlen

from clearsight._ndarray cimport data_c

cnp.import_array()


cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* ptype) except NULL
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


# Columns of at least this many points are formatted without the GIL (below, letting it go and taking
# it back costs more than the work; small queries, often encoded on the event loop, keep it).
cdef Py_ssize_t NOGIL_POINTS = 1024


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

cdef inline int _digits_before(char* tmp, int i, unsigned long long x) noexcept nogil:
    """Writes the decimal digits of ``x`` to ``tmp`` ending before position ``i`` (two per table
    lookup); returns the position of the first."""
    cdef int r
    while x >= 100:
        r = <int>(x % 100)
        x //= 100
        i -= 2
        tmp[i] = _PAIRS[2 * r]
        tmp[i + 1] = _PAIRS[2 * r + 1]
    if x >= 10:
        i -= 2
        tmp[i] = _PAIRS[2 * x]
        tmp[i + 1] = _PAIRS[2 * x + 1]
    else:
        i -= 1
        tmp[i] = <char>(48 + x)
    return i


# The longest number text written here (a sign, 20 digits, a point and a leading "0", or a
# timestamp's sign, 19 digits of seconds, a point and 3 decimals), and the size of the scratch
# buffers numbers are written into backwards.
DEF NUM_MAX = 24


cdef inline Py_ssize_t _spelled(char* out, char* tmp, int i, unsigned long long whole, bint negative) noexcept nogil:
    """Ends a number written backwards into ``tmp`` (``NUM_MAX`` bytes) before position ``i`` with
    the digits of its whole part and its sign, and copies it to ``out``; returns its length."""
    i = _digits_before(tmp, i, whole)
    if negative:
        i -= 1
        tmp[i] = 45  # '-'
    memcpy(out, tmp + i, NUM_MAX - i)
    return NUM_MAX - i


# 10**0 .. 10**19 as doubles (exact up to 10**22) and as integers.
cdef double _P10F[20]
cdef unsigned long long _P10I[20]
_P10F[0] = 1.0
_P10I[0] = 1
for _i in range(1, 20):
    _P10F[_i] = _P10F[_i - 1] * 10.0
    _P10I[_i] = _P10I[_i - 1] * 10

# ``_short_digits`` takes |v| below this (2**49: see the module docstring).
DEF SHORT_LIMIT = 562949953421312.0


cdef inline Py_ssize_t _short_digits(char* out, double v) noexcept nogil:
    """Go's ``FormatFloat(v, 'f', -1, 64)`` text of ``v`` (Prometheus' spelling of NaN and the
    infinities) written to ``out`` (at least ``NUM_MAX`` bytes) when ``v`` is 0, NaN, infinite or
    in [1e-4, 2**49) and a decimal ``m / 10**d`` with ``m < 2**49`` (module docstring); returns the
    length, 0 when it wrote nothing."""
    cdef double a, x, m
    cdef int d = 0, j
    cdef unsigned long long q, ip, fp
    cdef char tmp[NUM_MAX]
    cdef int i = NUM_MAX
    if isnan(v):
        memcpy(out, "NaN", 3)
        return 3
    if isinf(v):
        memcpy(out, "+Inf" if v > 0 else "-Inf", 4)
        return 4
    a = fabs(v)
    if a == 0:
        if signbit(v):
            memcpy(out, "-0", 2)
            return 2
        out[0] = 48  # '0'
        return 1
    if a < 1e-4 or a >= SHORT_LIMIT:
        return 0
    while True:
        x = a * _P10F[d]
        if x >= SHORT_LIMIT:
            return 0
        m = rint(x)
        # (a candidate is within 2**-4 + 2**-5 of x: the division only for those that can be)
        if fabs(x - m) <= 0.125 and m / _P10F[d] == a:
            break
        d += 1
    q = <unsigned long long>m
    ip = q // _P10I[d]
    fp = q - ip * _P10I[d]
    if d:  # the fraction, zero-padded to d digits (its last digit is not 0: d is the fewest)
        for j in range(d):
            i -= 1
            tmp[i] = <char>(48 + fp % 10)
            fp //= 10
        i -= 1
        tmp[i] = 46  # '.'
    return _spelled(out, tmp, i, ip, v < 0)


cdef inline Py_ssize_t _fmt_ts(char* out, long long ms) noexcept nogil:
    """Seconds with up to 3 decimals, trailing zeros dropped (``format_ts``), written to ``out``
    (at least ``NUM_MAX`` bytes); returns the length."""
    cdef char tmp[NUM_MAX]
    cdef int i = NUM_MAX
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
    return _spelled(out, tmp, i, sec, ms < 0)


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
        cdef Py_ssize_t n = ts.shape[0]
        cdef char* text = <char*>PyMem_Malloc(n * NUM_MAX + 1)
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
        if n >= NOGIL_POINTS:
            with nogil:
                _fmt_column(text, ends, ts)
        else:
            _fmt_column(text, ends, ts)
        return 0


cdef void _fmt_column(char* text, Py_ssize_t* ends, const long long[:] ts) noexcept nogil:
    cdef Py_ssize_t i, at = 0
    for i in range(ts.shape[0]):
        at += _fmt_ts(text + at, ts[i])
        ends[i + 1] = at


cdef object _encode_short(_Times times, const double[:] vals):
    """``_encode`` of a column whose every value ``_short_digits`` prints; None for another."""
    cdef Py_ssize_t n = vals.shape[0], k
    cdef Py_ssize_t cap = 2 + times.ends[n] + n * (NUM_MAX + 6)
    cdef char* data = <char*>PyMem_Malloc(cap)
    if data == NULL:
        raise MemoryError()
    try:
        if n >= NOGIL_POINTS:
            with nogil:
                k = _short_points(data, times.text, times.ends, vals)
        else:
            k = _short_points(data, times.text, times.ends, vals)
        if k < 0:
            return None
        return PyBytes_FromStringAndSize(data, k)
    finally:
        PyMem_Free(data)


cdef Py_ssize_t _short_points(char* data, const char* text, const Py_ssize_t* ends,
                              const double[:] vals) noexcept nogil:
    """``_encode_short``'s text written to ``data`` (large enough); its length, or -1 at the first
    value ``_short_digits`` cannot print."""
    cdef Py_ssize_t i, k, t0, t1
    cdef char* out = data
    out[0] = 91  # '['
    out += 1
    for i in range(vals.shape[0]):
        if i:
            out[0] = 44  # ','
            out += 1
        t0 = ends[i]
        t1 = ends[i + 1]
        out[0] = 91  # '['
        memcpy(out + 1, text + t0, t1 - t0)
        out += 1 + (t1 - t0)
        out[0] = 44  # ','
        out[1] = 34  # '"'
        k = _short_digits(out + 2, vals[i])
        if k == 0:
            return -1
        out += 2 + k
        out[0] = 34  # '"'
        out[1] = 93  # ']'
        out += 2
    out[0] = 93  # ']'
    out += 1
    return out - data


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
    cdef char probe[NUM_MAX]
    if times.n != n:
        raise ValueError("timestamps and values differ in length")
    if n == 0 or _short_digits(probe, vals[0]):  # (a column of full-precision values: orjson at once)
        fast = _encode_short(times, vals)
        if fast is not None:
            return fast
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
        i = 0
        while i < n:
            # the plain tokens from i on, then (with the GIL) the point they stopped at, as before
            if n - i >= NOGIL_POINTS:
                with nogil:
                    i = _plain_points(&b, times.text, times.ends, vals, &tok, i)
            else:
                i = _plain_points(&b, times.text, times.ends, vals, &tok, i)
            if i == n:
                break
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
            i += 1
        _put(&b, "]", 1)
        return PyBytes_FromStringAndSize(b.data, b.len)
    finally:
        PyMem_Free(b.data)


cdef Py_ssize_t _plain_points(Buf* b, const char* text, const Py_ssize_t* ends, const double[:] vals,
                              const char** tokp, Py_ssize_t i) noexcept nogil:
    """``_encode``'s points from ``i`` on whose token (at ``*tokp``) is copied as is, while they fit
    in the buffer without growing it; returns the first point it did not write (its token then
    at ``*tokp``), ``n`` when all are written."""
    cdef Py_ssize_t n = vals.shape[0], k, t0, t1
    cdef const char* tok = tokp[0]
    cdef const char* end
    cdef bint plain
    cdef double a
    cdef char* out
    while i < n:
        end = tok
        plain = True
        while end[0] != 44 and end[0] != 93:  # ',' ']'
            if end[0] == 101 or end[0] == 110:  # 'e' (exponent), 'n' (null)
                plain = False
            end += 1
        a = fabs(vals[i])
        t0 = ends[i]
        t1 = ends[i + 1]
        if not (plain and (a == 0 or (a >= 1e-4 and a < 1e16))) or b.len + (t1 - t0) + (end - tok) + 8 > b.cap:
            break
        out = b.data + b.len
        if i:
            out[0] = 44  # ','
            out += 1
        out[0] = 91  # '['
        memcpy(out + 1, text + t0, t1 - t0)
        out += 1 + (t1 - t0)
        out[0] = 44  # ','
        out[1] = 34  # '"'
        out += 2
        k = end - tok
        if k >= 2 and end[-1] == 48 and end[-2] == 46:  # a trailing ".0"
            k -= 2
        memcpy(out, tok, k)
        out += k
        out[0] = 34  # '"'
        out[1] = 93  # ']'
        b.len = out + 2 - b.data
        tok = end + 1
        i += 1
    tokp[0] = tok
    return i


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


# The escape of each byte below 0x20 in a JSON string, as orjson writes it: the short forms for
# backspace, tab, newline, form feed and carriage return, ``\\u00XX`` (lower-case hex) for the rest.
cdef const char* _HEX = b"0123456789abcdef"


cdef int _put_str(Buf* b, object s) except -1:
    """``s`` as a JSON string (quoted, escaped as orjson escapes it; UnicodeEncodeError for a
    lone surrogate, which orjson refuses too)."""
    cdef Py_ssize_t n, i, start = 0
    cdef const char* u = PyUnicode_AsUTF8AndSize(s, &n)
    cdef unsigned char c
    cdef char esc[6]
    _grow(b, n + 2)
    b.data[b.len] = 34  # '"'
    b.len += 1
    for i in range(n):
        c = <unsigned char>u[i]
        if c >= 32 and c != 34 and c != 92:  # not a control character, '"' or '\\'
            continue
        _put(b, u + start, i - start)
        start = i + 1
        esc[0] = 92  # '\\'
        if c == 34 or c == 92:
            esc[1] = c
            _put(b, esc, 2)
        elif c == 8 or c == 9 or c == 10 or c == 12 or c == 13:
            esc[1] = b"btn?fr"[c - 8]
            _put(b, esc, 2)
        else:
            esc[1] = 117  # 'u'
            esc[2] = 48
            esc[3] = 48
            esc[4] = _HEX[c >> 4]
            esc[5] = _HEX[c & 15]
            _put(b, esc, 6)
    _put(b, u + start, n - start)
    return _put(b, "\"", 1)


def encode_vector(object labels, object ts, object values, Py_ssize_t count, object slow):
    """An instant vector's ``result`` list as JSON bytes: ``[{"metric":{...},"value":[t,"v"]},...]``
    for the first ``count`` of ``labels`` (a sequence of label sets: tuples of (name, value) pairs
    of str) and their float64 ``values`` (a contiguous array, one per label set), all at ``ts[0]``
    (an int64 array, in ms); the bytes ``orjson.dumps`` gives for the dicts
    ``api/prometheus_query.encode_result`` builds (``slow(v)``: Go's formatting of a value
    ``_short_digits`` cannot print). TypeError for a label set that is not a tuple of such pairs,
    UnicodeEncodeError for a lone surrogate (orjson refuses one too)."""
    cdef const double* vals
    cdef const long long* times
    cdef Py_ssize_t n, nts, i, j, k
    cdef char tsbuf[NUM_MAX]
    cdef char num[NUM_MAX]
    cdef Py_ssize_t tslen
    cdef tuple lbl, pair
    cdef bytes text
    cdef Buf b
    data_c(values, cnp.NPY_FLOAT64, <const void**>&vals, &n)
    data_c(ts, cnp.NPY_INT64, <const void**>&times, &nts)
    if count < 0 or count > n or count > len(labels):
        raise ValueError("more series asked for than labels or values")
    if nts < 1:
        raise ValueError("no timestamp")
    tslen = _fmt_ts(tsbuf, times[0])
    b.cap = 64 + count * 96
    b.len = 0
    b.data = <char*>PyMem_Malloc(b.cap)
    if b.data == NULL:
        raise MemoryError()
    try:
        _put(&b, "[", 1)
        for i in range(count):
            _put(&b, "{\"metric\":{" if i == 0 else ",{\"metric\":{", 11 if i == 0 else 12)
            lbl = labels[i]
            for j in range(len(lbl)):
                pair = lbl[j]
                if j:
                    _put(&b, ",", 1)
                _put_str(&b, pair[0])
                _put(&b, ":", 1)
                _put_str(&b, pair[1])
            _put(&b, "},\"value\":[", 11)
            _put(&b, tsbuf, tslen)
            _put(&b, ",\"", 2)
            k = _short_digits(num, vals[i])
            if k:
                _put(&b, num, k)
            else:
                text = slow(vals[i]).encode()
                _put(&b, text, len(text))
            _put(&b, "\"]}", 3)
        _put(&b, "]", 1)
        return PyBytes_FromStringAndSize(b.data, b.len)
    finally:
        PyMem_Free(b.data)
