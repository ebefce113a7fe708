"""Prometheus' protobuf ``Histogram`` message (native histograms) -> ``FloatHistogram``.

Remote-write 1.0 (``prometheus.Histogram``) and 2.0 (``io.prometheus.write.v2.Histogram``) share
the message (field numbers and types)::

    message Histogram {
      oneof count { uint64 count_int = 1; double count_float = 2; }
      double sum = 3;
      sint32 schema = 4;
      double zero_threshold = 5;
      oneof zero_count { uint64 zero_count_int = 6; double zero_count_float = 7; }
      repeated BucketSpan negative_spans = 8;
      repeated sint64 negative_deltas = 9;    // integer histograms: delta-encoded counts
      repeated double negative_counts = 10;   // float histograms: absolute counts
      repeated BucketSpan positive_spans = 11;
      repeated sint64 positive_deltas = 12;
      repeated double positive_counts = 13;
      ResetHint reset_hint = 14;              // UNKNOWN, YES, NO, GAUGE
      int64 timestamp = 15;
      repeated double custom_values = 16;     // schema -53 (custom bucket bounds)
    }
    message BucketSpan { sint32 offset = 1; uint32 length = 2; }

Integer histograms (``count_int``, deltas) become float counts, as Prometheus' engine reads them.
A histogram whose ``sum`` carries the stale-NaN bit pattern is a stale marker: ``decode`` returns
``None`` for its histogram (the caller stores a float ``STALE_NAN``).

Rejected (``HistogramDecodeError``, a 400 for the caller), as Prometheus' ``ValidateHistogram``
rejects them: a schema outside -4..8 and not -53; spans whose lengths add up to a different
number of buckets than the deltas/counts given; a non-first span with a negative offset; both
deltas and counts on one side, or integer and float fields mixed; negative bucket, zero or total
counts (integer deltas that go below zero); an integer histogram whose count is smaller than the
sum of its buckets; custom bounds that are not strictly increasing, custom buckets with negative
buckets, a zero bucket or spans beyond the bounds; custom bounds on an exponential schema.
Protobuf errors (truncation, wrong wire types, over-long varints, groups) are rejected too.
"""

from __future__ import annotations

import struct

import numpy as np

from clearsight.model.histogram import (
    CUSTOM_BUCKETS_SCHEMA,
    F64,
    I64,
    CounterResetHint,
    FloatHistogram,
    HistogramError,
    is_valid_schema,
    spans_to_indices,
)
from clearsight.model.samples import STALE_NAN_BITS

_D = struct.Struct("<d")
_Q = struct.Struct("<Q")
_HINTS = {
    0: CounterResetHint.UNKNOWN,
    1: CounterResetHint.RESET,
    2: CounterResetHint.NOT_RESET,
    3: CounterResetHint.GAUGE,
}
_NAMES = {
    1: "count_int",
    2: "count_float",
    3: "sum",
    4: "schema",
    5: "zero_threshold",
    6: "zero_count_int",
    7: "zero_count_float",
    8: "negative_spans",
    9: "negative_deltas",
    10: "negative_counts",
    11: "positive_spans",
    12: "positive_deltas",
    13: "positive_counts",
    14: "reset_hint",
    15: "timestamp",
    16: "custom_values",
}
_VARINT_FIELDS = {1, 4, 6, 14, 15}
_FIXED64_FIELDS = {2, 3, 5, 7}
_PACKED_DOUBLE = {10, 13, 16}
_PACKED_SINT = {9, 12}


class HistogramDecodeError(ValueError):
    """A malformed or invalid Histogram message (the message says what and where)."""


def _varint(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    v = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise HistogramDecodeError(f"truncated varint in Histogram.{what} at byte {start}")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            if pos - start > 10:
                raise HistogramDecodeError(f"varint longer than 10 bytes in Histogram.{what} at byte {start}")
            return v & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise HistogramDecodeError(f"varint longer than 10 bytes in Histogram.{what} at byte {start}")


def _zigzag(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _spans(buf: bytes, s: int, e: int) -> tuple[int, int]:
    offset = length = 0
    pos = s
    while pos < e:
        tag_at = pos
        tag, pos = _varint(buf, pos, e, "spans")
        field, wt = tag >> 3, tag & 7
        if field in (1, 2):
            if wt != 0:
                raise HistogramDecodeError(
                    f"wrong wire type {wt} for BucketSpan field {field} at byte {tag_at}"
                )
            v, pos = _varint(buf, pos, e, "spans")
            if field == 1:
                offset = _zigzag(v & 0xFFFFFFFF)
                offset = offset - (1 << 32) if offset >= 1 << 31 else offset
            else:
                length = v & 0xFFFFFFFF
        else:
            pos = _skip(buf, pos, e, field, wt, tag_at)
    return offset, length


def _skip(buf: bytes, pos: int, end: int, field: int, wt: int, tag_at: int) -> int:
    if field == 0:
        raise HistogramDecodeError(f"invalid field number 0 in Histogram at byte {tag_at}")
    if wt == 0:
        return _varint(buf, pos, end, f"field {field}")[1]
    if wt == 1:
        pos += 8
    elif wt == 5:
        pos += 4
    elif wt == 2:
        n, pos = _varint(buf, pos, end, f"field {field}")
        pos += n
    else:
        raise HistogramDecodeError(
            f"unsupported wire type {wt} (field {field}) in Histogram at byte {tag_at}"
        )
    if pos > end:
        raise HistogramDecodeError(f"truncated Histogram field {field} at byte {tag_at}")
    return pos


def decode(buf: bytes, start: int, end: int) -> tuple[int, FloatHistogram | None]:
    """The Histogram message in ``buf[start:end]``: (timestamp ms, histogram or None for a stale
    marker). Byte offsets in errors are relative to ``buf``."""
    count_int: int | None = None
    count_f: float | None = None
    zc_int: int | None = None
    zc_f: float | None = None
    sum_bits = 0
    schema = 0
    zt = 0.0
    hint = 0
    ts = 0
    spans: dict[int, list[tuple[int, int]]] = {8: [], 11: []}
    deltas: dict[int, list[int]] = {9: [], 12: []}
    counts: dict[int, list[float]] = {10: [], 13: []}
    custom: list[float] = []
    pos = start
    while pos < end:
        tag_at = pos
        tag, pos = _varint(buf, pos, end, "tag")
        field, wt = tag >> 3, tag & 7
        name = _NAMES.get(field)
        if name is None:
            pos = _skip(buf, pos, end, field, wt, tag_at)
            continue
        if field in _VARINT_FIELDS or (field in _PACKED_SINT and wt == 0):
            if wt != 0:
                raise HistogramDecodeError(f"wrong wire type {wt} for Histogram.{name} at byte {tag_at}")
            v, pos = _varint(buf, pos, end, name)
            if field == 1:
                count_int = v
            elif field == 4:
                z = _zigzag(v & 0xFFFFFFFF)
                schema = z - (1 << 32) if z >= 1 << 31 else z
            elif field == 6:
                zc_int = v
            elif field == 14:
                hint = v
            elif field == 15:
                ts = _signed(v)
            else:
                deltas[field].append(_signed(_zigzag(v)))
        elif field in _FIXED64_FIELDS or (field in _PACKED_DOUBLE and wt == 1):
            if wt != 1:
                raise HistogramDecodeError(f"wrong wire type {wt} for Histogram.{name} at byte {tag_at}")
            if pos + 8 > end:
                raise HistogramDecodeError(f"truncated Histogram.{name} at byte {tag_at}")
            bits = int.from_bytes(buf[pos : pos + 8], "little")
            v_f = _D.unpack(_Q.pack(bits))[0]
            pos += 8
            if field == 2:
                count_f = v_f
            elif field == 3:
                sum_bits = bits
            elif field == 5:
                zt = v_f
            elif field == 7:
                zc_f = v_f
            elif field == 16:
                custom.append(v_f)
            else:
                counts[field].append(v_f)
        else:
            if wt != 2:
                raise HistogramDecodeError(f"wrong wire type {wt} for Histogram.{name} at byte {tag_at}")
            n, pos = _varint(buf, pos, end, name)
            s, pos = pos, pos + n
            if pos > end:
                raise HistogramDecodeError(
                    f"truncated Histogram.{name}: declared length {n} but only {end - s} bytes remain at byte {tag_at}"
                )
            if field in (8, 11):
                spans[field].append(_spans(buf, s, pos))
            elif field in _PACKED_DOUBLE:
                if n % 8:
                    raise HistogramDecodeError(f"packed Histogram.{name} of {n} bytes is not a multiple of 8")
                vals = np.frombuffer(buf, dtype="<f8", count=n // 8, offset=s).tolist()
                (custom if field == 16 else counts[field]).extend(vals)
            else:
                q = s
                while q < pos:
                    v, q = _varint(buf, q, pos, name)
                    deltas[field].append(_signed(_zigzag(v)))
    if sum_bits == STALE_NAN_BITS:
        return ts, None
    return ts, _build(
        ts,
        schema,
        count_int,
        count_f,
        zc_int,
        zc_f,
        _D.unpack(_Q.pack(sum_bits))[0],
        zt,
        hint,
        spans,
        deltas,
        counts,
        custom,
        start,
    )


def _build(
    ts: int,
    schema: int,
    count_int: int | None,
    count_f: float | None,
    zc_int: int | None,
    zc_f: float | None,
    sum_: float,
    zt: float,
    hint: int,
    spans: dict[int, list[tuple[int, int]]],
    deltas: dict[int, list[int]],
    counts: dict[int, list[float]],
    custom: list[float],
    at: int,
) -> FloatHistogram:
    where = f"in the Histogram at byte {at} (timestamp {ts})"
    if not is_valid_schema(schema):
        raise HistogramDecodeError(
            f"invalid schema {schema} {where}: must be between -4 and 8, or -53 (custom buckets)"
        )
    is_float = count_f is not None or zc_f is not None or bool(counts[10]) or bool(counts[13])
    is_int = count_int is not None or zc_int is not None or bool(deltas[9]) or bool(deltas[12])
    if is_float and is_int:
        raise HistogramDecodeError(f"integer and float counts mixed {where}")
    sides: dict[str, tuple[I64, F64]] = {}
    bucket_sum = 0.0
    for side, sf, df, cf in (("positive", 11, 12, 13), ("negative", 8, 9, 10)):
        if is_int:
            d = np.asarray(deltas[df], dtype=np.int64)
            vals = np.cumsum(d).astype(np.float64)
            if d.size and int(np.cumsum(d).min()) < 0:
                raise HistogramDecodeError(f"{side} bucket with a negative count {where}")
        else:
            vals = np.asarray(counts[cf], dtype=np.float64)
        try:
            idx = spans_to_indices(spans[sf], int(vals.size))
        except HistogramError as e:
            raise HistogramDecodeError(f"{side} side: {e} {where}") from None
        sides[side] = (idx, vals)
        bucket_sum += float(vals.sum())
    if is_int:
        count = float(count_int or 0)
        zero_count = float(zc_int or 0)
        if (count_int is not None and count_int >= 1 << 63) or (zc_int is not None and zc_int >= 1 << 63):
            raise HistogramDecodeError(f"count out of range {where}")
        if bucket_sum + zero_count > count:
            raise HistogramDecodeError(
                f"observation count {count:g} is less than the {bucket_sum + zero_count:g} observations "
                f"in the buckets {where}"
            )
    else:
        count = count_f if count_f is not None else 0.0
        zero_count = zc_f if zc_f is not None else 0.0
    if schema == CUSTOM_BUCKETS_SCHEMA:
        cv: F64 | None = np.asarray(custom, dtype=np.float64)
    elif custom:
        raise HistogramDecodeError(f"custom bounds given with the exponential schema {schema} {where}")
    else:
        cv = None
    h = FloatHistogram(
        schema=schema,
        count=count,
        sum=sum_,
        zero_threshold=zt,
        zero_count=zero_count,
        positive_index=sides["positive"][0],
        positive=sides["positive"][1],
        negative_index=sides["negative"][0],
        negative=sides["negative"][1],
        custom_values=cv,
        counter_reset_hint=_HINTS.get(hint, CounterResetHint.UNKNOWN),
    )
    try:
        h.validate()
    except HistogramError as e:
        raise HistogramDecodeError(f"{e} {where}") from None
    if schema == CUSTOM_BUCKETS_SCHEMA and cv is not None and bool(np.isinf(cv).any()):
        raise HistogramDecodeError(f"custom bounds must be finite {where}")
    return h


def encode(h: FloatHistogram, ts: int, *, integer: bool | None = None) -> bytes:
    """The Histogram message of ``h`` (tests and the benchmark's sender). ``integer`` (default:
    when every count is a whole number) writes count_int/deltas instead of float counts."""
    out = bytearray()

    def tag(field: int, wt: int) -> None:
        _put(out, field << 3 | wt)

    if integer is None:
        all_c = [h.count, h.zero_count, *h.positive.tolist(), *h.negative.tolist()]
        integer = all(float(c).is_integer() and 0 <= c < 2**63 for c in all_c)
    if integer:
        tag(1, 0)
        _put(out, int(h.count))
    else:
        tag(2, 1)
        out += _D.pack(h.count)
    tag(3, 1)
    out += _D.pack(h.sum)
    tag(4, 0)
    _put(out, ((h.schema << 1) ^ (h.schema >> 31)) & 0xFFFFFFFF)
    tag(5, 1)
    out += _D.pack(h.zero_threshold)
    if integer:
        tag(6, 0)
        _put(out, int(h.zero_count))
    else:
        tag(7, 1)
        out += _D.pack(h.zero_count)
    for sf, df, cf, spans, vals in (
        (8, 9, 10, h.negative_spans(), h.negative),
        (11, 12, 13, h.positive_spans(), h.positive),
    ):
        for off, ln in spans:
            body = bytearray()
            body.append(1 << 3)
            _put(body, ((off << 1) ^ (off >> 31)) & 0xFFFFFFFF)
            body.append(2 << 3)
            _put(body, ln)
            tag(sf, 2)
            _put(out, len(body))
            out += body
        if vals.size:
            if integer:
                ints = [int(v) for v in vals.tolist()]
                body = bytearray()
                prev = 0
                for v in ints:
                    d = v - prev
                    prev = v
                    _put(body, ((d << 1) ^ (d >> 63)) & 0xFFFFFFFFFFFFFFFF)
                tag(df, 2)
            else:
                body = bytearray(np.asarray(vals, dtype="<f8").tobytes())
                tag(cf, 2)
            _put(out, len(body))
            out += body
    tag(14, 0)
    _put(out, int(h.counter_reset_hint))
    tag(15, 0)
    _put(out, ts & 0xFFFFFFFFFFFFFFFF)
    if h.custom_values is not None and h.custom_values.size:
        body = bytearray(np.asarray(h.custom_values, dtype="<f8").tobytes())
        tag(16, 2)
        _put(out, len(body))
        out += body
    return bytes(out)


def _put(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
