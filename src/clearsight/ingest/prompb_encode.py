"""A small, pure encoder of ``prometheus.WriteRequest`` (remote-write 1.0) for tests and benchmarks.

Names and values may be ``bytes`` so tests can encode invalid UTF-8 on purpose.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cramjam

Text = str | bytes

_Q = struct.Struct("<Q")
_D = struct.Struct("<d")


@dataclass
class Exemplar:
    labels: Sequence[tuple[Text, Text]] = ()
    value: float = 0.0
    timestamp: int = 0


@dataclass
class Histogram:
    """A native histogram reduced to the scalar fields (enough to exercise the decoder)."""

    count: int = 0
    sum: float = 0.0
    schema: int = 0
    timestamp: int = 0


@dataclass
class TimeSeries:
    labels: Sequence[tuple[Text, Text]]
    samples: Sequence[tuple[int, float]] = ()  # (timestamp ms, value)
    exemplars: Sequence[Exemplar] = ()
    histograms: Sequence[Histogram] = ()


@dataclass
class Metadata:
    type: int  # MetricMetadata.MetricType: 0 unknown, 1 counter, 2 gauge, 3 histogram, ...
    metric_family_name: Text
    help: Text = ""
    unit: Text = ""


@dataclass
class WriteRequest:
    timeseries: Sequence[TimeSeries] = ()
    metadata: Sequence[Metadata] = field(default_factory=list)


def varint(v: int) -> bytes:
    """Unsigned varint; negative int64 values are encoded as their two's complement (10 bytes)."""
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _tag(field_no: int, wire_type: int) -> bytes:
    return varint((field_no << 3) | wire_type)


def _bytes(t: Text) -> bytes:
    return t if isinstance(t, bytes) else t.encode("utf-8")


def len_field(field_no: int, payload: bytes) -> bytes:
    return _tag(field_no, 2) + varint(len(payload)) + payload


def _double(field_no: int, v: float) -> bytes:
    return _tag(field_no, 1) + _D.pack(v)


def encode_label(name: Text, value: Text) -> bytes:
    """One ``Label`` message (without its enclosing field tag)."""
    out = b""
    n, v = _bytes(name), _bytes(value)
    if n:
        out += len_field(1, n)
    if v:
        out += len_field(2, v)
    return out


def encode_labels(labels: Iterable[tuple[Text, Text]]) -> bytes:
    """The ``labels`` fields of a TimeSeries: exactly what the decoder uses as a series key."""
    return b"".join(len_field(1, encode_label(n, v)) for n, v in labels)


def encode_sample(timestamp: int, value: float) -> bytes:
    out = b""
    if _D.pack(value) != b"\0" * 8:
        out += _double(1, value)
    if timestamp:
        out += _tag(2, 0) + varint(timestamp)
    return out


def encode_sample_bits(timestamp: int, bits: int) -> bytes:
    """A Sample whose value is given by its raw IEEE-754 bits (for NaN payloads)."""
    return _tag(1, 1) + _Q.pack(bits) + _tag(2, 0) + varint(timestamp)


def encode_exemplar(e: Exemplar) -> bytes:
    return encode_labels(e.labels) + _double(2, e.value) + _tag(3, 0) + varint(e.timestamp)


def encode_histogram(h: Histogram) -> bytes:
    zigzag = (h.schema << 1) ^ (h.schema >> 63)
    return (
        _tag(1, 0)
        + varint(h.count)
        + _double(3, h.sum)
        + _tag(4, 0)
        + varint(zigzag)
        + _tag(15, 0)
        + varint(h.timestamp)
    )


def encode_timeseries(ts: TimeSeries) -> bytes:
    return (
        encode_labels(ts.labels)
        + b"".join(len_field(2, encode_sample(t, v)) for t, v in ts.samples)
        + b"".join(len_field(3, encode_exemplar(e)) for e in ts.exemplars)
        + b"".join(len_field(4, encode_histogram(h)) for h in ts.histograms)
    )


def encode_metadata(m: Metadata) -> bytes:
    out = b""
    if m.type:
        out += _tag(1, 0) + varint(m.type)
    for no, t in ((2, m.metric_family_name), (4, m.help), (5, m.unit)):
        b = _bytes(t)
        if b:
            out += len_field(no, b)
    return out


def encode_write_request(req: WriteRequest) -> bytes:
    """The uncompressed protobuf bytes of a WriteRequest."""
    return b"".join(len_field(1, encode_timeseries(ts)) for ts in req.timeseries) + b"".join(
        len_field(3, encode_metadata(m)) for m in req.metadata
    )


def snappy(data: bytes) -> bytes:
    """Snappy block-format compression (what remote-write sends)."""
    return bytes(cramjam.snappy.compress_raw(data))


def encode_snappy(req: WriteRequest) -> bytes:
    return snappy(encode_write_request(req))
