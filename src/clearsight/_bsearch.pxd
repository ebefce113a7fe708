"""Binary searches over sorted memoryviews, shared by the compiled modules (``cimport``ed; inline,
so nothing is linked across modules)."""

from libc.stdint cimport int64_t, uint32_t

ctypedef fused key_t:
    uint32_t
    int64_t


cdef inline Py_ssize_t lower_bound(const key_t[::1] a, Py_ssize_t lo, Py_ssize_t hi, key_t x) noexcept nogil:
    """First position in a[lo:hi] (sorted) whose value is >= x (hi: none)."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline Py_ssize_t upper_bound(const key_t[::1] a, Py_ssize_t lo, Py_ssize_t hi, key_t x) noexcept nogil:
    """First position in a[lo:hi] (sorted) whose value is > x (hi: none)."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline Py_ssize_t ptr_bound(const int64_t* a, Py_ssize_t n, int64_t x, bint after) noexcept nogil:
    """First position in a[:n] (sorted) holding a value > x (``after``) or >= x (not ``after``):
    the searches above on a raw pointer (a typed memoryview per array costs an object per call)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x or (after and a[mid] == x):
            lo = mid + 1
        else:
            hi = mid
    return lo
