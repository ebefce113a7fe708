"""Prometheus remote-write 2.0 decoder: a snappy-compressed ``io.prometheus.write.v2.Request`` -> SampleBatch.

Pure: no store or API imports. A hand-written protobuf walk over this schema, written from the
public Remote-Write 2.0 specification (only the fields this decoder reads are listed)::

    message Request    { repeated string symbols = 4; repeated TimeSeries timeseries = 5; }
    message TimeSeries { repeated uint32 labels_refs = 1;  // packed or not
                         repeated Sample samples = 2; repeated Histogram histograms = 3;
                         repeated Exemplar exemplars = 4; Metadata metadata = 5;
                         int64 created_timestamp = 6; }
    message Sample     { double value = 1; int64 timestamp = 2; }
    message Metadata   { MetricType type = 1; uint32 help_ref = 3; uint32 unit_ref = 4; }

What is kept and what is not:

- Float samples become the batch's columns; each series' key is its label pairs (``name\\xfevalue``
  joined by ``\\xff``, wire order; ``key_kind == "rw2"``); the pipeline validates and sorts them.
- Native histograms (``Histogram``, the same message as remote-write 1.0's, see
  ``ingest/prom_histogram.py``) become ``SampleBatch.histograms``; a histogram stale marker becomes a
  float ``STALE_NAN`` sample; an invalid histogram rejects the request (InvalidInput, 400,
  reason ``invalid_histogram``). They count as samples for ``max_samples_per_request``.
- Exemplars (``Exemplar { repeated uint32 labels_refs = 1; double value = 2; int64 timestamp = 3; }``)
  are decoded into ``SampleBatch.exemplars`` with their series' labels, for the exemplar store.
- Metadata (type, help, unit) becomes one ``MetricMetadata`` per metric name (first seen wins).
- ``created_timestamp`` is read and ignored (the write model has no start-timestamp column).

Validation (each error is an ``InvalidInput`` naming what was read and the byte offset): the
specification's rules that ``symbols[0]`` is the empty string, that ``labels_refs`` has an even
length, that every reference is inside the symbols table, that a label name is not empty and that
a series carries labels; protobuf rules as the 1.0 decoder (wrong wire type for a known field,
truncation, over-long varints, groups, field number 0 are errors; unknown fields are skipped).
Symbols must be valid UTF-8. ``max_series_per_request`` / ``max_samples_per_request`` stop the
walk as soon as they are passed (LimitExceeded). Nothing is returned when any error is raised.
"""

from __future__ import annotations

import struct
from array import array
from typing import Any

import numpy as np

from clearsight.ingest import prom_histogram
from clearsight.ingest.remote_write import METRIC_TYPES, check_content_encoding, decompress
from clearsight.model.exemplars import Exemplar
from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.samples import STALE_NAN, HistogramSamples, MetricMetadata, SampleBatch
from clearsight.pipeline.errors import InvalidInput, LimitExceeded, UnsupportedMediaType
from clearsight.pipeline.limits import WriteLimits

KEY_KIND = "rw2"
V2_PROTO = "io.prometheus.write.v2.request"
V2_CONTENT_TYPE = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

_F64 = struct.Struct("<d")


def is_v2_content_type(content_type: str | None) -> bool:
    """True when ``content_type`` is ``application/x-protobuf`` with ``proto=io.prometheus.write.v2.Request``."""
    if not content_type:
        return False
    media, *params = [p.strip() for p in content_type.split(";")]
    if media.lower() != "application/x-protobuf":
        return False
    for p in params:
        k, _, v = p.partition("=")
        if k.strip().lower() == "proto" and v.strip().strip('"').lower() == V2_PROTO:
            return True
    return False


def decode_labels_v2(key: bytes) -> Labels:
    """The (name, value) pairs of a key built by this decoder, in wire order."""
    if not key:
        return ()
    out = []
    for part in key.split(b"\xff"):
        n, _, v = part.partition(b"\xfe")
        out.append((n.decode(), v.decode()))
    return tuple(out)


class WireError(Exception):
    def __init__(self, what: str, off: int) -> None:
        super().__init__(what)
        self.what = what
        self.off = off


def read_varint(buf: bytes, pos: int, end: int, where: str) -> tuple[int, int]:
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise WireError(f"truncated varint in {where}", start)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise WireError(f"varint longer than 10 bytes in {where}", start)


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def iter_fields(buf: bytes, pos: int, end: int, where: str) -> Any:
    """Yields (field, wire type, tag offset, payload start, payload end) over one message."""
    while pos < end:
        tag_at = pos
        key, pos = read_varint(buf, pos, end, where)
        field, wt = key >> 3, key & 7
        if key > 0xFFFFFFFF:
            raise WireError(f"invalid field tag {key} (exceeds 32 bits) in {where}", tag_at)
        if field == 0:
            raise WireError(f"invalid field number 0 in {where}", tag_at)
        if wt == 0:
            start = pos
            _, pos = read_varint(buf, pos, end, f"{where} field {field}")
        elif wt == 1:
            start = pos
            pos += 8
            if pos > end:
                raise WireError(f"truncated {where} field {field}: needs 8 bytes but only {end - start} remain", tag_at)
        elif wt == 5:
            start = pos
            pos += 4
            if pos > end:
                raise WireError(f"truncated {where} field {field}: needs 4 bytes but only {end - start} remain", tag_at)
        elif wt == 2:
            n, start = read_varint(buf, pos, end, f"{where} field {field} length")
            pos = start + n
            if pos > end:
                raise WireError(f"truncated {where} field {field}: declared length {n} but only {end - start} "
                           "bytes remain", tag_at)
        elif wt in (3, 4):
            raise WireError(f"unsupported group wire type {wt} (field {field}) in {where}", tag_at)
        else:
            raise WireError(f"invalid wire type {wt} (field {field}) in {where}", tag_at)
        yield field, wt, tag_at, start, pos


def expect_wire_type(wt: int, want: int, where: str, tag_at: int) -> None:
    if wt != want:
        names = {0: "0 (varint)", 1: "1 (fixed64)", 2: "2 (length-delimited)", 5: "5 (fixed32)"}
        raise WireError(f"wrong wire type {wt} for {where} (expected {names[want]})", tag_at)


class _Builder:
    def __init__(self, limits: WriteLimits | None) -> None:
        self.max_series = limits.max_series_per_request if limits is not None else -1
        self.max_samples = limits.max_samples_per_request if limits is not None else -1
        self.keys: list[bytes] = []
        self.key_index: dict[bytes, int] = {}
        self.idx = array("i")
        self.ts = array("q")
        self.vals = array("d")
        self.metadata: dict[str, MetricMetadata] = {}
        self.h_idx = array("i")
        self.h_ts = array("q")
        self.hists: list[FloatHistogram] = []
        self.exemplars = 0  # dropped
        self.kept: list[Exemplar] = []


def _read_refs(buf: bytes, s: int, e: int, wt: int, tag_at: int, what: str, refs: list[int]) -> None:
    """Appends a repeated uint32 field's values (one varint, or a packed run) to ``refs``."""
    if wt == 0:
        refs.append(read_varint(buf, s, e, what)[0])
        return
    expect_wire_type(wt, 2, what, tag_at)
    p = s
    while p < e:
        v, p = read_varint(buf, p, e, what)
        refs.append(v)


def _exemplar(buf: bytes, start: int, end: int, syms: list[str], series: Labels) -> Exemplar:
    """``Exemplar``: labels_refs (1, packed or not), value (2, double), timestamp (3, int64 ms)."""
    refs: list[int] = []
    value, ts = 0.0, 0
    for field, wt, tag_at, s, e in iter_fields(buf, start, end, "Exemplar"):
        if field == 1:
            _read_refs(buf, s, e, wt, tag_at, "Exemplar.labels_refs", refs)
        elif field == 2:
            expect_wire_type(wt, 1, "Exemplar.value", tag_at)
            value = _F64.unpack_from(buf, s)[0]
        elif field == 3:
            expect_wire_type(wt, 0, "Exemplar.timestamp", tag_at)
            ts = _signed64(read_varint(buf, s, e, "Exemplar.timestamp")[0])
    if len(refs) % 2:
        raise WireError(f"Exemplar.labels_refs has an odd length ({len(refs)}): references come in name/value pairs",
                        start)
    for r in refs:
        if r >= len(syms):
            raise WireError(f"Exemplar.labels_refs holds {r}, outside the symbols table of {len(syms)} entries",
                            start)
    labels = tuple((syms[refs[i]], syms[refs[i + 1]]) for i in range(0, len(refs), 2))
    return Exemplar(series=series, labels=labels, value=value, ts=ts)


def _symbols(buf: bytes, end: int) -> tuple[list[str], list[bytes]]:
    syms: list[str] = []
    raw: list[bytes] = []
    for field, wt, tag_at, start, stop in iter_fields(buf, 0, end, "Request"):
        if field != 4:
            continue
        expect_wire_type(wt, 2, "Request.symbols", tag_at)
        b = bytes(buf[start:stop])
        try:
            syms.append(b.decode("utf-8"))
        except UnicodeDecodeError:
            raise WireError(f"invalid UTF-8 in Request.symbols[{len(syms)}]", start) from None
        raw.append(b)
    return syms, raw


def _series(buf: bytes, start: int, end: int, syms: list[str], raw: list[bytes], out: _Builder) -> None:
    refs: list[int] = []
    samples: list[tuple[int, float, int]] = []
    hists: list[tuple[int, FloatHistogram | None]] = []
    exemplars = 0
    exemplar_spans: list[tuple[int, int]] = []
    meta: tuple[int, int, int, int] | None = None
    for field, wt, tag_at, s, e in iter_fields(buf, start, end, "TimeSeries"):
        if field == 1:
            _read_refs(buf, s, e, wt, tag_at, "TimeSeries.labels_refs", refs)
        elif field == 2:
            expect_wire_type(wt, 2, "TimeSeries.samples", tag_at)
            value, ts = 0.0, 0
            for f2, wt2, tag2, s2, _e2 in iter_fields(buf, s, e, "Sample"):
                if f2 == 1:
                    expect_wire_type(wt2, 1, "Sample.value", tag2)
                    value = _F64.unpack_from(buf, s2)[0]
                elif f2 == 2:
                    expect_wire_type(wt2, 0, "Sample.timestamp", tag2)
                    ts = _signed64(read_varint(buf, s2, _e2, "Sample.timestamp")[0])
            samples.append((ts, value, s))
        elif field == 3:
            expect_wire_type(wt, 2, "TimeSeries.histograms", tag_at)
            try:
                hists.append(prom_histogram.decode(buf, s, e))
            except prom_histogram.HistogramDecodeError as err:
                raise InvalidInput(f"invalid native histogram in the TimeSeries at byte {start}: {err}",
                                   reason="invalid_histogram") from None
        elif field == 4:
            expect_wire_type(wt, 2, "TimeSeries.exemplars", tag_at)
            exemplars += 1
            exemplar_spans.append((s, e))
        elif field == 5:
            expect_wire_type(wt, 2, "TimeSeries.metadata", tag_at)
            mtype, help_ref, unit_ref = (meta or (0, 0, 0, 0))[:3]
            for f2, wt2, tag2, s2, e2 in iter_fields(buf, s, e, "Metadata"):
                if f2 in (1, 3, 4):
                    expect_wire_type(wt2, 0, {1: "Metadata.type", 3: "Metadata.help_ref", 4: "Metadata.unit_ref"}[f2], tag2)
                    v, _ = read_varint(buf, s2, e2, "Metadata")
                    if f2 == 1:
                        mtype = v
                    elif f2 == 3:
                        help_ref = v
                    else:
                        unit_ref = v
            meta = (mtype, help_ref, unit_ref, s)
        elif field == 6:
            expect_wire_type(wt, 0, "TimeSeries.created_timestamp", tag_at)
    n = len(syms)
    if not refs:
        raise WireError("TimeSeries without labels_refs (the specification requires labels)", start)
    if len(refs) % 2:
        raise WireError(f"TimeSeries.labels_refs has an odd length ({len(refs)}): references come in name/value pairs",
                   start)
    for r in refs:
        if r >= n:
            raise WireError(f"TimeSeries.labels_refs holds {r}, outside the symbols table of {n} entries", start)
    pairs = [raw[refs[i]] + b"\xfe" + raw[refs[i + 1]] for i in range(0, len(refs), 2)]
    for i in range(0, len(refs), 2):
        if refs[i] == 0:
            raise WireError("TimeSeries.labels_refs names a label with the empty symbol 0", start)
    if exemplar_spans:
        series = tuple((syms[refs[i]], syms[refs[i + 1]]) for i in range(0, len(refs), 2))
        out.kept.extend(_exemplar(buf, a, b, syms, series) for a, b in exemplar_spans)
    out.exemplars += exemplars - len(exemplar_spans)
    name = ""
    for i in range(0, len(refs), 2):
        if syms[refs[i]] == "__name__":
            name = syms[refs[i + 1]]
    if meta is not None:
        mtype, help_ref, unit_ref, at = meta
        if help_ref >= n or unit_ref >= n:
            raise WireError(f"Metadata references symbol {max(help_ref, unit_ref)}, outside the symbols table of {n} "
                       "entries", at)
        if name and name not in out.metadata and (mtype or help_ref or unit_ref):
            out.metadata[name] = MetricMetadata(metric=name, type=METRIC_TYPES.get(mtype, "unknown"),
                                                help=syms[help_ref], unit=syms[unit_ref])
    for ts, h in hists:
        if h is None:  # a histogram stale marker is a float stale marker
            samples.append((ts, STALE_NAN, start))
    n_hist = sum(1 for _, h in hists if h is not None)
    if not samples and not n_hist:
        return
    key = b"\xff".join(pairs)
    found = out.key_index.get(key)
    if found is None:
        if out.max_series >= 0 and len(out.keys) >= out.max_series:
            raise LimitExceeded("series_per_request", f"request has more than {out.max_series} series, over the "
                                f"limit of {out.max_series} series per request (max_series_per_request)")
        found = out.key_index[key] = len(out.keys)
        out.keys.append(key)
    i = found
    if out.max_samples >= 0 and len(out.vals) + len(out.hists) + len(samples) + n_hist > out.max_samples:
        raise LimitExceeded("samples_per_request", f"request has more than {out.max_samples} samples, over the "
                            f"limit of {out.max_samples} samples per request (max_samples_per_request)")
    for ts, value, _ in samples:
        out.idx.append(i)
        out.ts.append(ts)
        out.vals.append(value)
    for ts, h in hists:
        if h is not None:
            out.h_idx.append(i)
            out.h_ts.append(ts)
            out.hists.append(h)


def batch_from_v2(data: Any, *, limits: WriteLimits | None = None) -> SampleBatch:
    """Decodes an uncompressed ``io.prometheus.write.v2.Request``."""
    buf = bytes(data)
    end = len(buf)
    out = _Builder(limits)
    try:
        syms, raw = _symbols(buf, end)
        if syms and syms[0] != "":
            raise WireError("Request.symbols[0] must be the empty string", 0)
        for field, wt, tag_at, start, stop in iter_fields(buf, 0, end, "Request"):
            if field == 5:
                expect_wire_type(wt, 2, "Request.timeseries", tag_at)
                _series(buf, start, stop, syms, raw, out)
    except WireError as e:
        raise InvalidInput(f"invalid io.prometheus.write.v2.Request protobuf: {e.what} at byte {e.off}") from None
    return SampleBatch(
        keys=out.keys,
        key_kind=KEY_KIND,
        decode_labels=decode_labels_v2,
        series_idx=np.frombuffer(out.idx, dtype=np.int32).copy(),
        timestamps=np.frombuffer(out.ts, dtype=np.int64).copy(),
        values=np.frombuffer(out.vals, dtype=np.float64).copy(),
        metadata=list(out.metadata.values()),
        exemplars_dropped=out.exemplars,
        exemplars=out.kept,
        histograms=HistogramSamples(
            np.frombuffer(out.h_idx, dtype=np.int32).copy(), np.frombuffer(out.h_ts, dtype=np.int64).copy(), out.hists
        ) if out.hists else None,
    )


def decode_write_request_v2(body: bytes, *, content_encoding: str | None, content_type: str | None,
                            limits: WriteLimits) -> SampleBatch:
    """Decodes a remote-write 2.0 request body (snappy block format).

    415 (UnsupportedMediaType) for another content type or encoding, 413 over the size limits,
    400 for corrupt snappy data, a malformed protobuf or a limit passed."""
    if not is_v2_content_type(content_type):
        raise UnsupportedMediaType(f"Content-Type {content_type!r} is not {V2_CONTENT_TYPE!r}")
    check_content_encoding(content_encoding)
    return batch_from_v2(decompress(body, limits), limits=limits)
