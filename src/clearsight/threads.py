"""Helpers for the process's own threads, shared by the layers (query, store) without one
importing the other."""

from __future__ import annotations

import contextlib
import os
import threading


def lower_priority(nice: int) -> None:
    """Raises the calling thread's nice value by ``nice`` (at most 19): the OS then runs it after
    the threads at normal priority (the write path). A no-op where not supported or permitted."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted: leave it
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
