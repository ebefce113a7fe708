"""An in-memory ``SeriesSelector``: holds series as numpy columns, for tests and the promqltest runner.

Not durable and not meant for production data; it implements exactly the read contract of
``store.interface.SeriesSelector`` (inclusive millisecond bounds, stale markers returned bit-exact,
an absent label matches as ""). Native histogram samples and start timestamps are kept too and
returned in ``SeriesData.histograms`` / ``SeriesData.start_timestamps``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import F64Array, I64Array, ObjArray, SeriesData


class MemorySeriesSelector:
    """Series kept sorted by label set; samples per series sorted by time (newest write wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[Labels, tuple[I64Array, F64Array, ObjArray | None]] = {}
        self._start_ts: dict[Labels, I64Array] = {}
        self._sorted: list[Labels] | None = None
        self._by_name: dict[str, list[Labels]] | None = None

    def __len__(self) -> int:
        return len(self._series)

    def add(self, labels: Labels, timestamps: Iterable[int] | I64Array,
            values: Iterable[float] | F64Array,
            histograms: Sequence[FloatHistogram | None] | None = None,
            start_timestamps: Sequence[int] | None = None) -> None:
        """Adds samples to a series (merging with existing samples; a later write of the same
        timestamp replaces the earlier value). ``histograms``, when given, is aligned with
        ``values``: a native histogram sample where not None (its float value is ignored).
        ``start_timestamps`` (ms, 0 = unknown), when given, is aligned with ``values`` too."""
        ts = np.asarray(list(timestamps) if not isinstance(timestamps, np.ndarray) else timestamps,
                        dtype=np.int64)
        vs = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
        if ts.shape != vs.shape:
            raise ValueError("timestamps and values differ in length")
        hs: ObjArray | None = None
        if histograms is not None and any(h is not None for h in histograms):
            hs = np.empty(len(histograms), dtype=object)
            hs[:] = list(histograms)
            if hs.shape != vs.shape:
                raise ValueError("histograms and values differ in length")
            vs = vs.copy()
            vs[hs != None] = np.nan  # noqa: E711
        st_new = np.asarray(start_timestamps, dtype=np.int64) if start_timestamps is not None else None
        with self._lock:
            old = self._series.get(labels)
            old_st = self._start_ts.get(labels)
            st: I64Array | None = None
            if st_new is not None or old_st is not None:
                st = np.concatenate([old_st if old_st is not None else np.zeros(0 if old is None else old[0].size,
                                                                                 dtype=np.int64),
                                     st_new if st_new is not None else np.zeros(ts.size, dtype=np.int64)])
            if old is not None:
                if hs is not None or old[2] is not None:
                    hs = np.concatenate([_obj_or_none(old[2], old[0].size), _obj_or_none(hs, ts.size)])
                ts = np.concatenate([old[0], ts])
                vs = np.concatenate([old[1], vs])
            # Stable sort, then keep the last write per timestamp.
            order = np.argsort(ts, kind="stable")
            ts, vs = ts[order], vs[order]
            if hs is not None:
                hs = hs[order]
            if st is not None:
                st = st[order]
            if ts.size > 1:
                keep = np.ones(ts.size, dtype=bool)
                keep[:-1] = ts[1:] != ts[:-1]
                ts, vs = ts[keep], vs[keep]
                if hs is not None:
                    hs = hs[keep]
                if st is not None:
                    st = st[keep]
            self._series[labels] = (ts, vs, hs)
            if st is not None:
                self._start_ts[labels] = st
            self._sorted = None
            self._by_name = None

    def delete_series(self, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int) -> int:
        """Removes the samples in [start_ms, end_ms] of the series matching any matcher set (the
        store's ``delete_series`` for one tenant); a series left empty is dropped. Returns how many
        samples were removed."""
        deleted = 0
        with self._lock:
            for lbls in list(self._series):
                if not any(all(m.matches_labels(lbls) for m in ms) for ms in matcher_sets):
                    continue
                ts, vs, hs = self._series[lbls]
                keep = (ts < start_ms) | (ts > end_ms)
                gone = int(ts.size - np.count_nonzero(keep))
                if gone == 0:
                    continue
                deleted += gone
                st = self._start_ts.pop(lbls, None)
                del self._series[lbls]
                if bool(keep.any()):
                    self._series[lbls] = (ts[keep], vs[keep], None if hs is None else hs[keep])
                    if st is not None:
                        self._start_ts[lbls] = st[keep]
            self._sorted = None
            self._by_name = None
        return deleted

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
            self._start_ts.clear()
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
            hs_parts: list[ObjArray | None] = []
            st_parts: list[I64Array | None] = []
            offsets = [0]
            for lbls in candidates:
                if not all(m.matches_labels(lbls) for m in matchers):
                    continue
                ts, vs, hs = self._series[lbls]
                a = int(np.searchsorted(ts, start_ms, side="left"))
                b = int(np.searchsorted(ts, end_ms, side="right"))
                if b <= a:
                    continue
                out_labels.append(lbls)
                ts_parts.append(ts[a:b])
                vs_parts.append(vs[a:b])
                hs_parts.append(None if hs is None else hs[a:b])
                sta = self._start_ts.get(lbls)
                st_parts.append(None if sta is None else sta[a:b])
                offsets.append(offsets[-1] + b - a)
        if not out_labels:
            return SeriesData.empty()
        offs = np.asarray(offsets, dtype=np.int64)
        tsa, vsa = np.concatenate(ts_parts), np.concatenate(vs_parts)
        hsa: ObjArray | None = None
        if not all(h is None for h in hs_parts):
            hsa = np.concatenate([_obj_or_none(h, p.size) for h, p in zip(hs_parts, ts_parts, strict=True)])
        sta_all: I64Array | None = None
        if not all(x is None for x in st_parts):
            sta_all = np.concatenate([x if x is not None else np.zeros(p.size, dtype=np.int64)
                                      for x, p in zip(st_parts, ts_parts, strict=True)])
        return SeriesData(out_labels, offs, tsa, vsa, histograms=hsa, start_timestamps=sta_all)


def _obj_or_none(h: ObjArray | None, n: int) -> ObjArray:
    if h is not None:
        return h
    return np.full(n, None, dtype=object)
