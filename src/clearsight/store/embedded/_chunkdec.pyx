# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native chunk decoder: the inverse of ``chunks.encode`` in one pass per chunk, cut to a time range.

Per chunk: one zstd decompression (pyarrow's codec, the same as ``chunks.decode``), then for every
sample the 16 byte planes are gathered into the two int64 words, unzigzagged and integrated
(timestamps twice, DECIMAL values once, XOR values by xor), and samples outside ``[lo, hi]`` are
skipped. The result is bit for bit what ``chunks.decode`` followed by the range filter gives;
``tests/unit/store/test_chunks.py`` checks that on random chunks.
"""

import numpy as np

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

import pyarrow as pa

cdef double _POW10[10]
_POW10[:] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]


cdef inline uint64_t _gather(const uint8_t* planes, Py_ssize_t m, Py_ssize_t j) nogil:
    cdef uint64_t w = 0
    cdef int p
    for p in range(8):
        w |= (<uint64_t>planes[p * m + j]) << (8 * p)
    return w


cdef inline uint64_t _unzigzag(uint64_t z) nogil:
    return (z >> 1) ^ (<uint64_t>0 - (z & 1))


def decode_range(list data, const int64_t[:] n, const uint8_t[:] codec, const uint8_t[:] scale,
                 int64_t lo, int64_t hi):
    """Decodes chunks (in order) keeping samples with ``lo <= ts <= hi``.

    Returns ``(ts, values, kept)``: the kept samples concatenated chunk after chunk, and the number
    kept per chunk."""
    cdef Py_ssize_t nchunks = n.shape[0]
    cdef Py_ssize_t total = 0
    cdef Py_ssize_t i, j, m, out = 0, before
    for i in range(nchunks):
        total += n[i]
    ts_arr = np.empty(total, dtype=np.int64)
    val_arr = np.empty(total, dtype=np.float64)
    kept_arr = np.empty(nchunks, dtype=np.int64)
    cdef int64_t[::1] ts_out = ts_arr
    cdef double[::1] val_out = val_arr
    cdef int64_t[::1] kept = kept_arr
    cdef const uint8_t* buf
    cdef const uint8_t* vplanes
    cdef uint64_t d, t, k, x, z
    cdef double p, v
    cdef int is_dec
    cdef bytes raw
    decompress = pa.decompress
    for i in range(nchunks):
        m = n[i]
        raw = decompress(data[i], decompressed_size=16 * m, codec="zstd", asbytes=True)
        if len(raw) != 16 * m:
            raise ValueError("chunk payload has the wrong size")
        buf = <const uint8_t*><char*>raw
        vplanes = buf + 8 * m
        is_dec = codec[i] == 1
        if is_dec:
            if scale[i] > 9:
                raise ValueError("chunk scale out of range")
            p = _POW10[scale[i]]
        before = out
        with nogil:
            d = 0
            t = 0
            k = 0
            x = 0
            for j in range(m):
                d += _unzigzag(_gather(buf, m, j))
                t += d
                z = _gather(vplanes, m, j)
                if is_dec:
                    k += _unzigzag(z)
                else:
                    x ^= z
                if <int64_t>t < lo or <int64_t>t > hi:
                    continue
                ts_out[out] = <int64_t>t
                if is_dec:
                    val_out[out] = (<double>(<int64_t>k)) / p
                else:
                    memcpy(&v, &x, 8)
                    val_out[out] = v
                out += 1
        kept[i] = out - before
    return ts_arr[:out], val_arr[:out], kept_arr


cdef inline Py_ssize_t _first_ge(const int64_t[::1] a, Py_ssize_t lo, Py_ssize_t hi, int64_t x) nogil:
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline Py_ssize_t _first_gt(const int64_t[::1] a, Py_ssize_t lo, Py_ssize_t hi, int64_t x) nogil:
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def gather_in_range(list ts_parts, list val_parts, int64_t lo, int64_t hi):
    """The samples with ``lo <= ts <= hi`` of already decoded chunks (``ts_parts[i]`` ascending,
    ``val_parts[i]`` its values): two binary searches per chunk and one copy of what is kept,
    instead of concatenating whole chunks and masking. Returns ``(ts, values, kept)`` as
    ``decode_range`` does."""
    cdef Py_ssize_t k = len(ts_parts), i, a, b, m, total = 0, w = 0
    cdef const int64_t[::1] t
    cdef const double[::1] v
    kept = np.empty(k, dtype=np.int64)
    first = np.empty(k, dtype=np.intp)
    cdef int64_t[::1] kp = kept
    cdef Py_ssize_t[::1] fs = first
    for i in range(k):
        t = ts_parts[i]
        m = t.shape[0]
        a = _first_ge(t, 0, m, lo)
        b = _first_gt(t, a, m, hi)
        fs[i] = a
        kp[i] = b - a
        total += b - a
    out_ts = np.empty(total, dtype=np.int64)
    out_val = np.empty(total, dtype=np.float64)
    if total == 0:
        return out_ts, out_val, kept
    cdef int64_t[::1] ot = out_ts
    cdef double[::1] ov = out_val
    for i in range(k):
        m = kp[i]
        if m == 0:
            continue
        t = ts_parts[i]
        v = val_parts[i]
        a = fs[i]
        memcpy(&ot[w], &t[a], m * sizeof(int64_t))
        memcpy(&ov[w], &v[a], m * sizeof(double))
        w += m
    return out_ts, out_val, kept
