"""Rollup buckets: per series and resolution, what a range function needs of the float samples in
each bucket ``(end - resolution, end]`` (left-open, right-closed, as Prometheus' range windows).

A bucket keeps the first and last sample (timestamp and value), the sample count, min, max, sum
and the counter-reset correction *inside* the bucket (the sum of the value before every decrease
between two consecutive samples of the bucket, Prometheus' ``correctForCounterResets``). A window
made of whole consecutive buckets then has: its first/last sample from the first/last non-empty
bucket, its count, min, max and sum by reduction, and its reset correction as the buckets' own
corrections plus one per pair of consecutive non-empty buckets whose first value is below the
previous bucket's last value. That is exactly what ``rate``/``increase``/``delta`` and the
``*_over_time`` functions read from a window of raw samples (see ``query/promql/fn_rollup.py``).

Stale markers are not samples here (the engine drops them from range windows before any function).
Empty buckets are not stored. No I/O: the arrays are built, combined and cut here; the embedded
store encodes them (``store/embedded/rollups.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import F64Array, I64Array, stale_mask

FIVE_MINUTES_MS = 300_000
ONE_HOUR_MS = 3_600_000
RESOLUTIONS_MS = (FIVE_MINUTES_MS, ONE_HOUR_MS)


@dataclass
class Buckets:
    """Bucket columns, all of one length, grouped by series (the owner keeps the offsets) and
    ascending by ``end`` within a series."""

    end: I64Array  # the bucket holds samples with end - resolution < t <= end
    cnt: I64Array  # samples (>= 1)
    t_first: I64Array
    t_last: I64Array
    v_first: F64Array
    v_last: F64Array
    vmin: F64Array  # NaN only when every value is NaN (np.fmin, as min_over_time)
    vmax: F64Array
    vsum: F64Array  # plain sequential sum (see docs/storage.md "Rollups" for its tolerance)
    corr: F64Array  # counter-reset correction between consecutive samples inside the bucket

    def __len__(self) -> int:
        return int(self.end.shape[0])

    def take(self, idx: npt.NDArray[np.intp] | slice) -> Buckets:
        return Buckets(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def empty() -> Buckets:
        i = np.zeros(0, dtype=np.int64)
        f = np.zeros(0, dtype=np.float64)
        return Buckets(i, i, i, i, f, f, f, f, f, f)

    @staticmethod
    def concat(parts: list[Buckets]) -> Buckets:
        if not parts:
            return Buckets.empty()
        if len(parts) == 1:
            return parts[0]
        return Buckets(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Buckets)))


BUCKET_FIELDS = tuple(f.name for f in fields(Buckets))


def bucket_end(ts: I64Array, res_ms: int) -> I64Array:
    """The end of the bucket holding each timestamp: the smallest multiple of ``res_ms`` >= ts."""
    out: I64Array = -((-ts) // res_ms) * res_ms
    return out


def _segments(ufunc: np.ufunc, a: npt.NDArray[np.float64], lo: I64Array, hi: I64Array) -> F64Array:
    """``ufunc`` reduced over every non-empty index range ``[lo, hi)`` of ``a``."""
    if lo.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    ext = np.append(a, 0.0)
    idx = np.column_stack([lo, hi]).ravel()
    with np.errstate(all="ignore"):
        out: F64Array = ufunc.reduceat(ext, idx)[::2]
    return out


def from_samples(sids: npt.NDArray[np.uint32], ts: I64Array, vals: F64Array,
                 res_ms: int) -> tuple[npt.NDArray[np.uint32], Buckets]:
    """Buckets of raw samples sorted by (series, ts), unique per (series, ts); stale markers are
    dropped first. Returns the series id of every bucket and the buckets."""
    keep = ~stale_mask(vals)
    if not bool(keep.all()):
        sids, ts, vals = sids[keep], ts[keep], vals[keep]
    n = int(ts.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.uint32), Buckets.empty()
    end = bucket_end(ts, res_ms)
    new = np.ones(n, dtype=bool)
    new[1:] = (sids[1:] != sids[:-1]) | (end[1:] != end[:-1])
    starts = np.flatnonzero(new).astype(np.int64)
    stops = np.append(starts[1:], n).astype(np.int64)
    # A counter reset between consecutive samples of one bucket adds the value before it.
    dec = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        np.less(vals[1:], vals[:-1], out=dec[1:])
    dec[starts] = False
    contrib = np.zeros(n, dtype=np.float64)
    pos = np.flatnonzero(dec)
    contrib[pos] = vals[pos - 1]
    b = Buckets(
        end=end[starts],
        cnt=stops - starts,
        t_first=ts[starts],
        t_last=ts[stops - 1],
        v_first=vals[starts],
        v_last=vals[stops - 1],
        vmin=_segments(np.fmin, vals, starts, stops),
        vmax=_segments(np.fmax, vals, starts, stops),
        vsum=_segments(np.add, vals, starts, stops),
        corr=_segments(np.add, contrib, starts, stops),
    )
    return sids[starts], b


def cross_corrections(b: Buckets, series_start: npt.NDArray[np.bool_]) -> F64Array:
    """Per bucket: the previous bucket's last value when this bucket's first value is below it
    (a counter reset between the two buckets), else 0; 0 at the first bucket of each series
    (``series_start``)."""
    out = np.zeros(len(b), dtype=np.float64)
    if len(b) < 2:
        return out
    with np.errstate(invalid="ignore"):
        reset = b.v_first[1:] < b.v_last[:-1]
    reset &= ~series_start[1:]
    pos = np.flatnonzero(reset) + 1
    out[pos] = b.v_last[pos - 1]
    return out


def aggregate(b: Buckets, cross: F64Array, lo: I64Array, hi: I64Array, end: I64Array) -> Buckets:
    """One bucket per window ``[lo, hi)`` of consecutive buckets of one series (non-empty:
    ``hi > lo``); ``cross`` from ``cross_corrections``; ``end`` the windows' ends."""
    if lo.shape[0] == 0:
        return Buckets.empty()
    ccnt = np.concatenate([[0], np.cumsum(b.cnt)])
    last = hi - 1
    corr = _segments(np.add, b.corr, lo, hi)
    inner = hi > lo + 1
    if bool(inner.any()):
        x = _segments(np.add, cross, lo + 1, np.maximum(hi, lo + 1))
        corr = corr + np.where(inner, x, 0.0)
    return Buckets(
        end=end,
        cnt=(ccnt[hi] - ccnt[lo]).astype(np.int64),
        t_first=b.t_first[lo],
        t_last=b.t_last[last],
        v_first=b.v_first[lo],
        v_last=b.v_last[last],
        vmin=_segments(np.fmin, b.vmin, lo, hi),
        vmax=_segments(np.fmax, b.vmax, lo, hi),
        vsum=_segments(np.add, b.vsum, lo, hi),
        corr=corr,
    )


def coarsen(sids: npt.NDArray[np.uint32], b: Buckets,
            res_ms: int) -> tuple[npt.NDArray[np.uint32], Buckets]:
    """Buckets of a coarser resolution ``res_ms`` (a multiple of the input's) from buckets sorted
    by (series, end): exact, since each coarse bucket is whole fine buckets."""
    n = len(b)
    if n == 0:
        return np.zeros(0, dtype=np.uint32), Buckets.empty()
    end = bucket_end(b.end, res_ms)
    series_start = np.ones(n, dtype=bool)
    series_start[1:] = sids[1:] != sids[:-1]
    new = series_start.copy()
    new[1:] |= end[1:] != end[:-1]
    lo = np.flatnonzero(new).astype(np.int64)
    hi = np.append(lo[1:], n).astype(np.int64)
    return sids[lo], aggregate(b, cross_corrections(b, series_start), lo, hi, end[lo])
