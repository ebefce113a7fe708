"""Compressed sample chunks: the samples of one series over a time span.

A chunk's ``codec`` byte (a column of its row) names its format, so chunks written by older builds
keep decoding with their own decoder; new chunks are written as ANCHORED or ANCHORED_XOR.

Values are DECIMAL when every value ``v`` of the chunk equals ``k / 10**scale`` bit for bit for
integers ``|k| < 2**53`` and a ``scale`` in 0..9 (counters, gauges rounded by their exporter);
otherwise (NaN, stale markers, infinities, -0.0, arbitrary binary fractions) they are stored as
their IEEE-754 bits XOR the previous value's bits (the first XOR 0).

Codec ``PACKED`` (2, DECIMAL values; written by the native encoder in ``_chunkdec.pyx``): the
timestamps, then the integers ``k``, each as one *sequence*:

- a mode byte, then ``x0`` as a zigzag varint;
- mode DELTA (0): elements ``x[i] - x[i-1]`` for ``i >= 1``;
- mode DOD (1): the varint ``x1 - x0``, then elements ``(x[i] - x[i-1]) - (x[i-1] - x[i-2])``
  for ``i >= 2`` (steady rates);
- mode GRID (2): the varint ``D`` (the mean step, truncated), then elements ``x[i] - x0 - i * D``
  for ``i >= 1`` (regular scrape timestamps: only the jitter is left);
- when there are elements: their minimum as a zigzag varint, a byte ``w``, and every element
  minus the minimum in exactly ``w`` bits, little-endian bit order, padded to a byte;
- or, when the elements minus the minimum span ``0..m-1`` with ``m`` not a power of two and that
  saves a byte: the byte RADIX (255), the varint ``m``, then the elements as base-``m`` digits in
  groups of ``k`` (the most with ``m**k - 1`` in 64 bits; first element lowest), each group in the
  bits ``m**k - 1`` needs, the last group holding the remainder (5 jitter values: 2.33 bits each
  instead of 3).

The mode is chosen per sequence: the one with the fewest bits. All arithmetic wraps modulo 2**64.
No general-purpose compression on top: the packed bits are dense already, and decoding needs no
decompression call.

Codec ``PACKED_XOR`` (3, other values; native encoder): the timestamps as one sequence as above,
then the values' bits Gorilla-style: the first value's 8 bytes, then per value its XOR with the
previous one: bit 0 when it is 0; else bit 1 and either 0 and the XOR's bits inside the previous
leading/trailing-zero window, or 1, the leading zeros (5 bits, at most 31), the significant length
minus 1 (6 bits) and the significant bits; padded to a byte.

Codecs ``ANCHORED`` (4, DECIMAL values) and ``ANCHORED_XOR`` (5, other values), written by the
native encoder since PACKED and PACKED_XOR (which are still decoded): the same layouts, with

- the timestamps *anchored* on the chunk's row: their first element is the row's ``min_ts`` and
  GRID's ``D`` is ``(max_ts - min_ts) / (n - 1)`` rounded to nearest (what the encoder uses), so
  neither is written (a one-sample chunk's timestamps take no byte); the decoder checks that the
  last timestamp equals the row's ``max_ts``;
- a compact header: a sequence's mode and width share one byte, ``mode * 66 + w`` (``w`` 0..64, or
  65 for RADIX), and a one-element value sequence is its zigzag varint alone.

That saves the ~6-byte varint of the first timestamp, the ~3-byte step and two header bytes per
chunk. Decoding therefore takes the rows' ``min_ts`` and ``max_ts`` (``decode``, ``decode_range``).

Codecs of the first format (still decoded; written only without the native codec): ``DECIMAL`` (1) and ``XOR`` (0),
timestamps as zigzag delta-of-deltas (the first delta taken from 0), DECIMAL values as zigzag
deltas of ``k`` (the first from 0), XOR values as above; the 8 byte planes of the timestamp
column, then those of the value column, compressed with zstd.

Decoding reverses it exactly: every value, NaN payloads included, comes back bit for bit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import F64Array, I64Array
from clearsight.store.embedded import zstd_frames

try:  # the Cython decoder (setup.py builds it); decode_range_py is the reference it must equal
    from clearsight.store.embedded import _chunkdec  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _chunkdec = None

XOR = 0
DECIMAL = 1  # first format; written only when the native encoder is not built
PACKED = 2
PACKED_XOR = 3
ANCHORED = 4
ANCHORED_XOR = 5
MAX_SCALE = 9
WCODES = 66  # compact header byte: mode * WCODES + (width 0..64, or WCODE_RADIX)
WCODE_RADIX = 65
ZSTD_LEVEL = 3

_ALL = (-(2**63), 2**63 - 1)

U8Array = npt.NDArray[np.uint8]
U32Array = npt.NDArray[np.uint32]
_T = TypeVar("_T")


@dataclass
class Encoded:
    """Encoded chunks, one entry per series segment of the input."""

    series_id: U32Array
    min_ts: I64Array
    max_ts: I64Array
    n: U32Array
    codec: U8Array
    scale: U8Array
    data: list[bytes]


def _zigzag(x: I64Array) -> I64Array:
    out: I64Array = (x << 1) ^ (x >> 63)
    return out


def _unzigzag(z: I64Array) -> I64Array:
    u = z.view(np.uint64)
    out: I64Array = (u >> np.uint64(1)).view(np.int64) ^ -(z & 1)
    return out


def _seg_starts(lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    starts = np.zeros(lengths.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _seg_diff(x: I64Array, first: npt.NDArray[np.bool_]) -> I64Array:
    """x[i] - x[i-1] within segments; the first element of a segment stays as is (minus 0)."""
    d = np.empty_like(x)
    if x.shape[0]:
        d[0] = x[0]
        np.subtract(x[1:], x[:-1], out=d[1:])
        d[first] = x[first]
    return d


def _seg_cumsum(x: I64Array, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> I64Array:
    """Cumulative sum restarting at each segment (wrapping int64 arithmetic, exact inverse of
    ``_seg_diff``)."""
    if x.shape[0] == 0:
        return x.copy()
    cs = np.cumsum(x)
    before = np.zeros(starts.shape[0], dtype=np.int64)
    nz = starts > 0
    before[nz] = cs[starts[nz] - 1]
    out: I64Array = cs - np.repeat(before, lengths)
    return out


def encode(series_id: U32Array, ts: I64Array, values: F64Array, *, pack: bool = True) -> Encoded:
    """Encodes samples sorted by (series_id, ts) with unique (series_id, ts): one chunk per series.

    Chunks are written ANCHORED (DECIMAL values) or ANCHORED_XOR when the native encoder is built
    (and ``pack``), else in the first format (``pack=False`` exists for tests of that format)."""
    n_total = series_id.shape[0]
    if n_total == 0:
        z32 = np.zeros(0, dtype=np.uint32)
        z64 = np.zeros(0, dtype=np.int64)
        z8 = np.zeros(0, dtype=np.uint8)
        return Encoded(z32, z64, z64, z32, z8, z8, [])
    first = np.ones(n_total, dtype=np.bool_)
    first[1:] = series_id[1:] != series_id[:-1]
    starts = np.flatnonzero(first).astype(np.int64)
    lengths = np.diff(np.append(starts, n_total)).astype(np.int64)
    ends = starts + lengths - 1

    # Smallest decimal scale that reproduces every value of the segment exactly.
    n_seg = starts.shape[0]
    scale = np.full(n_seg, 255, dtype=np.int64)
    k_all = np.zeros(n_total, dtype=np.int64)
    bits = values.view(np.uint64)
    finite = np.isfinite(values) & (bits != np.uint64(0x8000000000000000))  # -0.0 needs XOR
    pending = np.ones(n_seg, dtype=np.bool_)
    with np.errstate(all="ignore"):
        for e in range(MAX_SCALE + 1):
            p = 10.0**e
            k = np.rint(values * p)
            exact = finite & (np.abs(k) < 2.0**53) & ((k / p).view(np.uint64) == bits)
            seg_ok = np.logical_and.reduceat(exact, starts) & pending
            if seg_ok.any():
                rows = np.repeat(seg_ok, lengths)
                k_all[rows] = k[rows].astype(np.int64)
                scale[seg_ok] = e
                pending &= ~seg_ok
            if not pending.any():
                break
    is_dec = scale != 255
    native = pack and _chunkdec is not None
    data: list[bytes] = [b""] * n_seg
    if native:
        ts_c = np.ascontiguousarray(ts, dtype=np.int64)
        for which, fn, col in (
            (is_dec, _chunkdec.encode_anchored, k_all),
            (~is_dec, _chunkdec.encode_anchored_xor, np.ascontiguousarray(bits).view(np.int64)),
        ):
            idx = np.flatnonzero(which)
            if idx.size:
                for i, b in zip(idx.tolist(), fn(ts_c, col, starts[idx], lengths[idx]), strict=True):
                    data[i] = b
    else:
        _encode_planes(data, np.ones(n_seg, dtype=np.bool_), is_dec, starts, lengths, ts, bits, k_all)
    return Encoded(
        series_id=series_id[starts].astype(np.uint32),
        min_ts=ts[starts].astype(np.int64),
        max_ts=ts[ends].astype(np.int64),
        n=lengths.astype(np.uint32),
        codec=np.where(is_dec, ANCHORED if native else DECIMAL, ANCHORED_XOR if native else XOR).astype(np.uint8),
        scale=np.where(is_dec, scale, 0).astype(np.uint8),
        data=data,
    )


def _encode_planes(
    data: list[bytes],
    todo: npt.NDArray[np.bool_],
    is_dec: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    ts: I64Array,
    bits: npt.NDArray[np.uint64],
    k_all: I64Array,
) -> None:
    """Fills ``data[i]`` for the segments ``todo`` in the first format (XOR or DECIMAL), working on
    the rows of those segments only (with the native encoder built, the XOR ones: a few)."""
    idx = np.flatnonzero(todo)
    seg_len = lengths[idx]
    seg_start = _seg_starts(seg_len)
    n_total = int(seg_len.sum())
    rows = np.repeat(starts[idx], seg_len) + (
        np.arange(n_total, dtype=np.int64) - np.repeat(seg_start, seg_len)
    )
    ts, bits, k_all, is_dec = ts[rows], bits[rows], k_all[rows], is_dec[idx]
    first = np.zeros(n_total, dtype=np.bool_)
    first[seg_start] = True
    ts_enc = _zigzag(_seg_diff(_seg_diff(ts, first), first))
    dec_rows = np.repeat(is_dec, seg_len)
    val_enc = np.empty(n_total, dtype=np.int64)
    val_enc[dec_rows] = _zigzag(_seg_diff(k_all, first))[dec_rows]
    if not is_dec.all():
        xb = bits.copy()
        xb[1:] ^= bits[:-1]
        xb[first] = bits[first]
        val_enc[~dec_rows] = xb.view(np.int64)[~dec_rows]
    # Byte planes of all samples at once: row p holds byte p of every timestamp (p < 8) / value.
    planes = np.empty((16, n_total), dtype=np.uint8)
    planes[:8] = ts_enc.view(np.uint8).reshape(n_total, 8).T
    planes[8:] = val_enc.view(np.uint8).reshape(n_total, 8).T
    compress = zstd_frames.compress
    for i, s, m in zip(idx.tolist(), seg_start.tolist(), seg_len.tolist(), strict=True):
        data[i] = compress(planes[:, s : s + m].tobytes(), ZSTD_LEVEL)


def decode(
    n: npt.NDArray[np.integer],
    codec: npt.NDArray[np.integer],
    scale: npt.NDArray[np.integer],
    data: list[bytes],
    *,
    min_ts: npt.NDArray[np.integer],
    max_ts: npt.NDArray[np.integer],
) -> tuple[I64Array, F64Array]:
    """Decodes chunks into concatenated (timestamps, values), chunk after chunk (natively when
    the decoder is built; ``decode_py`` is the reference). ``min_ts``/``max_ts``: the chunks' rows."""
    if _chunkdec is None:
        return decode_py(n, codec, scale, data, min_ts=min_ts, max_ts=max_ts)
    ts, values, _ = decode_range(n, codec, scale, data, *_ALL, min_ts=min_ts, max_ts=max_ts)
    return ts, values


def decode_py(
    n: npt.NDArray[np.integer],
    codec: npt.NDArray[np.integer],
    scale: npt.NDArray[np.integer],
    data: list[bytes],
    *,
    min_ts: npt.NDArray[np.integer],
    max_ts: npt.NDArray[np.integer],
) -> tuple[I64Array, F64Array]:
    """``decode`` in numpy and Python: the first format vectorized, the packed ones chunk by chunk."""
    lengths = np.asarray(n, dtype=np.int64)
    codecs = np.asarray(codec, dtype=np.int64)
    lows = np.asarray(min_ts, dtype=np.int64)
    highs = np.asarray(max_ts, dtype=np.int64)
    if not lengths.shape == codecs.shape == lows.shape == highs.shape == (len(data),):
        raise ValueError("chunk columns differ in length")
    if bool((lengths < 1).any()):
        raise ValueError("chunk length must be positive")
    if bool(((codecs < 0) | (codecs > ANCHORED_XOR)).any()):
        raise ValueError(f"unknown chunk codec in {sorted(set(codecs.tolist()))}")
    is_packed = codecs >= PACKED
    if not is_packed.any():
        return _decode_planes(lengths, codecs, scale, data)
    total = int(lengths.sum())
    ts = np.empty(total, dtype=np.int64)
    values = np.empty(total, dtype=np.float64)
    starts = _seg_starts(lengths)
    rest = np.flatnonzero(~is_packed)
    if rest.size:
        r_len = lengths[rest]
        r_ts, r_val = _decode_planes(r_len, codecs[rest], np.asarray(scale)[rest], [data[i] for i in rest])
        rows = np.repeat(starts[rest], r_len) + (
            np.arange(r_ts.shape[0], dtype=np.int64) - np.repeat(_seg_starts(r_len), r_len)
        )
        ts[rows] = r_ts
        values[rows] = r_val
    scales = np.asarray(scale, dtype=np.int64)
    for i in np.flatnonzero(is_packed).tolist():
        s, m, e = int(starts[i]), int(lengths[i]), int(scales[i])
        if e > MAX_SCALE:
            raise ValueError("chunk scale out of range")
        buf = bytes(data[i])
        anchored = codecs[i] >= ANCHORED
        anchor = (int(lows[i]), int(highs[i])) if anchored else None
        t, pos = _read_seq(buf, 0, m, compact=anchored, anchor=anchor)
        if codecs[i] in (PACKED_XOR, ANCHORED_XOR):
            x, pos = _read_xor(buf, pos, m)
            values[s : s + m] = x.view(np.float64)
        else:
            k, pos = _read_seq(buf, pos, m, compact=anchored)
            values[s : s + m] = k.astype(np.float64) / 10.0**e
        if pos != len(buf):
            raise ValueError("malformed packed chunk")
        if anchored and int(t[-1]) != int(highs[i]):
            raise ValueError("malformed packed chunk: its last timestamp is not the row's max_ts")
        ts[s : s + m] = t
    return ts, values


_U64 = (1 << 64) - 1
RADIX = 255  # the width byte of a sequence packed as base-m digits (see the module docstring)


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``buf[pos:]`` (modulo 2**64) and the position after it."""
    z = shift = 0
    while shift < 64:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            return z & _U64, pos
        shift += 7
    raise ValueError("varint too long")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The zigzag varint at ``buf[pos:]``, decoded to an int64 taken modulo 2**64, and the position
    after it."""
    z, pos = _uvarint(buf, pos)
    return (z >> 1) ^ (_U64 if z & 1 else 0), pos


def _read_xor(buf: bytes, pos: int, n: int) -> tuple[npt.NDArray[np.uint64], int]:
    """PACKED_XOR values (see the module docstring) at ``buf[pos:]``: ``n`` IEEE-754 bit patterns
    and the position after their padded bits."""
    if pos + 8 > len(buf):
        raise ValueError("truncated packed chunk")
    out = [int.from_bytes(buf[pos : pos + 8], "little")]
    pos += 8
    big = int.from_bytes(buf[pos:], "little")
    nbits = 8 * (len(buf) - pos)
    bit = 0

    def read(w: int) -> int:
        nonlocal bit
        if bit + w > nbits:
            raise ValueError("truncated packed chunk")
        v = (big >> bit) & ((1 << w) - 1)
        bit += w
        return v

    lz = tz = -1
    for _ in range(n - 1):
        if read(1) == 0:
            out.append(out[-1])
            continue
        if read(1) == 0:
            if lz < 0:
                raise ValueError("malformed packed chunk")
            sig = 64 - lz - tz
        else:
            lz = read(5)
            sig = read(6) + 1
            if lz + sig > 64:
                raise ValueError("malformed packed chunk")
            tz = 64 - lz - sig
        out.append(out[-1] ^ (read(sig) << tz))
    return np.asarray(out, dtype=np.uint64), pos + (bit + 7) // 8


def _radix_digits(buf: bytes, pos: int, count: int) -> tuple[npt.NDArray[np.uint64], int]:
    """A RADIX section at ``buf[pos:]`` (the varint ``m``, then groups of base-``m`` digits, the
    first digit lowest): ``count`` digits and the position after the section."""
    m, pos = _uvarint(buf, pos)
    if m < 2:
        raise ValueError("malformed packed sequence")
    k, p = 0, 1
    while p * m <= _U64:
        p *= m
        k += 1
    b_full, r = (p - 1).bit_length(), count % k
    b_last = (m**r - 1).bit_length() if r else 0
    nbytes = ((count // k) * b_full + b_last + 7) // 8
    if pos + nbytes > len(buf):
        raise ValueError("truncated packed sequence")
    big = int.from_bytes(buf[pos : pos + nbytes], "little")
    digits: list[int] = []
    bit = 0
    while len(digits) < count:
        s_len = min(k, count - len(digits))
        b = b_full if s_len == k else b_last
        v = (big >> bit) & ((1 << b) - 1)
        bit += b
        for _ in range(s_len):
            digits.append(v % m)
            v //= m
    return np.asarray(digits, dtype=np.uint64), pos + nbytes


def _mean_step(x0: int, xlast: int, n: int) -> int:
    """GRID's ``D`` of an anchored sequence (as ``_chunkdec._mean_step``): ``(xlast - x0) / (n - 1)``
    rounded to nearest, in wrapping int64 arithmetic, modulo 2**64."""
    span = (xlast - x0) & _U64
    half = (n - 1) >> 1
    if span < 2**63:
        return ((span + half) // (n - 1)) & _U64
    return (-((((-span) & _U64) + half) // (n - 1))) & _U64


def _read_seq(
    buf: bytes, pos: int, n: int, *, compact: bool = False, anchor: tuple[int, int] | None = None
) -> tuple[I64Array, int]:
    """One packed sequence of ``n >= 1`` elements at ``buf[pos:]`` and the position after it.
    ``compact``: mode and width in one header byte (ANCHORED chunks); ``anchor``: ``(x0, x[n-1])``
    from the chunk's row, which the sequence does not hold (ANCHORED timestamps; implies
    ``compact``)."""
    compact = compact or anchor is not None
    mode = wcode = 0
    if n >= 2 or not compact:
        if pos >= len(buf):
            raise ValueError("malformed packed sequence")
        mode, wcode = divmod(buf[pos], WCODES) if compact else (buf[pos], 0)
        pos += 1
        if mode > 2:
            raise ValueError("malformed packed sequence")
    if anchor is not None:
        x0 = anchor[0] & _U64
    else:
        x0, pos = _varint(buf, pos)
    out = np.empty(n, dtype=np.uint64)
    out[0] = x0
    if n == 1:
        if mode != 0:
            raise ValueError("malformed packed sequence")
        return out.view(np.int64), pos
    extra = 0
    if mode == 2 and anchor is not None:
        extra = _mean_step(anchor[0], anchor[1], n)
    elif mode != 0:
        extra, pos = _varint(buf, pos)
    count = n - 2 if mode == 1 else n - 1
    if count == 0 and wcode != 0:
        raise ValueError("malformed packed sequence")
    e = np.zeros(count, dtype=np.uint64)
    if count > 0:
        mn, pos = _varint(buf, pos)
        if compact:
            w = RADIX if wcode == WCODE_RADIX else wcode
        else:
            if pos >= len(buf) or 64 < buf[pos] < RADIX:
                raise ValueError("malformed packed sequence")
            w = buf[pos]
            pos += 1
        if w == RADIX:
            e, pos = _radix_digits(buf, pos, count)
        else:
            nbytes = (count * w + 7) // 8
            if pos + nbytes > len(buf):
                raise ValueError("truncated packed sequence")
            if w:
                raw = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=pos)
                bits = np.unpackbits(raw, bitorder="little")[: count * w].reshape(count, w).astype(np.uint64)
                e = (bits << np.arange(w, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
            pos += nbytes
        e += np.uint64(mn)
    if mode == 0:  # DELTA
        out[1:] = np.uint64(x0) + np.cumsum(e, dtype=np.uint64)
    elif mode == 1:  # DOD
        d = np.uint64(extra) + np.concatenate(([np.uint64(0)], np.cumsum(e, dtype=np.uint64)))
        out[1:] = np.uint64(x0) + np.cumsum(d, dtype=np.uint64)
    else:  # GRID
        out[1:] = np.uint64(x0) + np.arange(1, n, dtype=np.uint64) * np.uint64(extra) + e
    return out.view(np.int64), pos


def _decode_planes(
    lengths: npt.NDArray[np.int64],
    codec: npt.NDArray[np.integer],
    scale: npt.NDArray[np.integer],
    data: list[bytes],
) -> tuple[I64Array, F64Array]:
    """Decodes chunks of the first format (XOR, DECIMAL)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    # Decompress the chunks grouped by length (stable), each next to the previous one, so that every
    # group of equal-length chunks is one (k, 16, m) block that a single transpose turns into rows.
    order = np.argsort(lengths, kind="stable")
    sorted_len = lengths[order]
    flat = np.empty(16 * total, dtype=np.uint8)
    decompress_into = zstd_frames.decompress_into
    off = 0
    for c, m in zip(order.tolist(), sorted_len.tolist(), strict=True):
        size = 16 * m
        decompress_into(data[c], flat[off : off + size])
        off += size
    rows_sorted = np.empty((total, 16), dtype=np.uint8)
    bounds = np.flatnonzero(np.diff(sorted_len)) + 1
    g_starts = np.concatenate(([0], bounds)).astype(np.int64)
    g_ends = np.concatenate((bounds, [sorted_len.shape[0]])).astype(np.int64)
    row = 0
    for g0, g1 in zip(g_starts.tolist(), g_ends.tolist(), strict=True):
        m = int(sorted_len[g0])
        k = g1 - g0
        block = flat[16 * row : 16 * (row + k * m)].reshape(k, 16, m)
        rows_sorted[row : row + k * m] = block.transpose(0, 2, 1).reshape(k * m, 16)
        row += k * m
    if bool(np.all(order[1:] > order[:-1])):
        rows = rows_sorted
    else:  # back to the callers' chunk order
        starts_orig = _seg_starts(lengths)
        dest = np.repeat(starts_orig[order], sorted_len) + (
            np.arange(total, dtype=np.int64) - np.repeat(_seg_starts(sorted_len), sorted_len)
        )
        rows = np.empty_like(rows_sorted)
        rows[dest] = rows_sorted
    ts_enc = np.ascontiguousarray(rows[:, :8]).view(np.int64).reshape(total)
    val_enc = np.ascontiguousarray(rows[:, 8:]).view(np.int64).reshape(total)
    starts = _seg_starts(lengths)
    ts = _seg_cumsum(_seg_cumsum(_unzigzag(ts_enc), starts, lengths), starts, lengths)
    codec_rows = np.repeat(np.asarray(codec, dtype=np.int64), lengths)
    dec_rows = codec_rows == DECIMAL
    values = np.empty(total, dtype=np.float64)
    if dec_rows.any():
        k = _seg_cumsum(_unzigzag(val_enc), starts, lengths)
        p = 10.0 ** np.repeat(np.asarray(scale, dtype=np.int64), lengths)
        values[dec_rows] = k[dec_rows].astype(np.float64) / p[dec_rows]
    if not dec_rows.all():
        x = val_enc.view(np.uint64)
        acc = np.bitwise_xor.accumulate(x)
        before = np.zeros(starts.shape[0], dtype=np.uint64)
        nz = starts > 0
        before[nz] = acc[starts[nz] - 1]
        xbits = acc ^ np.repeat(before, lengths)
        values[~dec_rows] = xbits.view(np.float64)[~dec_rows]
    return ts, values


def decode_range_py(
    n: npt.NDArray[np.integer],
    codec: npt.NDArray[np.integer],
    scale: npt.NDArray[np.integer],
    data: list[bytes],
    lo: int,
    hi: int,
    *,
    min_ts: npt.NDArray[np.integer],
    max_ts: npt.NDArray[np.integer],
) -> tuple[I64Array, F64Array, I64Array]:
    """Decodes chunks and keeps the samples with ``lo <= ts <= hi``: ``(ts, values, kept)`` with
    ``kept[i]`` the number of samples kept from chunk ``i``. Pure numpy (the reference)."""
    lengths = np.asarray(n, dtype=np.int64)
    ts, values = decode_py(lengths, codec, scale, data, min_ts=min_ts, max_ts=max_ts)
    if lengths.shape[0] == 0:
        return ts, values, np.zeros(0, dtype=np.int64)
    keep = (ts >= lo) & (ts <= hi)
    kept: I64Array = np.add.reduceat(keep.astype(np.int64), _seg_starts(lengths))
    if not bool(keep.all()):
        ts, values = ts[keep], values[keep]
    return ts, values, kept


def decode_range(
    n: npt.NDArray[np.integer],
    codec: npt.NDArray[np.integer],
    scale: npt.NDArray[np.integer],
    data: list[bytes],
    lo: int,
    hi: int,
    *,
    min_ts: npt.NDArray[np.integer],
    max_ts: npt.NDArray[np.integer],
) -> tuple[I64Array, F64Array, I64Array]:
    """``decode_range_py``, by the native decoder when it is built (one pass per chunk, no
    temporaries)."""
    if _chunkdec is None:
        return decode_range_py(n, codec, scale, data, lo, hi, min_ts=min_ts, max_ts=max_ts)
    ts, values, kept = _chunkdec.decode_range(
        data,
        np.ascontiguousarray(n, dtype=np.int64),
        np.ascontiguousarray(codec, dtype=np.uint8),
        np.ascontiguousarray(scale, dtype=np.uint8),
        np.ascontiguousarray(min_ts, dtype=np.int64),
        np.ascontiguousarray(max_ts, dtype=np.int64),
        lo,
        hi,
    )
    return ts, values, kept


class DecodedChunkCache:
    """A bounded LRU of decoded chunks, so that dashboards re-querying overlapping ranges skip
    the zstd decompression (most of a large select's cost).

    The key names the chunk's content for good: the metrics store passes its catalogue's chunk
    uid (a rewritten chunk gets a new uid, so an entry can never be stale; the old one just ages
    out), and a hit then touches neither the compressed bytes nor the blob cache. Without keys it
    is the content itself, ``(codec, scale, n, min_ts, max_ts, data)``: decoding is a pure function
    of it. ``n`` is part of it because packed bytes alone do not fix the length: exact scrapes of
    a constant encode to the same header for any ``n``; ``min_ts``/``max_ts`` because ANCHORED
    chunks take their timestamps' start and step from them. ``max_samples`` bounds the decoded
    samples held (16 bytes each, plus the key); 0 disables the cache. Thread-safe."""

    def __init__(self, max_samples: int) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[I64Array, F64Array]] = OrderedDict()
        self._samples = 0
        self.max_samples = max(0, max_samples)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def samples(self) -> int:
        return self._samples

    def resize(self, max_samples: int) -> None:
        with self._lock:
            self.max_samples = max(0, max_samples)
            self._evict()

    def _evict(self) -> None:
        while self._samples > self.max_samples and self._entries:
            _, (ts, _v) = self._entries.popitem(last=False)
            self._samples -= ts.shape[0]

    def decode_range(
        self,
        n: npt.NDArray[np.integer],
        codec: npt.NDArray[np.integer],
        scale: npt.NDArray[np.integer],
        data: list[bytes] | Callable[[list[int]], list[bytes]],
        lo: int,
        hi: int,
        *,
        min_ts: npt.NDArray[np.integer],
        max_ts: npt.NDArray[np.integer],
        keys: Sequence[Hashable] | None = None,
    ) -> tuple[I64Array, F64Array, I64Array]:
        """``decode_range``, with whole chunks taken from / put into the cache. The arrays returned
        may be read-only (shared with the cache).

        ``keys``: one per chunk, naming its content for good (the store passes its catalogue's
        chunk uids, never reused for other bytes); by default the content itself. ``data``: the
        chunks' bytes, or a function giving the bytes of the chunks at the positions it is passed,
        called only for the chunks the cache misses (so hits never touch the bytes)."""
        count = int(np.asarray(n).shape[0])
        if count == 0:
            return decode_range(n, codec, scale, [], lo, hi, min_ts=min_ts, max_ts=max_ts)
        if self.max_samples == 0 or int(np.sum(n)) > self.max_samples:  # uncachable
            all_data = data(list(range(count))) if callable(data) else data
            return decode_range(n, codec, scale, all_data, lo, hi, min_ts=min_ts, max_ts=max_ts)
        if keys is None:
            if callable(data):
                data = data(list(range(count)))
            # DuckDB hands BLOBs out as bytearray (unhashable); bytes(b) of a bytes object is b itself.
            keys = list(
                zip(
                    np.asarray(codec).tolist(),
                    np.asarray(scale).tolist(),
                    np.asarray(n).tolist(),
                    np.asarray(min_ts).tolist(),
                    np.asarray(max_ts).tolist(),
                    map(bytes, data),
                    strict=True,
                )
            )
        elif len(keys) != count:
            raise ValueError("one key per chunk")
        entries = self._entries
        with self._lock:
            found = [entries.get(k) for k in keys]
            for k, f in zip(keys, found, strict=True):
                if f is not None:
                    entries.move_to_end(k)
        miss = [i for i, f in enumerate(found) if f is None]
        self.hits += len(keys) - len(miss)
        self.misses += len(miss)
        if miss:
            idx = np.asarray(miss, dtype=np.int64)
            m_n = np.asarray(n, dtype=np.int64)[idx]
            m_ts, m_val, _ = decode_range(
                m_n,
                np.asarray(codec)[idx],
                np.asarray(scale)[idx],
                data(miss) if callable(data) else [data[i] for i in miss],
                *_ALL,
                min_ts=np.asarray(min_ts)[idx],
                max_ts=np.asarray(max_ts)[idx],
            )
            ends = np.cumsum(m_n).tolist()
            m_ts.flags.writeable = False
            m_val.flags.writeable = False
            # Views: an entry keeps its batch's arrays alive until every entry of the batch is
            # evicted (entries of one batch are used, hence evicted, together in the common case).
            # Sliced directly: np.split costs ~1.5 us per piece (a swapaxes each), 3-4.6 ms for the
            # newest chunks of 2,464 series against 0.7-1.1 ms.
            new = [(m_ts[a:b], m_val[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
            for i, pair in zip(miss, new, strict=True):
                found[i] = pair
            with self._lock:
                for i, pair in zip(miss, new, strict=True):
                    size = pair[0].shape[0]
                    if size <= self.max_samples and keys[i] not in entries:
                        entries[keys[i]] = pair
                        self._samples += size
                self._evict()
        if len(miss) < len(keys):
            return _cut([f for f in found if f is not None], lo, hi)
        # all decoded now, in chunk order (read-only: cached views)
        return _keep_in_range(m_ts, m_val, np.asarray(n, dtype=np.int64), lo, hi)

    def read_entries(self, read: Callable[[OrderedDict[Hashable, tuple[I64Array, F64Array]]], _T]) -> _T:
        """``read(entries)`` under the cache's lock: a compiled read that looks its chunks up in the
        entries itself and touches the ones it uses (``move_to_end``, as ``cached_range`` does;
        ``head.HeadView.read_cached``). It reports its hits with ``count_hits``."""
        with self._lock:
            return read(self._entries)

    def count_hits(self, n: int) -> None:
        self.hits += n

    def cached_range(self, keys: Sequence[Hashable], lo: int, hi: int) -> tuple[I64Array, F64Array, I64Array] | None:
        """``decode_range`` of chunks the cache holds every one of (by their ``keys``), cut to
        ``lo <= ts <= hi``; None, counting nothing, when it misses any (then ``decode_range``).
        The small read's path: no lengths, codecs or bytes needed."""
        entries = self._entries
        with self._lock:
            found = [entries.get(k) for k in keys]
            if None in found:
                return None
            for k in keys:
                entries.move_to_end(k)
        self.hits += len(keys)
        return _cut(found, lo, hi)  # type: ignore[arg-type]  # no None left


def _cut(pairs: list[tuple[I64Array, F64Array]], lo: int, hi: int) -> tuple[I64Array, F64Array, I64Array]:
    """The samples with ``lo <= ts <= hi`` of decoded chunks (``(ts, values)`` each), as
    ``decode_range`` returns them."""
    if _chunkdec is not None:  # cut each chunk to the range, copy only what is kept
        out: tuple[I64Array, F64Array, I64Array] = _chunkdec.gather_in_range(
            [p[0] for p in pairs], [p[1] for p in pairs], lo, hi
        )
        return out
    ts = np.concatenate([p[0] for p in pairs])
    values = np.concatenate([p[1] for p in pairs])
    return _keep_in_range(ts, values, np.asarray([p[0].shape[0] for p in pairs], dtype=np.int64), lo, hi)


def _keep_in_range(
    ts: I64Array, values: F64Array, lengths: I64Array, lo: int, hi: int
) -> tuple[I64Array, F64Array, I64Array]:
    """Chunks' samples concatenated (``lengths`` per chunk) cut to ``lo <= ts <= hi``."""
    keep = (ts >= lo) & (ts <= hi)
    if bool(keep.all()):
        return ts, values, lengths.copy()
    kept: I64Array = np.add.reduceat(keep.astype(np.int64), _seg_starts(lengths))
    return ts[keep], values[keep], kept
