# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled walk of a prometheus.WriteRequest (remote-write 1.0).

``split_write_request(data, make_error)`` splits an uncompressed WriteRequest into one ``bytes``
key per series (the series' encoded ``labels`` fields) and numpy sample columns. The walk itself
runs without the GIL and allocates no Python objects; Python objects are made afterwards: one
``bytes`` per series, three arrays, and one tuple per metadata entry.

It mirrors ``remote_write.split_write_request_pure`` exactly (same output, same error codes and
offsets); the error codes and context ids are defined there.
"""

from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

import numpy as np

# error codes (see remote_write.py)
cdef enum:
    E_TRUNC_VARINT = 1
    E_VARINT_TOO_LONG = 2
    E_BAD_TAG = 3
    E_FIELD0 = 4
    E_BAD_WIRE_TYPE = 5
    E_GROUP = 6
    E_WRONG_WIRE_TYPE = 7
    E_TRUNC_LEN = 8
    E_TRUNC_FIXED = 9
    E_NOMEM = 10
    E_TOO_MANY_SERIES = 11
    E_TOO_MANY_SAMPLES = 12
    META_FIELDS = 8


cdef struct Out:
    int32_t* sidx
    int64_t* ts
    uint64_t* val
    Py_ssize_t nsamp
    Py_ssize_t capsamp
    int64_t* spans       # pairs (start, end)
    Py_ssize_t nspan
    Py_ssize_t capspan
    int64_t* series      # pairs (first span, number of spans)
    Py_ssize_t nser
    Py_ssize_t capser
    int64_t* meta        # META_FIELDS per entry
    Py_ssize_t nmeta
    Py_ssize_t capmeta
    int64_t exemplars
    int64_t* hist        # triples (series number, start, end) of Histogram messages
    Py_ssize_t nhist
    Py_ssize_t caphist
    int64_t max_series
    int64_t max_samples
    int err
    int64_t err_off
    int err_ctx
    uint64_t err_a
    uint64_t err_b


cdef inline int fail(Out* o, int code, int64_t off, int ctx, uint64_t a, uint64_t b) noexcept nogil:
    o.err = code
    o.err_off = off
    o.err_ctx = ctx
    o.err_a = a
    o.err_b = b
    return -1


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


cdef inline int varint(const uint8_t* p, int64_t* pos, int64_t end, int ctx, uint64_t* out, Out* o) noexcept nogil:
    cdef int64_t start = pos[0]
    cdef int64_t q = start
    cdef uint64_t v = 0
    cdef unsigned int shift = 0
    cdef uint8_t b
    cdef int i
    for i in range(10):
        if q >= end:
            return fail(o, E_TRUNC_VARINT, start, ctx, 0, 0)
        b = p[q]
        q += 1
        v |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            out[0] = v
            pos[0] = q
            return 0
        shift += 7
    return fail(o, E_VARINT_TOO_LONG, start, ctx, 0, 0)


cdef inline int tag(const uint8_t* p, int64_t* pos, int64_t end, int ctx, uint64_t* field, int* wt,
                    Out* o) noexcept nogil:
    cdef int64_t start = pos[0]
    cdef uint64_t v
    if varint(p, pos, end, ctx, &v, o) < 0:
        return -1
    if v > 0xFFFFFFFFULL:
        return fail(o, E_BAD_TAG, start, ctx, v, 0)
    field[0] = v >> 3
    wt[0] = <int>(v & 7)
    if field[0] == 0:
        return fail(o, E_FIELD0, start, ctx, 0, 0)
    if wt[0] > 5:
        return fail(o, E_BAD_WIRE_TYPE, start, ctx, <uint64_t>wt[0], field[0])
    return 0


cdef inline int length(const uint8_t* p, int64_t* pos, int64_t end, int ctx, int64_t* s, int64_t* e,
                       Out* o) noexcept nogil:
    cdef uint64_t n
    if varint(p, pos, end, ctx, &n, o) < 0:
        return -1
    cdef int64_t q = pos[0]
    if n > <uint64_t>(end - q):
        return fail(o, E_TRUNC_LEN, q, ctx, n, <uint64_t>(end - q))
    s[0] = q
    e[0] = q + <int64_t>n
    pos[0] = e[0]
    return 0


cdef inline int skip(const uint8_t* p, int64_t* pos, int64_t end, uint64_t field, int wt, int ctx,
                     int64_t tag_start, Out* o) noexcept nogil:
    cdef uint64_t v
    cdef int64_t s, e, width
    if wt == 0:
        return varint(p, pos, end, ctx, &v, o)
    if wt == 1 or wt == 5:
        width = 8 if wt == 1 else 4
        if end - pos[0] < width:
            return fail(o, E_TRUNC_FIXED, pos[0], ctx, <uint64_t>width, <uint64_t>(end - pos[0]))
        pos[0] += width
        return 0
    if wt == 2:
        return length(p, pos, end, ctx, &s, &e, o)
    return fail(o, E_GROUP, tag_start, ctx, <uint64_t>wt, field)


cdef inline int expect(int wt, int want, int64_t tag_start, int ctx, Out* o) noexcept nogil:
    if wt != want:
        return fail(o, E_WRONG_WIRE_TYPE, tag_start, ctx, <uint64_t>wt, 0)
    return 0


cdef int check_label(const uint8_t* p, int64_t pos, int64_t end, Out* o) noexcept nogil:
    cdef uint64_t field
    cdef int wt, ctx
    cdef int64_t ts, s, e
    while pos < end:
        ts = pos
        if tag(p, &pos, end, 2, &field, &wt, o) < 0:
            return -1
        if field == 1 or field == 2:
            ctx = 16 if field == 1 else 17
            if expect(wt, 2, ts, ctx, o) < 0 or length(p, &pos, end, ctx, &s, &e, o) < 0:
                return -1
        elif skip(p, &pos, end, field, wt, 2, ts, o) < 0:
            return -1
    return 0


cdef int sample(const uint8_t* p, int64_t pos, int64_t end, int64_t series_no, Out* o) noexcept nogil:
    cdef uint64_t field, raw
    cdef uint64_t value = 0
    cdef int64_t t = 0
    cdef int wt, i
    cdef int64_t ts
    while pos < end:
        ts = pos
        if tag(p, &pos, end, 3, &field, &wt, o) < 0:
            return -1
        if field == 1:
            if expect(wt, 1, ts, 18, o) < 0:
                return -1
            if end - pos < 8:
                return fail(o, E_TRUNC_FIXED, pos, 18, 8, <uint64_t>(end - pos))
            value = 0
            for i in range(8):
                value |= (<uint64_t>p[pos + i]) << (8 * i)
            pos += 8
        elif field == 2:
            if expect(wt, 0, ts, 19, o) < 0 or varint(p, &pos, end, 19, &raw, o) < 0:
                return -1
            t = <int64_t>raw
        elif skip(p, &pos, end, field, wt, 3, ts, o) < 0:
            return -1
    cdef Py_ssize_t cap
    cdef void* q
    if o.nsamp + o.nhist >= o.max_samples:
        return fail(o, E_TOO_MANY_SAMPLES, pos, 3, <uint64_t>o.max_samples, 0)
    if o.nsamp >= o.capsamp:
        cap = o.capsamp * 2 if o.capsamp > 0 else 1024
        q = realloc(o.sidx, <size_t>cap * sizeof(int32_t))
        if q == NULL:
            return fail(o, E_NOMEM, pos, 3, 0, 0)
        o.sidx = <int32_t*>q
        q = realloc(o.ts, <size_t>cap * sizeof(int64_t))
        if q == NULL:
            return fail(o, E_NOMEM, pos, 3, 0, 0)
        o.ts = <int64_t*>q
        q = realloc(o.val, <size_t>cap * sizeof(uint64_t))
        if q == NULL:
            return fail(o, E_NOMEM, pos, 3, 0, 0)
        o.val = <uint64_t*>q
        o.capsamp = cap
    o.sidx[o.nsamp] = <int32_t>series_no
    o.ts[o.nsamp] = t
    o.val[o.nsamp] = value
    o.nsamp += 1
    return 0


cdef int timeseries(const uint8_t* p, int64_t pos, int64_t end, Out* o) noexcept nogil:
    cdef uint64_t field
    cdef int wt
    cdef int64_t ts, s, e
    cdef Py_ssize_t span_first = o.nspan
    cdef Py_ssize_t samp_before = o.nsamp
    cdef Py_ssize_t hist_before = o.nhist
    cdef int64_t series_no = o.nser
    cdef void* q
    while pos < end:
        ts = pos
        if tag(p, &pos, end, 1, &field, &wt, o) < 0:
            return -1
        if field == 1:
            if expect(wt, 2, ts, 12, o) < 0 or length(p, &pos, end, 12, &s, &e, o) < 0:
                return -1
            if check_label(p, s, e, o) < 0:
                return -1
            if o.nspan > span_first and o.spans[2 * o.nspan - 1] == ts:
                o.spans[2 * o.nspan - 1] = e
            else:
                q = grow(o.spans, &o.capspan, 2 * (o.nspan + 1), sizeof(int64_t))
                if q == NULL:
                    return fail(o, E_NOMEM, ts, 1, 0, 0)
                o.spans = <int64_t*>q
                o.spans[2 * o.nspan] = ts
                o.spans[2 * o.nspan + 1] = e
                o.nspan += 1
        elif field == 2:
            if expect(wt, 2, ts, 13, o) < 0 or length(p, &pos, end, 13, &s, &e, o) < 0:
                return -1
            if sample(p, s, e, series_no, o) < 0:
                return -1
        elif field == 3 or field == 4:
            if expect(wt, 2, ts, 14 if field == 3 else 15, o) < 0:
                return -1
            if length(p, &pos, end, 14 if field == 3 else 15, &s, &e, o) < 0:
                return -1
            if field == 3:
                o.exemplars += 1
            else:
                if o.nsamp + o.nhist >= o.max_samples:
                    return fail(o, E_TOO_MANY_SAMPLES, e, 1, <uint64_t>o.max_samples, 0)
                q = grow(o.hist, &o.caphist, 3 * (o.nhist + 1), sizeof(int64_t))
                if q == NULL:
                    return fail(o, E_NOMEM, ts, 1, 0, 0)
                o.hist = <int64_t*>q
                o.hist[3 * o.nhist] = series_no
                o.hist[3 * o.nhist + 1] = s
                o.hist[3 * o.nhist + 2] = e
                o.nhist += 1
        elif skip(p, &pos, end, field, wt, 1, ts, o) < 0:
            return -1
    if o.nsamp == samp_before and o.nhist == hist_before:
        o.nspan = span_first
        return 0
    if o.nser >= o.max_series:
        return fail(o, E_TOO_MANY_SERIES, end, 1, <uint64_t>o.max_series, 0)
    q = grow(o.series, &o.capser, 2 * (o.nser + 1), sizeof(int64_t))
    if q == NULL:
        return fail(o, E_NOMEM, end, 1, 0, 0)
    o.series = <int64_t*>q
    o.series[2 * o.nser] = span_first
    o.series[2 * o.nser + 1] = o.nspan - span_first
    o.nser += 1
    return 0


cdef int metadata(const uint8_t* p, int64_t pos, int64_t end, Out* o) noexcept nogil:
    cdef uint64_t field, v
    cdef int wt, ctx, slot
    cdef int64_t ts, s, e
    cdef int64_t m[META_FIELDS]
    cdef int i
    for i in range(META_FIELDS):
        m[i] = 0
    m[0] = pos
    while pos < end:
        ts = pos
        if tag(p, &pos, end, 4, &field, &wt, o) < 0:
            return -1
        if field == 1:
            if expect(wt, 0, ts, 20, o) < 0 or varint(p, &pos, end, 20, &v, o) < 0:
                return -1
            m[1] = <int64_t>v
        elif field == 2 or field == 4 or field == 5:
            ctx = 21 if field == 2 else (22 if field == 4 else 23)
            slot = 2 if field == 2 else (4 if field == 4 else 6)
            if expect(wt, 2, ts, ctx, o) < 0 or length(p, &pos, end, ctx, &s, &e, o) < 0:
                return -1
            m[slot] = s
            m[slot + 1] = e - s
        elif skip(p, &pos, end, field, wt, 4, ts, o) < 0:
            return -1
    cdef void* q = grow(o.meta, &o.capmeta, META_FIELDS * (o.nmeta + 1), sizeof(int64_t))
    if q == NULL:
        return fail(o, E_NOMEM, end, 4, 0, 0)
    o.meta = <int64_t*>q
    for i in range(META_FIELDS):
        o.meta[META_FIELDS * o.nmeta + i] = m[i]
    o.nmeta += 1
    return 0


cdef int walk(const uint8_t* p, int64_t n, Out* o) noexcept nogil:
    cdef int64_t pos = 0
    cdef int64_t ts, s, e
    cdef uint64_t field
    cdef int wt
    while pos < n:
        ts = pos
        if tag(p, &pos, n, 0, &field, &wt, o) < 0:
            return -1
        if field == 1:
            if expect(wt, 2, ts, 10, o) < 0 or length(p, &pos, n, 10, &s, &e, o) < 0:
                return -1
            if timeseries(p, s, e, o) < 0:
                return -1
        elif field == 3:
            if expect(wt, 2, ts, 11, o) < 0 or length(p, &pos, n, 11, &s, &e, o) < 0:
                return -1
            if metadata(p, s, e, o) < 0:
                return -1
        elif skip(p, &pos, n, field, wt, 0, ts, o) < 0:
            return -1
    return 0


cdef void release(Out* o) noexcept nogil:
    free(o.sidx)
    free(o.ts)
    free(o.val)
    free(o.spans)
    free(o.series)
    free(o.meta)
    free(o.hist)


# A smaller body is walked holding the GIL: the walk takes microseconds, while giving the GIL up and
# winning it back waits up to the switch interval (5 ms) when query threads are busy.
cdef int64_t NOGIL_MIN_BYTES = 65536


def split_write_request(data, make_error, int64_t max_series=-1, int64_t max_samples=-1):
    """Splits an uncompressed WriteRequest (any buffer) into
    ``(keys, series_idx, timestamps, values, metadata, exemplars, histograms)`` where
    ``histograms`` is an (n, 3) int64 array: (series number, start, end) of each Histogram message.

    On malformed input, or more than ``max_series`` series with samples / ``max_samples`` samples
    (negative: no limit), raises ``make_error(code, offset, context, a, b)``."""
    cdef const uint8_t[::1] view = data
    cdef int64_t n = view.shape[0]
    cdef const uint8_t* p = &view[0] if n > 0 else NULL
    cdef Out o
    cdef int rc = 0
    cdef Py_ssize_t i, j, first, cnt
    cdef int64_t* sp
    cdef int32_t[::1] sidx_v
    cdef int64_t[::1] ts_v
    cdef int64_t[::1] hist_v
    cdef uint64_t[::1] val_v
    cdef int64_t* m
    o.sidx = NULL
    o.ts = NULL
    o.val = NULL
    o.nsamp = 0
    o.capsamp = 0
    o.spans = NULL
    o.nspan = 0
    o.capspan = 0
    o.series = NULL
    o.nser = 0
    o.capser = 0
    o.meta = NULL
    o.nmeta = 0
    o.capmeta = 0
    o.exemplars = 0
    o.hist = NULL
    o.nhist = 0
    o.caphist = 0
    o.max_series = max_series if max_series >= 0 else INT64_MAX
    o.max_samples = max_samples if max_samples >= 0 else INT64_MAX
    o.err = 0
    try:
        if n > NOGIL_MIN_BYTES:
            with nogil:
                rc = walk(p, n, &o)
        elif n > 0:
            rc = walk(p, n, &o)
        if rc < 0:
            raise make_error(o.err, o.err_off, o.err_ctx, o.err_a, o.err_b)
        keys = [None] * o.nser
        for i in range(o.nser):
            first = o.series[2 * i]
            cnt = o.series[2 * i + 1]
            sp = o.spans + 2 * first
            if cnt == 1:
                keys[i] = (<const char*>p)[sp[0]:sp[1]]
            else:
                keys[i] = b"".join([(<const char*>p)[sp[2 * j]:sp[2 * j + 1]] for j in range(cnt)])
        sidx = np.empty(o.nsamp, dtype=np.int32)
        ts = np.empty(o.nsamp, dtype=np.int64)
        vals = np.empty(o.nsamp, dtype=np.uint64)
        if o.nsamp > 0:
            sidx_v = sidx
            ts_v = ts
            val_v = vals
            memcpy(&sidx_v[0], o.sidx, o.nsamp * sizeof(int32_t))
            memcpy(&ts_v[0], o.ts, o.nsamp * sizeof(int64_t))
            memcpy(&val_v[0], o.val, o.nsamp * sizeof(uint64_t))
        meta = []
        for i in range(o.nmeta):
            m = o.meta + META_FIELDS * i
            meta.append((
                m[1],
                (<const char*>p)[m[2]:m[2] + m[3]],
                (<const char*>p)[m[4]:m[4] + m[5]],
                (<const char*>p)[m[6]:m[6] + m[7]],
                m[0],
            ))
        hist = np.empty((o.nhist, 3), dtype=np.int64)
        if o.nhist > 0:
            hist_v = hist.reshape(-1)
            memcpy(&hist_v[0], o.hist, 3 * o.nhist * sizeof(int64_t))
        return keys, sidx, ts, vals.view(np.float64), meta, o.exemplars, hist
    finally:
        release(&o)


def label_pairs(key):
    """Parses a series key (a run of encoded ``Label`` fields) into ``[(name, value), ...]`` bytes."""
    cdef const uint8_t[::1] view = key
    cdef int64_t n = view.shape[0]
    if n == 0:
        return []
    cdef const uint8_t* p = &view[0]
    cdef Out o
    o.err = 0
    cdef int64_t pos = 0, ts, s, e, q, qs, qe
    cdef int64_t ns, ne, vs, ve
    cdef uint64_t field, f2
    cdef int wt, w2, ctx
    out = []
    while pos < n:
        ts = pos
        if tag(p, &pos, n, 1, &field, &wt, &o) < 0:
            break
        if field != 1:
            if skip(p, &pos, n, field, wt, 1, ts, &o) < 0:
                break
            continue
        if expect(wt, 2, ts, 12, &o) < 0 or length(p, &pos, n, 12, &s, &e, &o) < 0:
            break
        ns = ne = vs = ve = 0
        q = s
        while q < e:
            qs = q
            if tag(p, &q, e, 2, &f2, &w2, &o) < 0:
                break
            if f2 == 1 or f2 == 2:
                ctx = 16 if f2 == 1 else 17
                if expect(w2, 2, qs, ctx, &o) < 0 or length(p, &q, e, ctx, &qs, &qe, &o) < 0:
                    break
                if f2 == 1:
                    ns = qs
                    ne = qe
                else:
                    vs = qs
                    ve = qe
            elif skip(p, &q, e, f2, w2, 2, qs, &o) < 0:
                break
        if o.err:
            break
        out.append(((<const char*>p)[ns:ne], (<const char*>p)[vs:ve]))
    if o.err:
        from clearsight.ingest.remote_write import _wire_error
        raise _wire_error(o.err, o.err_off, o.err_ctx, o.err_a, o.err_b)
    return out
