"""Compressed native-histogram chunks: the histogram samples of one series, in one zstd frame.

A chunk of ``n`` samples (ascending, unique timestamps) is laid out column by column, then
compressed with zstd as a whole (all numpy, no Python step per bucket)::

    u8 version (1) | u8 flags (bit 0: integer counts) | u32 n | u32 P | u32 N | u32 C
    i64[n]  timestamps, delta-encoded (the first absolute)
    i8[n]   schema            u8[n] counter-reset hint
    f64[n]  sum               f64[n] zero_threshold
    count and zero_count: i64[n] each, delta-encoded over time (integer chunks), else f64[n]
    u32[n]  positive buckets per sample, u32[n] negative buckets, u32[n] custom bounds
    i32[P]  positive bucket indices, delta-encoded within each sample (the first absolute)
    counts  of those buckets: i64[P] delta-encoded within each sample like Prometheus' wire
            format (integer chunks), else f64[P]
    i32[N], counts[N]: the same for negative buckets
    f64[C]  custom bounds (schema -53), per sample

A chunk is "integer" when every count of every sample is a whole number below 2^53 (what integer
histograms from remote-write or OTLP are): its counts are stored as small integer deltas, which
zstd compresses far better than float bit patterns. Float chunks keep the counts bit-exact.
Sums, zero thresholds and custom bounds are always stored bit-exact as float64.
"""

from __future__ import annotations

import itertools
import struct

import numpy as np
import numpy.typing as npt

from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.samples import I64Array
from clearsight.store.embedded import zstd_frames

VERSION = 1
_FLAG_INT = 1
_HEADER = struct.Struct("<BBIIII")
_MAX_EXACT = float(2**53)
_ZSTD_LEVEL = 3


class HistogramChunkError(ValueError):
    """A chunk that cannot be decoded (damaged or from an unknown version)."""


def _delta_within(values: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Deltas of consecutive values, restarting (absolute value) at each segment start."""
    out = np.empty_like(values)
    if values.size == 0:
        return out
    out[0] = values[0]
    out[1:] = values[1:] - values[:-1]
    out[starts[starts < values.size]] = values[starts[starts < values.size]]
    return out


def _undelta_within(deltas: npt.NDArray[np.int64], lens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Inverse of ``_delta_within`` for segments of the given lengths."""
    if deltas.size == 0:
        return deltas.astype(np.int64)
    c = np.cumsum(deltas)
    starts = np.zeros(lens.size, dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    nonempty = lens > 0
    base = np.zeros(lens.size, dtype=np.int64)
    # Value of the running sum just before each segment.
    s = starts[nonempty]
    base[nonempty] = np.where(s > 0, c[np.maximum(s - 1, 0)], 0)
    return np.asarray(c - np.repeat(base, lens), dtype=np.int64)


def _segment_starts(lens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    starts = np.zeros(lens.size, dtype=np.int64)
    if lens.size:
        np.cumsum(lens[:-1], out=starts[1:])
    return starts[lens > 0]


def _deltas(a: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``a`` delta-encoded (the first entry absolute); cheaper than ``np.diff(prepend=0)``."""
    out = a.copy()
    out[1:] -= a[:-1]
    return out


def encode(ts: I64Array, hs: list[FloatHistogram]) -> bytes:
    """One chunk of the samples ``(ts[i], hs[i])`` (``ts`` ascending and unique)."""
    return encode_many(ts, hs, [0, len(hs)])[0]


def encode_many(ts: I64Array, hs: list[FloatHistogram], bounds: list[int]) -> list[bytes]:
    """Chunks of consecutive runs of samples: chunk ``k`` holds samples ``bounds[k]:bounds[k+1]``
    (each run's ``ts`` ascending and unique). The columns are built once for all runs (a group
    commit encodes one small chunk per series), then cut per chunk."""
    n = len(hs)
    if ts.shape[0] != n:
        raise ValueError("timestamps and histograms differ in length")
    npos = np.fromiter((h.positive.size for h in hs), dtype=np.int64, count=n)
    nneg = np.fromiter((h.negative.size for h in hs), dtype=np.int64, count=n)
    ncv = np.fromiter(
        (0 if h.custom_values is None else h.custom_values.size for h in hs), dtype=np.int64, count=n
    )
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0, dtype=np.float64)
    pos_idx = np.concatenate([h.positive_index for h in hs] or [empty_i]).astype(np.int64)
    pos_cnt = np.concatenate([h.positive for h in hs] or [empty_f]).astype(np.float64)
    neg_idx = np.concatenate([h.negative_index for h in hs] or [empty_i]).astype(np.int64)
    neg_cnt = np.concatenate([h.negative for h in hs] or [empty_f]).astype(np.float64)
    cvs = np.concatenate([h.custom_values for h in hs if h.custom_values is not None] or [empty_f])
    count = np.fromiter((h.count for h in hs), dtype=np.float64, count=n)
    zc = np.fromiter((h.zero_count for h in hs), dtype=np.float64, count=n)
    schema = np.fromiter((h.schema for h in hs), dtype=np.int8, count=n)
    hint = np.fromiter((int(h.counter_reset_hint) for h in hs), dtype=np.uint8, count=n)
    sums = np.fromiter((h.sum for h in hs), dtype=np.float64, count=n)
    zt = np.fromiter((h.zero_threshold for h in hs), dtype=np.float64, count=n)
    # Per sample: are all its counts whole numbers below 2^53?
    whole = _whole(count) & _whole(zc)
    for lens, cnt in ((npos, pos_cnt), (nneg, neg_cnt)):
        bad = ~_whole(cnt)
        if bad.any():
            whole &= np.bincount(np.repeat(np.arange(n), lens)[bad], minlength=n) == 0
    p_off, n_off, c_off = _offsets(npos), _offsets(nneg), _offsets(ncv)
    sides = []
    for idx, cnt, lens in ((pos_idx, pos_cnt, npos), (neg_idx, neg_cnt, nneg)):
        starts = _segment_starts(lens)
        safe = np.where(_whole(cnt), cnt, 0.0).astype(np.int64)
        sides.append((_delta_within(idx, starts).astype(np.int32), _delta_within(safe, starts), cnt))
    (p_idx_d, p_int_d, p_cnt), (n_idx_d, n_int_d, n_cnt) = sides
    count_i = np.where(_whole(count), count, 0.0).astype(np.int64)
    zc_i = np.where(_whole(zc), zc, 0.0).astype(np.int64)
    ts = ts.astype(np.int64)
    npos32, nneg32, ncv32 = npos.astype(np.uint32), nneg.astype(np.uint32), ncv.astype(np.uint32)
    out: list[bytes] = []
    for a, b in itertools.pairwise(bounds):
        integer = bool(whole[a:b].all())
        pa_, pb_, na_, nb_ = int(p_off[a]), int(p_off[b]), int(n_off[a]), int(n_off[b])
        parts: list[bytes] = [
            _HEADER.pack(
                VERSION, _FLAG_INT if integer else 0, b - a, pb_ - pa_, nb_ - na_, int(c_off[b] - c_off[a])
            ),
            _deltas(ts[a:b]).tobytes(),
            schema[a:b].tobytes(),
            hint[a:b].tobytes(),
            sums[a:b].tobytes(),
            zt[a:b].tobytes(),
        ]
        if integer:
            parts += [_deltas(count_i[a:b]).tobytes(), _deltas(zc_i[a:b]).tobytes()]
        else:
            parts += [count[a:b].tobytes(), zc[a:b].tobytes()]
        parts += [npos32[a:b].tobytes(), nneg32[a:b].tobytes(), ncv32[a:b].tobytes()]
        parts += [p_idx_d[pa_:pb_].tobytes(), (p_int_d if integer else p_cnt)[pa_:pb_].tobytes()]
        parts += [n_idx_d[na_:nb_].tobytes(), (n_int_d if integer else n_cnt)[na_:nb_].tobytes()]
        parts.append(cvs[int(c_off[a]) : int(c_off[b])].astype(np.float64).tobytes())
        raw = b"".join(parts)
        out.append(struct.pack("<I", len(raw)) + zstd_frames.compress(raw, _ZSTD_LEVEL))
    return out


def _offsets(lens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    off = np.zeros(lens.size + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    return off


def _whole(a: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which entries are whole numbers of magnitude below 2^53."""
    with np.errstate(invalid="ignore"):
        return np.asarray((np.floor(a) == a) & (np.abs(a) < _MAX_EXACT), dtype=np.bool_)


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = _HEADER.size

    def take(self, dtype: type[np.generic], count: int) -> npt.NDArray[np.generic]:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.raw):
            raise HistogramChunkError("histogram chunk is truncated")
        out = np.frombuffer(self.raw, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out


def decode(data: bytes) -> tuple[I64Array, list[FloatHistogram]]:
    """The samples of one chunk: (timestamps, histograms). The histograms' arrays are read-only."""
    try:
        size = struct.unpack_from("<I", data)[0]
        raw = zstd_frames.decompress(memoryview(data)[4:], size)
        version, flags, n, n_pos, n_neg, n_cv = _HEADER.unpack_from(raw)
    except (struct.error, zstd_frames.ZstdError) as e:
        raise HistogramChunkError(f"histogram chunk cannot be decompressed: {e}") from e
    if version != VERSION:
        raise HistogramChunkError(f"histogram chunk version {version}, this build reads {VERSION}")
    r = _Reader(raw)
    integer = bool(flags & _FLAG_INT)
    ts = np.cumsum(r.take(np.int64, n)).astype(np.int64)
    schema = r.take(np.int8, n).tolist()
    hint = r.take(np.uint8, n).tolist()
    sums = r.take(np.float64, n).tolist()
    zt = r.take(np.float64, n).tolist()
    if integer:
        count = np.cumsum(r.take(np.int64, n)).astype(np.float64).tolist()
        zc = np.cumsum(r.take(np.int64, n)).astype(np.float64).tolist()
    else:
        count = r.take(np.float64, n).tolist()
        zc = r.take(np.float64, n).tolist()
    npos = r.take(np.uint32, n).astype(np.int64)
    nneg = r.take(np.uint32, n).astype(np.int64)
    ncv = r.take(np.uint32, n).astype(np.int64)
    if int(npos.sum()) != n_pos or int(nneg.sum()) != n_neg or int(ncv.sum()) != n_cv:
        raise HistogramChunkError("histogram chunk bucket counts are inconsistent")
    sides: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
    for total, lens in ((n_pos, npos), (n_neg, nneg)):
        idx = _undelta_within(r.take(np.int32, total).astype(np.int64), lens)
        if integer:
            cnt = _undelta_within(r.take(np.int64, total).astype(np.int64), lens).astype(np.float64)
        else:
            cnt = np.asarray(r.take(np.float64, total), dtype=np.float64).copy()
        idx.flags.writeable = False
        cnt.flags.writeable = False
        sides.append((idx, cnt))
    cv_all = np.asarray(r.take(np.float64, n_cv), dtype=np.float64).copy()
    cv_all.flags.writeable = False
    (pi, pc), (ni, nc) = sides
    p_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(npos, out=p_off[1:])
    n_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nneg, out=n_off[1:])
    c_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(ncv, out=c_off[1:])
    po, no, co = p_off.tolist(), n_off.tolist(), c_off.tolist()
    ncv_l = ncv.tolist()
    out: list[FloatHistogram] = []
    for i in range(n):
        out.append(
            FloatHistogram(
                schema=schema[i],
                count=count[i],
                sum=sums[i],
                zero_threshold=zt[i],
                zero_count=zc[i],
                positive_index=pi[po[i] : po[i + 1]],
                positive=pc[po[i] : po[i + 1]],
                negative_index=ni[no[i] : no[i + 1]],
                negative=nc[no[i] : no[i + 1]],
                custom_values=cv_all[co[i] : co[i + 1]] if ncv_l[i] or schema[i] == -53 else None,
                counter_reset_hint=CounterResetHint(hint[i]),
            )
        )
    return ts, out
