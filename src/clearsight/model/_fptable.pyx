# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native parts of ``model/fingerprint_table.py``: the 128-bit fingerprints of series keys and the
open-addressing table's lookups and inserts. ``fingerprint_table.py`` holds their Python
equivalents (the reference ``tests/unit/model/test_fingerprint_table.py`` compares them with)."""

import numpy as np

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject_Hash
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline uint64_t _murmur64a(const uint8_t* data, Py_ssize_t n, uint64_t seed) nogil:
    """MurmurHash64A (Austin Appleby, public domain)."""
    cdef uint64_t m = 0xc6a4a7935bd1e995ULL
    cdef int r = 47
    cdef uint64_t h = seed ^ (<uint64_t>n * m)
    cdef uint64_t k
    cdef Py_ssize_t i = 0, blocks = n // 8
    for i in range(blocks):
        memcpy(&k, data + 8 * i, 8)
        k *= m
        k ^= k >> r
        k *= m
        h ^= k
        h *= m
    cdef const uint8_t* tail = data + 8 * blocks
    cdef Py_ssize_t rest = n & 7
    if rest >= 7: h ^= (<uint64_t>tail[6]) << 48
    if rest >= 6: h ^= (<uint64_t>tail[5]) << 40
    if rest >= 5: h ^= (<uint64_t>tail[4]) << 32
    if rest >= 4: h ^= (<uint64_t>tail[3]) << 24
    if rest >= 3: h ^= (<uint64_t>tail[2]) << 16
    if rest >= 2: h ^= (<uint64_t>tail[1]) << 8
    if rest >= 1:
        h ^= <uint64_t>tail[0]
        h *= m
    h ^= h >> r
    h *= m
    h ^= h >> r
    return h


def murmur64a(bytes data, uint64_t seed):
    return _murmur64a(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), seed)


def fingerprints(list keys, uint64_t seed):
    """(hi, lo) uint64 arrays: hi = Python's hash of each key (SipHash, keyed per process), lo =
    MurmurHash64A of its bytes with ``seed``."""
    cdef Py_ssize_t n = len(keys), i
    hi = np.empty(n, dtype=np.uint64)
    lo = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] h = hi
    cdef uint64_t[::1] l = lo
    cdef bytes key
    for i in range(n):
        key = <bytes>keys[i]
        h[i] = <uint64_t>PyObject_Hash(key)
        l[i] = _murmur64a(<const uint8_t*>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), seed)
    return hi, lo


def get(const uint64_t[::1] thi, const uint64_t[::1] tlo, const uint32_t[::1] tval,
        const uint64_t[::1] hi, const uint64_t[::1] lo):
    """The value of each (hi, lo) in the table (0 when absent)."""
    cdef Py_ssize_t n = hi.shape[0], i
    cdef uint64_t mask = <uint64_t>tval.shape[0] - 1, pos
    out = np.zeros(n, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    for i in range(n):  # holding the GIL: atomic for other Python threads
        pos = lo[i] & mask
        while tval[pos] != 0:
            if tlo[pos] == lo[i] and thi[pos] == hi[i]:
                o[i] = tval[pos]
                break
            pos = (pos + 1) & mask
    return out


def put(uint64_t[::1] thi, uint64_t[::1] tlo, uint32_t[::1] tval,
        const uint64_t[::1] hi, const uint64_t[::1] lo, const uint32_t[::1] val):
    """Stores each (hi, lo) -> val (non-zero) in the table; an existing entry for (hi, lo) is
    overwritten. Returns how many entries are new. The table must keep a free slot."""
    cdef Py_ssize_t n = hi.shape[0], i, added = 0
    cdef uint64_t mask = <uint64_t>tval.shape[0] - 1, pos
    for i in range(n):  # holding the GIL: atomic for other Python threads
        pos = lo[i] & mask
        while tval[pos] != 0 and not (tlo[pos] == lo[i] and thi[pos] == hi[i]):
            pos = (pos + 1) & mask
        if tval[pos] == 0:
            added += 1
        thi[pos] = hi[i]
        tlo[pos] = lo[i]
        tval[pos] = val[i]
    return added
