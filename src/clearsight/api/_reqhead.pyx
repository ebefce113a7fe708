# cython: boundscheck=False, wraparound=False
"""A plain GET's or form POST's whole request parsed in one C pass, for the fast lane
(api/http_limits.py, "express").

httptools parses a request by calling back into Python for its start, its URL, each header, each
piece of body and its end; uvicorn's callbacks then copy, lower-case and strip each header, and
``parse_url`` splits the target. For a dashboard's small query that is ~15 Python calls and two C
libraries' code per request, most of it cold (bench/request_callgrind.py). ``parse_request`` reads
the common case directly, and only a strict subset of what httptools accepts:

- the read holds exactly one whole request: ``GET`` or ``POST``, an origin-form target,
  ``HTTP/1.1``, header lines, the empty line, then nothing (a GET) or exactly the POST's
  ``content-length`` bytes of body (no second request after it);
- the target is made of RFC 3986's characters only (letters, digits, ``-._~!$&'()*+,;=:@/?%``: no
  fragment, no space, no control or non-ASCII byte);
- header names are RFC 9110 tokens, values visible ASCII with spaces and tabs (no obs-fold, no
  obs-text, no bare CR or LF), at most ``MAX_HEADERS`` of them;
- a GET has no ``content-length``; a POST has exactly one, of 1 to ``LENGTH_DIGITS`` digits and no
  leading zero (``0`` itself allowed);
- no ``transfer-encoding``, ``upgrade``, ``expect`` or ``trailer`` header, and a ``connection``
  header only of one token, ``keep-alive`` or ``close`` (a list of tokens is left to httptools'
  own reading).

It returns what uvicorn's callbacks would have made of that request: ``(raw_path, query_string,
headers, keep_alive, body)``, the headers as ``(lower-cased name, value without surrounding spaces
and tabs)`` in their order, ``body`` None for a GET and the body's bytes for a POST; or None for
anything else, which then goes to httptools as it came. Whether the lane answers a POST (a small
urlencoded form: ``FastLane.takes_form``) is the caller's to decide.
tests/unit/api/test_reqhead.py compares the two (hypothesis).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

MAX_HEADERS = 64
MAX_BYTES = 16384 + 4096  # a larger read takes httptools' path (the lane's forms are at most 16 KiB)
cdef enum:
    _LENGTH_DIGITS = 6
LENGTH_DIGITS = _LENGTH_DIGITS  # a longer content-length takes httptools' path

cdef unsigned char _TARGET[256]
cdef unsigned char _TCHAR[256]
cdef int _c
for _c in range(256):
    _TARGET[_c] = 0
    _TCHAR[_c] = 0
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789":
    _TARGET[_c] = 1
    _TCHAR[_c] = 1
for _c in b"-._~!$&'()*+,;=:@/?%":
    _TARGET[_c] = 1
for _c in b"!#$%&'*+-.^_`|~":
    _TCHAR[_c] = 1


cdef inline bint _value_byte(unsigned char c) noexcept nogil:
    return (0x21 <= c <= 0x7e) or c == 32 or c == 9


cdef inline bint _same(const unsigned char* s, Py_ssize_t n, const char* lower) noexcept nogil:
    """Whether ``s[:n]`` (already lower case) is ``lower``."""
    cdef Py_ssize_t i = 0
    while i < n:
        if lower[i] == 0 or <unsigned char>lower[i] != s[i]:
            return False
        i += 1
    return lower[n] == 0


cdef int _connection(const unsigned char* v, Py_ssize_t n) noexcept nogil:
    """A ``connection`` value's verdict: 1 ``keep-alive``, 0 ``close`` (either case), -1 anything
    else (a list of tokens included: httptools' reading of lists is its own)."""
    cdef unsigned char low[10]
    cdef Py_ssize_t k
    if n != 5 and n != 10:
        return -1
    for k in range(n):
        low[k] = v[k] | 0x20 if 65 <= v[k] <= 90 else v[k]
    if n == 5 and _same(low, 5, b"close"):
        return 0
    if n == 10 and _same(low, 10, b"keep-alive"):
        return 1
    return -1


cdef Py_ssize_t _length(const unsigned char* v, Py_ssize_t n) noexcept nogil:
    """A ``content-length`` value's bytes as a number: 1 to ``LENGTH_DIGITS`` digits, no leading
    zero but ``0`` itself; -1 for anything else."""
    cdef Py_ssize_t k, out = 0
    if n < 1 or n > _LENGTH_DIGITS or (n > 1 and v[0] == 48):
        return -1
    for k in range(n):
        if not 48 <= v[k] <= 57:
            return -1
        out = out * 10 + (v[k] - 48)
    return out


def parse_request(bytes data):
    """``(raw_path, query_string, headers, keep_alive, body)`` of a read holding one plain GET's
    whole head, or one POST's whole head and body (see the module's docstring; ``body`` None for
    the GET), or None."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i, t0, t1, q, a, b, v0, v1, k, j, end
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef unsigned char name[32]
    cdef bint keep_alive = True, post
    cdef int verdict
    cdef Py_ssize_t length = -1
    cdef list headers = []
    cdef bytes hname
    if n < 18 or n > MAX_BYTES:
        return None
    if s[0] == 71 and s[1] == 69 and s[2] == 84 and s[3] == 32 and s[4] == 47:  # "GET /"
        post = False
        t0 = 4
        if s[n - 4] != 13 or s[n - 3] != 10 or s[n - 2] != 13 or s[n - 1] != 10:
            return None
    elif s[0] == 80 and s[1] == 79 and s[2] == 83 and s[3] == 84 and s[4] == 32 and s[5] == 47:  # "POST /"
        post = True
        t0 = 5
    else:
        return None
    i = t0
    q = -1
    while i < n and s[i] != 32:
        if not _TARGET[s[i]]:
            return None
        if s[i] == 63 and q < 0:  # '?'
            q = i
        i += 1
    t1 = i
    # " HTTP/1.1\r\n"
    if n - t1 < 11 or s[t1 + 1] != 72 or s[t1 + 2] != 84 or s[t1 + 3] != 84 or s[t1 + 4] != 80 \
            or s[t1 + 5] != 47 or s[t1 + 6] != 49 or s[t1 + 7] != 46 or s[t1 + 8] != 49 \
            or s[t1 + 9] != 13 or s[t1 + 10] != 10:
        return None
    i = t1 + 11
    k = 0
    while True:
        if i + 1 >= n:
            return None
        if s[i] == 13:
            if s[i + 1] != 10:
                return None
            end = i + 2  # the body's first byte
            if post:
                if length < 0 or end + length != n:
                    return None
            elif end != n:
                return None
            break
        k += 1
        if k > MAX_HEADERS:
            return None
        a = i
        while i < n and _TCHAR[s[i]]:
            i += 1
        b = i
        if b == a or i >= n or s[i] != 58:  # ':'
            return None
        i += 1
        while i < n and (s[i] == 32 or s[i] == 9):
            i += 1
        v0 = i
        while i < n and _value_byte(s[i]):
            i += 1
        if i + 1 >= n or s[i] != 13 or s[i + 1] != 10:
            return None
        v1 = i
        while v1 > v0 and (s[v1 - 1] == 32 or s[v1 - 1] == 9):
            v1 -= 1
        i += 2
        if b - a <= 32:
            for j in range(b - a):
                name[j] = s[a + j] | 0x20 if 65 <= s[a + j] <= 90 else s[a + j]
            if (_same(name, b - a, b"transfer-encoding") or _same(name, b - a, b"upgrade")
                    or _same(name, b - a, b"expect") or _same(name, b - a, b"trailer")):
                return None
            if _same(name, b - a, b"content-length"):
                if not post or length >= 0:  # a GET's, or a second one
                    return None
                length = _length(s + v0, v1 - v0)
                if length < 0:
                    return None
            if _same(name, b - a, b"connection"):
                verdict = _connection(s + v0, v1 - v0)
                if verdict < 0:
                    return None
                if verdict == 0:
                    keep_alive = False
            hname = PyBytes_FromStringAndSize(<char*>name, b - a)
        else:
            hname = PyBytes_FromStringAndSize(<char*>(s + a), b - a).lower()
        headers.append((hname, PyBytes_FromStringAndSize(<char*>(s + v0), v1 - v0)))
    form = PyBytes_FromStringAndSize(<char*>(s + end), n - end) if post else None
    if q < 0:
        return PyBytes_FromStringAndSize(<char*>(s + t0), t1 - t0), b"", headers, keep_alive, form
    return (PyBytes_FromStringAndSize(<char*>(s + t0), q - t0),
            PyBytes_FromStringAndSize(<char*>(s + q + 1), t1 - q - 1), headers, keep_alive, form)
