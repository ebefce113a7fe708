"""``heap.release_free_memory`` hands freed heap memory back to the OS: the pattern the server's
first start leaves (a ~19 MiB argon2 block freed twice, so glibc's raised mmap threshold keeps the
second one in the heap) no longer counts in the RSS once it ran (glibc, Linux)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_freed_heap_blocks_leave_the_rss() -> None:
    code = textwrap.dedent("""
        import ctypes
        from clearsight.heap import release_free_memory

        def rss_kib():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        size = 19 << 20
        for _ in range(2):  # the first is mmapped and raises the threshold; the second comes from the heap
            p = libc.malloc(size)
            ctypes.memset(p, 1, size)
            libc.free(p)
        before = rss_kib()
        release_free_memory()
        print(before, rss_kib())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert before - after >= 15 << 10, (before, after)  # KiB: most of the 19 MiB block went back
