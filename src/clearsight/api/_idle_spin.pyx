# cython: language_level=3
"""Polls a file descriptor until it is readable or a time budget ends, without the GIL.

``api/idle_spin.py`` calls ``spin`` on the event loop's epoll descriptor after the loop answers a
request; see there why.
"""

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long nfds, int timeout)
    short POLLIN

cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec *tp)
    int CLOCK_MONOTONIC


cdef inline long long _now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return <long long>t.tv_sec * 1000000000 + t.tv_nsec


def spin(int fd, long long budget_ns):
    """Polls ``fd`` (non-blocking) until it is readable, or ``budget_ns`` nanoseconds have passed;
    the GIL is released meanwhile. Returns whether it became readable."""
    cdef pollfd p
    cdef int r = 0
    cdef long long end
    p.fd = fd
    p.events = POLLIN
    with nogil:
        end = _now_ns() + budget_ns
        while True:
            p.revents = 0
            r = poll(&p, 1, 0)
            if r != 0 or _now_ns() >= end:
                break
    return r > 0
