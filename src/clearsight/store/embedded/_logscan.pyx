# cython: boundscheck=False, wraparound=False
"""Native substring test of a decompressed log block: whether ``data`` holds every needle
(``memmem``, without the GIL, so the reader's threads scan blocks in parallel).
``log_blocks.contains_all`` falls back to ``bytes.__contains__`` without it (same answer; tested)."""

cdef extern from "string.h" nogil:
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen)


def contains_all(bytes data, tuple needles):
    """True when every bytes object in ``needles`` occurs in ``data``."""
    cdef const char *hay = data
    cdef size_t n = len(data)
    cdef const char *nd
    cdef size_t m
    cdef bint found = True
    for needle in needles:
        nd = <bytes>needle
        m = len(<bytes>needle)
        with nogil:
            found = memmem(hay, n, nd, m) != NULL
        if not found:
            return False
    return True
