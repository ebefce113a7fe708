"""Hands memory the process freed back to the OS.

glibc keeps freed memory in its arenas, and after a large block is freed it raises its mmap
threshold, so later large blocks come from the heap and stay there when freed: the RSS then stays
at the last peak. ``release_free_memory`` (``malloc_trim``) returns it; a no-op without glibc.
Called after a compaction (the metrics store) and once the server is built (the first start's
argon2 hash of the admin password leaves ~19 MiB otherwise; docs/storage.md "Memory").
"""

from __future__ import annotations

import ctypes


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


_LIBC = _load_libc()


def release_free_memory() -> None:
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
