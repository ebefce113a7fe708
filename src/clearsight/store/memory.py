"""An in-memory ``SeriesSelector``: holds series as numpy columns, for tests and the promqltest runner.

Not durable and not meant for production data; it implements exactly the read contract of
``store.interface.SeriesSelector`` (inclusive millisecond bounds, stale markers returned bit-exact,
an absent label matches as "").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import F64Array, I64Array, SeriesData


class MemorySeriesSelector:
    """Series kept sorted by label set; samples per series sorted by time (newest write wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[Labels, tuple[I64Array, F64Array]] = {}
        self._sorted: list[Labels] | None = None
        self._by_name: dict[str, list[Labels]] | None = None

    def __len__(self) -> int:
        return len(self._series)

    def add(self, labels: Labels, timestamps: Iterable[int] | I64Array,
            values: Iterable[float] | F64Array) -> None:
        """Adds samples to a series (merging with existing samples; a later write of the same
        timestamp replaces the earlier value)."""
        ts = np.asarray(list(timestamps) if not isinstance(timestamps, np.ndarray) else timestamps,
                        dtype=np.int64)
        vs = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
        if ts.shape != vs.shape:
            raise ValueError("timestamps and values differ in length")
        with self._lock:
            old = self._series.get(labels)
            if old is not None:
                ts = np.concatenate([old[0], ts])
                vs = np.concatenate([old[1], vs])
            # Stable sort, then keep the last write per timestamp.
            order = np.argsort(ts, kind="stable")
            ts, vs = ts[order], vs[order]
            if ts.size > 1:
                keep = np.ones(ts.size, dtype=bool)
                keep[:-1] = ts[1:] != ts[:-1]
                ts, vs = ts[keep], vs[keep]
            self._series[labels] = (ts, vs)
            self._sorted = None
            self._by_name = None

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
            self._sorted = None
            self._by_name = None

    def all_labels(self) -> list[Labels]:
        with self._lock:
            return self._index()[0]

    def _index(self) -> tuple[list[Labels], dict[str, list[Labels]]]:
        if self._sorted is None or self._by_name is None:
            self._sorted = sorted(self._series)
            by_name: dict[str, list[Labels]] = {}
            for lbls in self._sorted:
                name = ""
                for n, v in lbls:
                    if n == "__name__":
                        name = v
                        break
                by_name.setdefault(name, []).append(lbls)
            self._by_name = by_name
        return self._sorted, self._by_name

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        with self._lock:
            all_sorted, by_name = self._index()
            candidates = all_sorted
            for m in matchers:
                if m.name == "__name__" and m.type is MatchType.EQ:
                    candidates = by_name.get(m.value, [])
                    break
            out_labels: list[Labels] = []
            ts_parts: list[I64Array] = []
            vs_parts: list[F64Array] = []
            offsets = [0]
            for lbls in candidates:
                if not all(m.matches_labels(lbls) for m in matchers):
                    continue
                ts, vs = self._series[lbls]
                a = int(np.searchsorted(ts, start_ms, side="left"))
                b = int(np.searchsorted(ts, end_ms, side="right"))
                if b <= a:
                    continue
                out_labels.append(lbls)
                ts_parts.append(ts[a:b])
                vs_parts.append(vs[a:b])
                offsets.append(offsets[-1] + b - a)
        if not out_labels:
            return SeriesData.empty()
        return SeriesData(out_labels, np.asarray(offsets, dtype=np.int64),
                          np.concatenate(ts_parts), np.concatenate(vs_parts))
