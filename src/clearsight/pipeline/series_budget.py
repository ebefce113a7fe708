"""The default of ``limits.max_series_total`` (``auto``): sized from the host's memory at start, the
way DuckDB sizes its default memory limit from the machine's RAM.

What an active series costs with the default settings (docs/storage.md "Memory", measured with
``bench/series_memory.py`` and the remote-write bench):

- its identity (labels, index postings, key tables, min/max arrays): ~360 bytes;
- its head rows until a compaction: up to 2 x ``compact_samples_per_series`` (120) rows (the
  writer compacts when the head reaches its bound, or at twice it under constant load) x ~25 bytes
  (20 in the in-memory head, ~3-8 in the head log's record that DuckDB holds until a checkpoint):
  ~6,000 bytes;
- its chunks' entries in the in-memory chunk catalogue: 34 bytes per chunk; 15 days of 15 s scrapes
  in 720-sample chunks are 120 chunks: ~4,100 bytes.

That is ~10.5 KB; ``BYTES_PER_SERIES`` rounds it up to 12 KiB for the allocator's slack. The series
may use ``RAM_SHARE`` of the host's memory (the rest is the server's code, DuckDB's buffer pool and
the caches, each bounded by its own setting): 1 GiB of RAM allows ~43,000 series, 4 GiB ~175,000,
24 GB ~1,000,000, and never fewer than ``MIN_SERIES``.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTO = -1  # limits.max_series_total: "auto" (the default)
BYTES_PER_SERIES = 12 * 1024
RAM_SHARE = 0.5
MIN_SERIES = 10_000

_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def host_memory_bytes() -> int:
    """The memory this process may use: the machine's RAM, or the container's (cgroup v2 or v1)
    memory limit when that is lower."""
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < ram:
            return int(text)
    return int(ram)


def series_total_for(memory_bytes: int) -> int:
    """The ``auto`` series cap for a host with ``memory_bytes`` of memory."""
    return max(MIN_SERIES, int(memory_bytes * RAM_SHARE) // BYTES_PER_SERIES)


def resolve_series_total(configured: int) -> tuple[int, int | None]:
    """The series cap to apply and, when it was ``AUTO``, the memory it was sized from."""
    if configured != AUTO:
        return configured, None
    memory = host_memory_bytes()
    return series_total_for(memory), memory
