# cython: language_level=3
"""Stops query threads for a write at their next safe Python call, not their next checkpoint.

``write_priority.WritePriority`` pauses a query thread at the engine's checkpoints. Measured under
``bench/governance.py``, a query thread reached its next checkpoint 1.5 ms (p50) to 6.6 ms (p99)
after a write began, and until then it competed with the write for the GIL. ``arm`` sets a
profile function (CPython's per-thread ``c_profilefunc``, ``_PyEval_SetProfile``, the call
``threading.setprofile`` makes for the calling thread) on the registered query threads: each one
then reports its next Python function call or return (``PyTrace_CALL``/``PyTrace_RETURN``, between
two bytecodes, never inside C code) to ``_on_event`` which, when the thread's whole stack is in
code known to hold no lock a write could need (``allow``), clears the profile function and calls
the pause. A stack with any other frame (a store read holding the store's locks, the prepared-query
cache's lock, logging, metrics) is not paused there: the check runs again a few events later.
``disarm`` clears what is left once no write is in flight.

Profiling makes CPython 3.11 dispatch every bytecode of that thread through its tracing path (a
slower interpreter) and this check walks the stack, so it is armed only while a write is in
flight and cleared by each thread at its first pause. Threads are found by their ident among the
interpreter's thread states while holding the GIL (a thread state is deleted with the GIL held,
so none goes away during the walk).
"""

from cpython.object cimport PyObject

cdef extern from "frameobject.h":
    ctypedef struct PyFrameObject

cdef extern from "Python.h":
    ctypedef struct PyInterpreterState
    ctypedef int (*Py_tracefunc)(PyObject *, PyFrameObject *, int, PyObject *) noexcept
    ctypedef struct PyThreadState:
        unsigned long thread_id
        Py_tracefunc c_profilefunc
    int PyTrace_CALL
    int PyTrace_RETURN
    PyThreadState *PyThreadState_Get()
    PyInterpreterState *PyInterpreterState_Get()
    PyThreadState *PyInterpreterState_ThreadHead(PyInterpreterState *)
    PyThreadState *PyThreadState_Next(PyThreadState *)
    int _PyEval_SetProfile(PyThreadState *, Py_tracefunc, PyObject *)

# Events skipped after a stack that may not pause (the walk is the check's cost).
DEF SKIP = 8
# Deeper stacks are not paused (a query thread's stack is ~20-40 frames).
DEF MAX_DEPTH = 256

cdef int _skip = 0
cdef object _pause = None
cdef frozenset _files = frozenset()
cdef frozenset _bottom = frozenset()
cdef unsigned long long _paused = 0
cdef unsigned long long _refused = 0


def allow(pause, files, bottom):
    """``pause()`` is called at a safe point; ``files`` (co_filename) are code that may pause
    anywhere, ``bottom`` ((co_filename, co_name) pairs) frames that may sit below (thread start,
    pool worker)."""
    global _pause, _files, _bottom
    _pause = pause
    _files = frozenset(files)
    _bottom = frozenset(bottom)


cdef bint _safe(object f):
    cdef int depth = 0
    while f is not None:
        code = f.f_code
        if code.co_filename not in _files and (code.co_filename, code.co_name) not in _bottom:
            return False
        depth += 1
        if depth > MAX_DEPTH:
            return False
        f = f.f_back
    return True


cdef int _on_event(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) noexcept:
    global _skip, _paused, _refused
    if what != PyTrace_CALL and what != PyTrace_RETURN:
        return 0
    if _skip > 0:
        _skip -= 1
        return 0
    try:
        if not _safe(<object>frame):
            _skip = SKIP
            _refused += 1
            return 0
        _PyEval_SetProfile(PyThreadState_Get(), NULL, NULL)
        _paused += 1
        if _pause is not None:
            _pause()
    except BaseException:
        pass  # a profile function must not raise into the query: the checkpoints still pause it
    return 0


cdef int _swap(object idents, Py_tracefunc current, Py_tracefunc replacement):
    """Sets ``replacement`` as the profile function of the threads in ``idents`` whose profile
    function is ``current``; how many. Called with the GIL held."""
    cdef PyThreadState *ts = PyInterpreterState_ThreadHead(PyInterpreterState_Get())
    cdef int n = 0
    while ts != NULL:
        if ts.c_profilefunc == current and ts.thread_id in idents:
            _PyEval_SetProfile(ts, replacement, NULL)
            n += 1
        ts = PyThreadState_Next(ts)
    return n


def arm(idents):
    """Sets the profile function on the threads whose ident is in ``idents`` and that have none
    (another profiler's is left alone); returns how many were armed."""
    return _swap(idents, NULL, _on_event)


def disarm(idents):
    """Clears the profile function this module set on the threads in ``idents``; returns how many
    still had it."""
    return _swap(idents, _on_event, NULL)


def armed(unsigned long ident):
    """Whether the thread ``ident`` has this module's profile function set."""
    cdef PyThreadState *ts = PyInterpreterState_ThreadHead(PyInterpreterState_Get())
    while ts != NULL:
        if ts.thread_id == ident:
            return ts.c_profilefunc == _on_event
        ts = PyThreadState_Next(ts)
    return False


def counts():
    """(pauses begun from a profile event, stacks found unsafe) since the process started."""
    return _paused, _refused
