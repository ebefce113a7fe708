"""Buffer acquisition shared by the compiled modules (``cimport``ed; inline, so nothing is linked
across modules)."""

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer


cdef inline int take8(object obj, Py_buffer* buf, char kind) except -1:
    """Takes a C-contiguous 1-d buffer of 8-byte items of ``kind`` (b'q': int64, b'd': float64) from
    ``obj`` into ``buf`` (released by the caller). Cheaper than a typed memoryview (no object made)."""
    PyObject_GetBuffer(obj, buf, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    cdef const char* f = buf.format
    if f != NULL and (f[0] == b'@' or f[0] == b'=' or f[0] == b'<'):
        f += 1
    if (buf.itemsize != 8 or buf.ndim != 1 or f == NULL or f[1] != 0
            or not (f[0] == kind or (kind == b'q' and f[0] == b'l'))):
        PyBuffer_Release(buf)
        raise ValueError("expected 1-d contiguous int64 timestamps and float64 values")
    return 0
