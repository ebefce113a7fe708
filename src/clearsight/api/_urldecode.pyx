# cython: boundscheck=False, wraparound=False
"""Percent-decoding of query strings and urlencoded forms in one C loop.

``urllib.parse.unquote`` is pure Python: it splits on ``%``, looks every escape up in a table and
joins the pieces (~5.6 us for a Grafana panel's encoded query of 24 escapes); ``parse_qsl`` adds
its argument machinery around that. A dashboard request pays it for every query it sends.

``unquote_plus(s)`` is ``urllib.parse.unquote(s.replace("+", " "))`` (UTF-8, errors replaced) for
an ASCII ``s``: ``+`` becomes a space, ``%`` followed by two hex digits (either case) becomes that
byte, anything else is kept, and the bytes are decoded as UTF-8 with invalid sequences replaced.
A string with a non-ASCII character (a raw byte above 0x7f in a query string, decoded as
latin-1, or a form's UTF-8) takes ``urllib``'s own path: its handling of non-ASCII runs is kept
exactly, and such requests are rare. tests/unit/api/test_common.py compares both with urllib's
(hypothesis).
"""

import urllib.parse

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr

_unquote = urllib.parse.unquote


cdef inline int _hex(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


def unquote_plus(str s):
    """``urllib.parse.unquote(s.replace("+", " "))``."""
    if not s.isascii():
        return _unquote(s.replace("+", " "))
    cdef bytes raw = s.encode("ascii")
    cdef Py_ssize_t n = len(raw)
    cdef const char *src = PyBytes_AS_STRING(raw)
    if memchr(src, 37, n) == NULL and memchr(src, 43, n) == NULL:  # no '%', no '+'
        return s
    cdef bytes buf = PyBytes_FromStringAndSize(NULL, n)
    cdef char *out = PyBytes_AS_STRING(buf)
    cdef Py_ssize_t i = 0, j = 0
    cdef int hi, lo
    cdef unsigned char c
    while i < n:
        c = <unsigned char>src[i]
        if c == 43:  # '+'
            out[j] = 32
            i += 1
        elif c == 37 and i + 2 < n:  # '%' with two characters after it
            hi = _hex(<unsigned char>src[i + 1])
            lo = _hex(<unsigned char>src[i + 2])
            if hi >= 0 and lo >= 0:
                out[j] = <char>(hi * 16 + lo)
                i += 3
            else:
                out[j] = 37
                i += 1
        else:
            out[j] = <char>c
            i += 1
        j += 1
    return PyUnicode_DecodeUTF8(out, j, "replace")
