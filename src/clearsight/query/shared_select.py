"""One store read per selector for a run of queries at one evaluation time (a rule group).

Rules of a group often select the same series over different windows (``rate(x[1m])``,
``rate(x[5m])``, ``x > 3``). ``SharedSelects`` is a ``SeriesSelector`` that reads each distinct set of
matchers once, over the widest window (relative to the evaluation time) that set needed in this or
an earlier run of the same group (``widths``, kept by the caller; a window disjoint from it, as an
``offset 1d`` next to the same selector without one, is read alone instead of widening the read to
cover both), and answers every select by slicing that read: the samples in ``[lo, hi]``, series left without samples dropped, fresh arrays,
exactly what the store would have returned for that range.

A wide read that would exceed the query's sample budget (``SampleLimitExceeded``) falls back to
reading the requested range alone; reads larger than ``max_cached_samples`` together are not kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clearsight.model.matchers import Matcher
from clearsight.model.samples import I64Array, SeriesData
from clearsight.store.interface import SampleLimitExceeded, SeriesSelector

SortKey = tuple[I64Array, int, int]

# Matcher sets remembered per group: templates' ``query`` calls can select a different set per
# alert, so the memory is bounded (forgotten all at once past this; it is only a hint).
MAX_WIDTHS = 10_000

# About 16 bytes per sample: 4M samples is about 64 MiB held during one group evaluation.
DEFAULT_MAX_CACHED_SAMPLES = 4_000_000


@dataclass
class _Read:
    lo: int
    hi: int
    data: SeriesData
    key: SortKey | None = None  # sort_key(data), once it is sliced


class SharedSelects:
    def __init__(
        self,
        inner: SeriesSelector,
        at_ms: int,
        widths: dict[Any, tuple[int, int]],
        max_cached_samples: int = DEFAULT_MAX_CACHED_SAMPLES,
    ) -> None:
        self.inner = inner
        self.at_ms = at_ms
        self.widths = widths  # matchers -> (ms before at_ms, ms after at_ms) ever needed
        self.max_cached_samples = max_cached_samples
        self._reads: dict[tuple[Matcher, ...], _Read] = {}
        self._held = 0
        self.store_reads = 0  # for tests and benchmarks

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        key = tuple(matchers)
        before, after = self.at_ms - start_ms, end_ms - self.at_ms
        known = self.widths.get(key)
        if known is not None:
            if -before > known[1] or -known[0] > after:
                # Disjoint from the window known for these matchers (an offset or @ far away):
                # read alone rather than everything in between.
                self.store_reads += 1
                return self.inner.select(matchers, start_ms, end_ms)
            before, after = max(before, known[0]), max(after, known[1])
        elif len(self.widths) >= MAX_WIDTHS:
            self.widths.clear()
        self.widths[key] = (before, after)
        read = self._reads.get(key)
        if read is None or start_ms < read.lo or end_ms > read.hi:
            read = self._read(key, self.at_ms - before, self.at_ms + after, start_ms, end_ms)
            if read is None:  # the wide read was over the budget: the requested range alone
                self.store_reads += 1
                return self.inner.select(matchers, start_ms, end_ms)
        if read.key is None:
            read.key = sort_key(read.data)
        return slice_range(read.data, start_ms, end_ms, read.key)

    def _read(self, key: tuple[Matcher, ...], lo: int, hi: int, start_ms: int, end_ms: int) -> _Read | None:
        self.store_reads += 1
        try:
            data = self.inner.select(key, lo, hi)
        except SampleLimitExceeded:
            if (lo, hi) == (start_ms, end_ms):
                raise
            return None
        read = _Read(lo, hi, data)
        n = int(data.timestamps.shape[0])
        old = self._reads.pop(key, None)
        if old is not None:
            self._held -= int(old.data.timestamps.shape[0])
        if self._held + n <= self.max_cached_samples:
            self._reads[key] = read
            self._held += n
        return read


def slice_range(data: SeriesData, lo: int, hi: int, key: SortKey | None = None) -> SeriesData:
    """The samples of ``data`` with ``lo <= t <= hi``, series without any dropped; new arrays.
    ``key`` is ``sort_key(data)`` when the caller keeps it (it slices the same data repeatedly)."""
    n = len(data)
    ts = data.timestamps
    if n == 0 or ts.shape[0] == 0:
        return SeriesData.empty()
    order, base, span = key if key is not None else sort_key(data)
    lo, hi = max(lo, base), min(hi, base + span - 1)  # both inside every series' block of ``order``
    if lo > hi:
        return SeriesData.empty()
    first = np.arange(n, dtype=np.int64) * span - base
    starts = np.searchsorted(order, first + lo, "left")
    counts = np.searchsorted(order, first + hi, "right") - starts
    keep = counts > 0
    counts, starts = counts[keep], starts[keep]
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    idx = np.arange(int(offsets[-1]), dtype=np.int64) + np.repeat(starts - offsets[:-1], counts)
    labels = [lbl for lbl, k in zip(data.labels, keep.tolist(), strict=True) if k]
    return SeriesData(
        labels,
        offsets,
        ts[idx],
        data.values[idx],
        None if data.histograms is None else data.histograms[idx],
        None if data.start_timestamps is None else data.start_timestamps[idx],
    )


def sort_key(data: SeriesData) -> SortKey:
    """``(order, base, span)``: ``order`` ascends over all samples, ``series index * span + (t -
    base)`` (timestamps ascend within a series; ``base`` is the earliest, ``span`` the time range
    plus one), so one ``searchsorted`` finds every series' bounds of a time range."""
    ts = data.timestamps
    if ts.shape[0] == 0:
        return ts, 0, 1
    base = int(ts.min())
    span = int(ts.max()) - base + 1
    series = np.repeat(np.arange(len(data), dtype=np.int64), np.diff(data.offsets))
    return series * span + (ts - base), base, span
