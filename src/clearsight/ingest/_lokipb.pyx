# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled walk of a Loki ``PushRequest`` (our own minimal schema, see ``loki_push.py``).

``split_push(data, max_entries)`` walks an uncompressed PushRequest without the GIL and without
Python objects, then builds the columns: one label text per stream occurrence, and per entry its
stream occurrence, its timestamp in ns, its line (decoded as UTF-8 with U+FFFD for invalid bytes)
and its structured metadata (key and value lists with per-entry offsets).

It is a fast path, not a second protobuf implementation: it returns ``None`` for anything outside
the canonical encoding (a known field with an unexpected wire type, groups, truncation, invalid
UTF-8 in a string field, a timestamp whose nanos are out of range or whose ns overflow int64) and the
caller then parses with upb, which gives the authoritative result or error. A property test checks
that whatever it accepts decodes exactly as upb decodes it.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, realloc

import numpy as np

cdef enum:
    E_ENTRY = 7  # int64 per entry: stream occ, ts, line start, line end, md first, md count, md bytes
    NS = 1000000000
    OK = 0
    FALLBACK = 1
    NOMEM = 2
    TOO_MANY = 3


cdef struct Out:
    int64_t* streams     # (labels start, labels end) per stream occurrence; (-1, -1) when absent
    Py_ssize_t nstream
    Py_ssize_t capstream
    int64_t* entries     # E_ENTRY per entry
    Py_ssize_t nentry
    Py_ssize_t capentry
    int64_t* md          # (name start, name end, value start, value end) per pair
    Py_ssize_t nmd
    Py_ssize_t capmd
    int64_t max_entries
    int status


cdef inline void* grow(void* ptr, Py_ssize_t* cap, Py_ssize_t need, size_t elem) noexcept nogil:
    cdef Py_ssize_t c = cap[0]
    if c >= need:
        return ptr
    if c < 256:
        c = 256
    while c < need:
        c *= 2
    cdef void* p = realloc(ptr, <size_t>c * elem)
    if p != NULL:
        cap[0] = c
    return p


cdef inline int varint(const uint8_t* p, int64_t* pos, int64_t end, uint64_t* out) noexcept nogil:
    cdef int64_t q = pos[0]
    cdef uint64_t v = 0
    cdef unsigned int shift = 0
    cdef uint8_t b
    cdef int i
    for i in range(10):
        if q >= end:
            return -1
        b = p[q]
        q += 1
        v |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            out[0] = v
            pos[0] = q
            return 0
        shift += 7
    return -1


cdef inline int tag(const uint8_t* p, int64_t* pos, int64_t end, uint64_t* field, int* wt) noexcept nogil:
    cdef uint64_t v
    if varint(p, pos, end, &v) < 0 or v > 0xFFFFFFFFULL:
        return -1
    field[0] = v >> 3
    wt[0] = <int>(v & 7)
    if field[0] == 0 or wt[0] == 3 or wt[0] == 4 or wt[0] > 5:
        return -1  # groups and invalid wire types: leave them to upb
    return 0


cdef inline int length(const uint8_t* p, int64_t* pos, int64_t end, int64_t* s, int64_t* e) noexcept nogil:
    cdef uint64_t n
    if varint(p, pos, end, &n) < 0:
        return -1
    if n > <uint64_t>(end - pos[0]):
        return -1
    s[0] = pos[0]
    e[0] = pos[0] + <int64_t>n
    pos[0] = e[0]
    return 0


cdef inline int skip(const uint8_t* p, int64_t* pos, int64_t end, int wt) noexcept nogil:
    cdef uint64_t v
    cdef int64_t s, e
    if wt == 0:
        return varint(p, pos, end, &v)
    if wt == 1 or wt == 5:
        if end - pos[0] < (8 if wt == 1 else 4):
            return -1
        pos[0] += 8 if wt == 1 else 4
        return 0
    return length(p, pos, end, &s, &e)


cdef int timestamp(const uint8_t* p, int64_t pos, int64_t end, int64_t* secs, int32_t* nanos) noexcept nogil:
    cdef uint64_t field, v
    cdef int wt
    while pos < end:
        if tag(p, &pos, end, &field, &wt) < 0:
            return -1
        if field == 1 or field == 2:
            if wt != 0 or varint(p, &pos, end, &v) < 0:
                return -1
            if field == 1:
                secs[0] = <int64_t>v
            else:
                nanos[0] = <int32_t>v
        elif skip(p, &pos, end, wt) < 0:
            return -1
    return 0


cdef int label_pair(const uint8_t* p, int64_t pos, int64_t end, Out* o) noexcept nogil:
    cdef uint64_t field
    cdef int wt
    cdef int64_t s, e
    cdef int64_t ns = 0, ne = 0, vs = 0, ve = 0
    while pos < end:
        if tag(p, &pos, end, &field, &wt) < 0:
            return -1
        if field == 1 or field == 2:
            if wt != 2 or length(p, &pos, end, &s, &e) < 0:
                return -1
            if field == 1:
                ns = s
                ne = e
            else:
                vs = s
                ve = e
        elif skip(p, &pos, end, wt) < 0:
            return -1
    cdef void* q = grow(o.md, &o.capmd, 4 * (o.nmd + 1), sizeof(int64_t))
    if q == NULL:
        o.status = NOMEM
        return -1
    o.md = <int64_t*>q
    o.md[4 * o.nmd] = ns
    o.md[4 * o.nmd + 1] = ne
    o.md[4 * o.nmd + 2] = vs
    o.md[4 * o.nmd + 3] = ve
    o.nmd += 1
    return 0


cdef int entry(const uint8_t* p, int64_t pos, int64_t end, int64_t stream_no, Out* o) noexcept nogil:
    cdef uint64_t field
    cdef int wt
    cdef int64_t s, e
    cdef int64_t secs = 0
    cdef int32_t nanos = 0
    cdef int64_t ls = 0, le = 0
    cdef Py_ssize_t md_first = o.nmd
    cdef int64_t md_bytes = 0
    cdef Py_ssize_t i
    while pos < end:
        if tag(p, &pos, end, &field, &wt) < 0:
            return -1
        if field == 1:
            if wt != 2 or length(p, &pos, end, &s, &e) < 0 or timestamp(p, s, e, &secs, &nanos) < 0:
                return -1
        elif field == 2:
            if wt != 2 or length(p, &pos, end, &s, &e) < 0:
                return -1
            ls = s
            le = e
        elif field == 3:
            if wt != 2 or length(p, &pos, end, &s, &e) < 0 or label_pair(p, s, e, o) < 0:
                return -1
        elif skip(p, &pos, end, wt) < 0:
            return -1
    if nanos < 0 or nanos >= NS:
        return -1
    if secs > (INT64_MAX - nanos) // NS or secs < -(INT64_MAX // NS):
        return -1
    if o.nentry >= o.max_entries:
        o.status = TOO_MANY
        return -1
    cdef void* q = grow(o.entries, &o.capentry, E_ENTRY * (o.nentry + 1), sizeof(int64_t))
    if q == NULL:
        o.status = NOMEM
        return -1
    o.entries = <int64_t*>q
    for i in range(md_first, o.nmd):
        md_bytes += (o.md[4 * i + 1] - o.md[4 * i]) + (o.md[4 * i + 3] - o.md[4 * i + 2])
    cdef int64_t* ent = o.entries + E_ENTRY * o.nentry
    ent[0] = stream_no
    ent[1] = secs * NS + nanos
    ent[2] = ls
    ent[3] = le
    ent[4] = md_first
    ent[5] = o.nmd - md_first
    ent[6] = md_bytes
    o.nentry += 1
    return 0


cdef int stream(const uint8_t* p, int64_t pos, int64_t end, Out* o) noexcept nogil:
    cdef uint64_t field
    cdef int wt
    cdef int64_t s, e
    cdef int64_t ls = -1, le = -1
    cdef int64_t stream_no = o.nstream
    while pos < end:
        if tag(p, &pos, end, &field, &wt) < 0:
            return -1
        if field == 1:
            if wt != 2 or length(p, &pos, end, &s, &e) < 0:
                return -1
            ls = s
            le = e
        elif field == 2:
            if wt != 2 or length(p, &pos, end, &s, &e) < 0 or entry(p, s, e, stream_no, o) < 0:
                return -1
        elif skip(p, &pos, end, wt) < 0:
            return -1
    cdef void* q = grow(o.streams, &o.capstream, 2 * (o.nstream + 1), sizeof(int64_t))
    if q == NULL:
        o.status = NOMEM
        return -1
    o.streams = <int64_t*>q
    o.streams[2 * o.nstream] = ls
    o.streams[2 * o.nstream + 1] = le
    o.nstream += 1
    return 0


cdef int walk(const uint8_t* p, int64_t n, Out* o) noexcept nogil:
    cdef int64_t pos = 0
    cdef int64_t s, e
    cdef uint64_t field
    cdef int wt
    while pos < n:
        if tag(p, &pos, n, &field, &wt) < 0:
            return -1
        if field == 1:
            if wt != 2 or length(p, &pos, n, &s, &e) < 0 or stream(p, s, e, o) < 0:
                return -1
        elif skip(p, &pos, n, wt) < 0:
            return -1
    return 0


cdef str utf8_strict(const char* p, int64_t s, int64_t e):
    return PyUnicode_DecodeUTF8(p + s, e - s, NULL)


def split_push(data, int64_t max_entries):
    """``(labels, entry_stream, timestamps, line_bytes, md_counts, md_bytes, lines, md_offsets,
    md_keys, md_values)`` of an uncompressed PushRequest, ``None`` to let upb decide, or
    ``"too_many_entries"``. ``labels`` holds one str per stream occurrence (``""`` when absent);
    ``md_offsets`` has one more element than there are entries."""
    cdef const uint8_t[::1] view = data
    cdef int64_t n = view.shape[0]
    cdef const uint8_t* p = &view[0] if n > 0 else NULL
    cdef const char* cp = <const char*>p
    cdef Out o
    cdef int rc = 0
    cdef Py_ssize_t i
    cdef int64_t* ent
    cdef int64_t* m
    o.streams = NULL
    o.nstream = 0
    o.capstream = 0
    o.entries = NULL
    o.nentry = 0
    o.capentry = 0
    o.md = NULL
    o.nmd = 0
    o.capmd = 0
    o.max_entries = max_entries
    o.status = OK
    try:
        if n > 0:
            with nogil:
                rc = walk(p, n, &o)
        if rc < 0:
            if o.status == NOMEM:
                raise MemoryError("out of memory decoding a Loki PushRequest")
            if o.status == TOO_MANY:
                return "too_many_entries"
            return None
        try:
            labels = [utf8_strict(cp, o.streams[2 * i], o.streams[2 * i + 1]) if o.streams[2 * i] >= 0 else ""
                      for i in range(o.nstream)]
            md_keys = [utf8_strict(cp, o.md[4 * i], o.md[4 * i + 1]) for i in range(o.nmd)]
            md_values = [utf8_strict(cp, o.md[4 * i + 2], o.md[4 * i + 3]) for i in range(o.nmd)]
        except UnicodeDecodeError:
            return None  # upb rejects invalid UTF-8 in string fields: let it say so
        lines = [None] * o.nentry
        entry_stream = np.empty(o.nentry, dtype=np.int32)
        timestamps = np.empty(o.nentry, dtype=np.int64)
        line_bytes = np.empty(o.nentry, dtype=np.int64)
        md_counts = np.empty(o.nentry, dtype=np.int64)
        md_bytes = np.empty(o.nentry, dtype=np.int64)
        md_offsets = np.empty(o.nentry + 1, dtype=np.int64)
        md_offsets[0] = 0
        for i in range(o.nentry):
            ent = o.entries + E_ENTRY * i
            entry_stream[i] = <int32_t>ent[0]
            timestamps[i] = ent[1]
            line_bytes[i] = ent[3] - ent[2]
            lines[i] = PyUnicode_DecodeUTF8(cp + ent[2], ent[3] - ent[2], "replace")
            md_counts[i] = ent[5]
            md_bytes[i] = ent[6]
            md_offsets[i + 1] = ent[4] + ent[5]
        return (labels, entry_stream, timestamps, line_bytes, md_counts, md_bytes, lines, md_offsets,
                md_keys, md_values)
    finally:
        free(o.streams)
        free(o.entries)
        free(o.md)
