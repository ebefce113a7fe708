"""numpy arrays read in place by the compiled modules (``cimport``ed; inline, so nothing is linked
across modules). Needs numpy's headers at build time (setup.py) and ``cnp.import_array()`` in the
module that cimports it."""

cimport numpy as cnp


cdef inline int data_1d(object a, int typenum, const void** data, Py_ssize_t* n) except -1:
    """The data (in ``data``) and length (in ``n``) of ``a``, a 1-d C-contiguous, aligned,
    native-order numpy array of ``typenum`` (an ``NPY_*`` type number); TypeError or ValueError for
    anything else.
    Cheaper than a typed memoryview or the buffer protocol: no object made, no format string built
    or parsed, only the array's header read."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"expected a numpy array, not {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_NDIM(arr) != 1 or cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISCARRAY_RO(arr):
        raise ValueError(f"expected a 1-d contiguous native-order array of numpy type number {typenum}, not "
                         f"{a.dtype} of shape {a.shape}")
    n[0] = cnp.PyArray_DIM(arr, 0)
    data[0] = cnp.PyArray_DATA(arr)
    return 0


cdef inline int data_c(object a, int typenum, const void** data, Py_ssize_t* n) except -1:
    """``data_1d`` of a C-contiguous array of any shape: its data and its number of elements (a
    (series x 1) column of values read as one run)."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"expected a numpy array, not {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISCARRAY_RO(arr):
        raise ValueError(f"expected a contiguous native-order array of numpy type number {typenum}, not "
                         f"{a.dtype} of shape {a.shape}")
    n[0] = cnp.PyArray_SIZE(arr)
    data[0] = cnp.PyArray_DATA(arr)
    return 0
