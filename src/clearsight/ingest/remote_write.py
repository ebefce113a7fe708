"""Prometheus remote-write 1.0 decoder: a snappy-compressed ``prometheus.WriteRequest`` -> SampleBatch.

Pure: no store or API imports. The protobuf walk runs in the compiled ``_prompb`` extension when it
is built (one call splits a request into one ``bytes`` key per series plus numpy sample columns, with
the GIL released during the walk); ``split_write_request_pure`` is the reference implementation of the
same walk in Python, used as a fallback and to test the extension against.

Output (``SampleBatch`` with ``key_kind == "prompb"``):

- ``keys[i]`` is the raw protobuf encoding of series ``i``'s ``labels`` fields (each ``Label``
  with its field tag and length prefix, concatenated in wire order). Equal label lists in equal
  order give equal keys, so a store can cache series ids by these bytes. ``decode_labels(key)``
  parses a key into ``(name, value)`` pairs in wire order (unsorted, may hold empty values and
  duplicates: ``pipeline.validate`` canonicalizes them), raising ``InvalidInput`` on invalid UTF-8.
- Only series with at least one float sample or native histogram get a key. Native histograms
  (``TimeSeries.histograms``) are located by the walk and decoded afterwards by
  ``ingest/prom_histogram.py`` into ``SampleBatch.histograms`` (a stale marker becomes a float
  ``STALE_NAN`` sample); an invalid one rejects the request (InvalidInput, reason
  ``invalid_histogram``, naming the series). A histogram counts as a sample for
  ``max_samples_per_request``. Exemplars (also those of series without samples, which is how
  Prometheus sends them) are decoded into ``SampleBatch.exemplars`` by a second walk that runs only
  when the first one counted any (``exemplars_of_request``).
- A key may appear more than once when a request repeats a series.
- ``series_idx``/``timestamps``/``values`` are the samples in wire order; NaN payloads (including
  the stale marker) are kept bit-exact.

Protobuf semantics follow the gogo-generated decoder Prometheus 2.x uses: a known field with the
wrong wire type is an error, unknown fields are skipped (groups are rejected), the last occurrence
of a non-repeated scalar wins, varints longer than 10 bytes are an error. Every protobuf error is an ``InvalidInput`` whose message
names what was being read and the byte offset in the decompressed body.

Size limits (``WriteLimits``): the compressed body (``max_body_bytes``) and the length the snappy
header declares (``max_decompressed_bytes``, checked before decompressing) give PayloadTooLarge;
``max_series_per_request`` / ``max_samples_per_request`` stop the walk as soon as they are passed
(LimitExceeded), so a small, highly compressible body cannot make the decoder allocate gigabytes.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

import cramjam
import numpy as np

from clearsight.ingest import prom_histogram
from clearsight.model.exemplars import Exemplar
from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.samples import (
    STALE_NAN,
    F64Array,
    HistogramSamples,
    I32Array,
    I64Array,
    MetricMetadata,
    SampleBatch,
)
from clearsight.pipeline.decoded_bytes import grow_current
from clearsight.pipeline.errors import InvalidInput, LimitExceeded, PayloadTooLarge, UnsupportedMediaType
from clearsight.pipeline.limits import WriteLimits

log = logging.getLogger(__name__)

KEY_KIND = "prompb"

# --- error codes shared with the compiled walk (_prompb.pyx); keep the two in sync ---------------
E_TRUNC_VARINT = 1
E_VARINT_TOO_LONG = 2
E_BAD_TAG = 3
E_FIELD0 = 4
E_BAD_WIRE_TYPE = 5
E_GROUP = 6
E_WRONG_WIRE_TYPE = 7
E_TRUNC_LEN = 8
E_TRUNC_FIXED = 9
E_NOMEM = 10
E_TOO_MANY_SERIES = 11
E_TOO_MANY_SAMPLES = 12

# contexts: messages (0-4) and fields (10-23)
CONTEXTS: dict[int, str] = {
    0: "WriteRequest",
    1: "TimeSeries",
    2: "Label",
    3: "Sample",
    4: "MetricMetadata",
    10: "WriteRequest.timeseries",
    11: "WriteRequest.metadata",
    12: "TimeSeries.labels",
    13: "TimeSeries.samples",
    14: "TimeSeries.exemplars",
    15: "TimeSeries.histograms",
    16: "Label.name",
    17: "Label.value",
    18: "Sample.value",
    19: "Sample.timestamp",
    20: "MetricMetadata.type",
    21: "MetricMetadata.metric_family_name",
    22: "MetricMetadata.help",
    23: "MetricMetadata.unit",
}

_EXPECTED_WIRE_TYPE: dict[int, str] = {18: "1 (fixed64)", 19: "0 (varint)", 20: "0 (varint)"}

METRIC_TYPES: dict[int, str] = {
    0: "unknown",
    1: "counter",
    2: "gauge",
    3: "histogram",
    4: "gaugehistogram",
    5: "summary",
    6: "info",
    7: "stateset",
}

_V2_PROTO = "io.prometheus.write.v2.request"
_V1_PROTO = "prometheus.writerequest"
_FRAMED_SNAPPY_MAGIC = b"\xff\x06\x00\x00sNaPpY"


def wire_error_message(code: int, off: int, ctx: int, a: int, b: int) -> str:
    """The message of a protobuf walk error (shared by the compiled and the pure walk)."""
    where = CONTEXTS.get(ctx, f"context {ctx}")
    if code == E_TRUNC_VARINT:
        what = f"truncated varint in {where}"
    elif code == E_VARINT_TOO_LONG:
        what = f"varint longer than 10 bytes in {where}"
    elif code == E_BAD_TAG:
        what = f"invalid field tag {a} (exceeds 32 bits) in {where}"
    elif code == E_FIELD0:
        what = f"invalid field number 0 in {where}"
    elif code == E_BAD_WIRE_TYPE:
        what = f"invalid wire type {a} (field {b}) in {where}"
    elif code == E_GROUP:
        what = f"unsupported group wire type {a} (field {b}) in {where}"
    elif code == E_WRONG_WIRE_TYPE:
        expected = _EXPECTED_WIRE_TYPE.get(ctx, "2 (length-delimited)")
        what = f"wrong wire type {a} for {where} (expected {expected})"
    elif code == E_TRUNC_LEN:
        what = f"truncated {where}: declared length {a} but only {b} bytes remain"
    elif code == E_TRUNC_FIXED:
        what = f"truncated {where}: needs {a} bytes but only {b} remain"
    else:
        what = f"decoder error {code} in {where}"
    return f"invalid WriteRequest protobuf: {what} at byte {off}"


def _wire_error(code: int, off: int, ctx: int, a: int, b: int) -> Exception:
    if code == E_NOMEM:
        return MemoryError("out of memory decoding a WriteRequest")
    if code == E_TOO_MANY_SERIES:
        return LimitExceeded(
            "series_per_request",
            f"request has more than {a} series, over the limit of {a} series per request "
            "(max_series_per_request)",
        )
    if code == E_TOO_MANY_SAMPLES:
        return LimitExceeded(
            "samples_per_request",
            f"request has more than {a} samples, over the limit of {a} samples per request "
            "(max_samples_per_request)",
        )
    return InvalidInput(wire_error_message(code, off, ctx, a, b), reason="invalid_protobuf")


class _WireError(Exception):
    def __init__(self, code: int, off: int, ctx: int, a: int = 0, b: int = 0) -> None:
        super().__init__(code, off, ctx, a, b)
        self.info = (code, off, ctx, a, b)


# The result of splitting one WriteRequest: keys, series_idx, timestamps, values,
# metadata (type, name, help, unit, byte offset), exemplar count, histogram count.
# keys, series_idx, timestamps, values, metadata, exemplar count, and an (n, 3) int64 array of the
# Histogram messages: (series number, start, end) of each in the decompressed body.
Split = tuple[
    list[bytes], I32Array, I64Array, F64Array, list[tuple[int, bytes, bytes, bytes, int]], int, I64Array
]
SplitFn = Callable[[Any, Callable[[int, int, int, int, int], Exception], int, int], Split]

# --- the pure-Python reference walk ---------------------------------------------------------------

_U64 = (1 << 64) - 1
_Q = struct.Struct("<Q")


def _varint(buf: bytes, pos: int, end: int, ctx: int) -> tuple[int, int]:
    start = pos
    v = 0
    shift = 0
    for _ in range(10):
        if pos >= end:
            raise _WireError(E_TRUNC_VARINT, start, ctx)
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v & _U64, pos
        shift += 7
    raise _WireError(E_VARINT_TOO_LONG, start, ctx)


def _tag(buf: bytes, pos: int, end: int, ctx: int) -> tuple[int, int, int]:
    start = pos
    v, pos = _varint(buf, pos, end, ctx)
    if v > 0xFFFFFFFF:
        raise _WireError(E_BAD_TAG, start, ctx, v)
    field, wt = v >> 3, v & 7
    if field == 0:
        raise _WireError(E_FIELD0, start, ctx)
    if wt > 5:
        raise _WireError(E_BAD_WIRE_TYPE, start, ctx, wt, field)
    return field, wt, pos


def _len(buf: bytes, pos: int, end: int, ctx: int) -> tuple[int, int]:
    n, pos = _varint(buf, pos, end, ctx)
    if n > end - pos:
        raise _WireError(E_TRUNC_LEN, pos, ctx, n, end - pos)
    return pos, pos + n


def _skip(buf: bytes, pos: int, end: int, field: int, wt: int, ctx: int, tag_start: int) -> int:
    if wt == 0:
        return _varint(buf, pos, end, ctx)[1]
    if wt == 1 or wt == 5:
        width = 8 if wt == 1 else 4
        if end - pos < width:
            raise _WireError(E_TRUNC_FIXED, pos, ctx, width, end - pos)
        return pos + width
    if wt == 2:
        return _len(buf, pos, end, ctx)[1]
    raise _WireError(E_GROUP, tag_start, ctx, wt, field)


def _fixed64(buf: bytes, pos: int, end: int, ctx: int) -> tuple[int, int]:
    """(the raw 64 bits, next position)."""
    if end - pos < 8:
        raise _WireError(E_TRUNC_FIXED, pos, ctx, 8, end - pos)
    return _Q.unpack_from(buf, pos)[0], pos + 8


def _int64(buf: bytes, pos: int, end: int, ctx: int) -> tuple[int, int]:
    """A varint read as a two's-complement int64."""
    raw, pos = _varint(buf, pos, end, ctx)
    return (raw - (1 << 64) if raw >= (1 << 63) else raw), pos


def _expect(wt: int, want: int, tag_start: int, ctx: int) -> None:
    if wt != want:
        raise _WireError(E_WRONG_WIRE_TYPE, tag_start, ctx, wt)


def _check_label(buf: bytes, pos: int, end: int) -> None:
    while pos < end:
        ts = pos
        field, wt, pos = _tag(buf, pos, end, 2)
        if field == 1 or field == 2:
            ctx = 16 if field == 1 else 17
            _expect(wt, 2, ts, ctx)
            pos = _len(buf, pos, end, ctx)[1]
        else:
            pos = _skip(buf, pos, end, field, wt, 2, ts)


def split_write_request_pure(
    data: Any,
    make_error: Callable[[int, int, int, int, int], Exception],
    max_series: int = -1,
    max_samples: int = -1,
) -> Split:
    """Reference walk of an uncompressed WriteRequest (same output and errors as the compiled one).

    Stops with E_TOO_MANY_SERIES / E_TOO_MANY_SAMPLES past ``max_series`` series with samples or
    ``max_samples`` samples (negative: unlimited), so a small body cannot make it allocate much."""
    if max_series < 0:
        max_series = 1 << 63
    if max_samples < 0:
        max_samples = 1 << 63
    buf = bytes(data)
    n = len(buf)
    keys: list[bytes] = []
    sidx: list[int] = []
    tss: list[int] = []
    vals: list[int] = []  # raw IEEE-754 bits, so NaN payloads stay exact
    meta: list[tuple[int, bytes, bytes, bytes, int]] = []
    exemplars = 0
    hists: list[tuple[int, int, int]] = []  # (series number, start, end) of each Histogram message
    try:
        pos = 0
        while pos < n:
            tag_start = pos
            field, wt, pos = _tag(buf, pos, n, 0)
            if field == 1:
                _expect(wt, 2, tag_start, 10)
                s, e = _len(buf, pos, n, 10)
                spans: list[list[int]] = []
                before = len(vals)
                hists_before = len(hists)
                series_no = len(keys)
                p = s
                while p < e:
                    ts0 = p
                    f, w, p = _tag(buf, p, e, 1)
                    if f == 1:
                        _expect(w, 2, ts0, 12)
                        ls, le = _len(buf, p, e, 12)
                        _check_label(buf, ls, le)
                        if spans and spans[-1][1] == ts0:
                            spans[-1][1] = le
                        else:
                            spans.append([ts0, le])
                        p = le
                    elif f == 2:
                        _expect(w, 2, ts0, 13)
                        ss, se = _len(buf, p, e, 13)
                        value = 0
                        t = 0
                        q = ss
                        while q < se:
                            ts1 = q
                            f2, w2, q = _tag(buf, q, se, 3)
                            if f2 == 1:
                                _expect(w2, 1, ts1, 18)
                                value, q = _fixed64(buf, q, se, 18)
                            elif f2 == 2:
                                _expect(w2, 0, ts1, 19)
                                t, q = _int64(buf, q, se, 19)
                            else:
                                q = _skip(buf, q, se, f2, w2, 3, ts1)
                        if len(vals) + len(hists) >= max_samples:
                            raise _WireError(E_TOO_MANY_SAMPLES, q, 3, max_samples)
                        sidx.append(series_no)
                        tss.append(t)
                        vals.append(value)
                        p = se
                    elif f == 3 or f == 4:
                        _expect(w, 2, ts0, 14 if f == 3 else 15)
                        hs, p = _len(buf, p, e, 14 if f == 3 else 15)
                        if f == 3:
                            exemplars += 1
                        else:
                            if len(vals) + len(hists) >= max_samples:
                                raise _WireError(E_TOO_MANY_SAMPLES, p, 1, max_samples)
                            hists.append((series_no, hs, p))
                    else:
                        p = _skip(buf, p, e, f, w, 1, ts0)
                if len(vals) > before or len(hists) > hists_before:
                    if len(keys) >= max_series:
                        raise _WireError(E_TOO_MANY_SERIES, e, 1, max_series)
                    keys.append(b"".join(buf[a:b] for a, b in spans))
                pos = e
            elif field == 3:
                _expect(wt, 2, tag_start, 11)
                s, e = _len(buf, pos, n, 11)
                mtype = 0
                strs = [b"", b"", b""]
                p = s
                while p < e:
                    ts0 = p
                    f, w, p = _tag(buf, p, e, 4)
                    if f == 1:
                        _expect(w, 0, ts0, 20)
                        mtype, p = _varint(buf, p, e, 20)
                    elif f in (2, 4, 5):
                        ctx = {2: 21, 4: 22, 5: 23}[f]
                        _expect(w, 2, ts0, ctx)
                        a, b = _len(buf, p, e, ctx)
                        strs[{2: 0, 4: 1, 5: 2}[f]] = buf[a:b]
                        p = b
                    else:
                        p = _skip(buf, p, e, f, w, 4, ts0)
                if mtype >= (1 << 63):
                    mtype -= 1 << 64
                meta.append((mtype, strs[0], strs[1], strs[2], s))
                pos = e
            else:
                pos = _skip(buf, pos, n, field, wt, 0, tag_start)
    except _WireError as err:
        raise make_error(*err.info) from None
    vals_arr: F64Array = np.array(vals, dtype=np.uint64).view(np.float64)
    return (
        keys,
        np.array(sidx, dtype=np.int32),
        np.array(tss, dtype=np.int64),
        vals_arr,
        meta,
        exemplars,
        np.array(hists, dtype=np.int64).reshape(-1, 3),
    )


_native_split: SplitFn | None
_native_labels: Callable[[bytes], list[tuple[bytes, bytes]]] | None
try:
    from clearsight.ingest import _prompb  # type: ignore[attr-defined]

    _native_split = _prompb.split_write_request
    _native_labels = _prompb.label_pairs
except ImportError as _e:  # pragma: no cover - depends on the build
    _native_split = None
    _native_labels = None
    log.warning(
        "clearsight.ingest._prompb is not built (%s): remote-write decoding uses the slow "
        "pure-Python walk; reinstall with a C compiler and Cython to build it",
        _e,
    )

NATIVE_AVAILABLE = _native_split is not None


# --- label keys -------------------------------------------------------------------------------------


def _label_pairs_pure(key: bytes) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    n = len(key)
    pos = 0
    try:
        while pos < n:
            ts = pos
            field, wt, pos = _tag(key, pos, n, 1)
            if field != 1:
                pos = _skip(key, pos, n, field, wt, 1, ts)
                continue
            _expect(wt, 2, ts, 12)
            s, e = _len(key, pos, n, 12)
            name = b""
            value = b""
            p = s
            while p < e:
                ts1 = p
                f, w, p = _tag(key, p, e, 2)
                if f == 1 or f == 2:
                    _expect(w, 2, ts1, 16 if f == 1 else 17)
                    a, b = _len(key, p, e, 16 if f == 1 else 17)
                    if f == 1:
                        name = key[a:b]
                    else:
                        value = key[a:b]
                    p = b
                else:
                    p = _skip(key, p, e, f, w, 2, ts1)
            out.append((name, value))
            pos = e
    except _WireError as err:
        raise _wire_error(*err.info) from None
    return out


def _render_raw(pairs: list[tuple[bytes, bytes]]) -> str:
    parts = []
    for n, v in pairs[:20]:
        name = n.decode("utf-8", "backslashreplace")
        value = v.decode("utf-8", "backslashreplace")
        if len(value) > 64:
            value = value[:64] + "..."
        parts.append(f'{name}="{value}"')
    more = ", ..." if len(pairs) > 20 else ""
    return "{" + ", ".join(parts) + more + "}"


def _raw_pairs(key: bytes) -> list[tuple[bytes, bytes]]:
    return _native_labels(key) if _native_labels is not None else _label_pairs_pure(key)


def decode_labels(key: bytes) -> Labels:
    """Parses a ``prompb`` series key into its (unsorted, unvalidated) label pairs.

    Raises InvalidInput when a name or value is not valid UTF-8 (or the key is not a label list).
    """
    pairs = _raw_pairs(key)
    out = []
    for n, v in pairs:
        try:
            out.append((n.decode("utf-8"), v.decode("utf-8")))
        except UnicodeDecodeError as e:
            part = "name" if _not_utf8(n) else "value"
            raw = n if part == "name" else v
            raise InvalidInput(
                f'label {part} "{raw.decode("utf-8", "backslashreplace")}" is not valid UTF-8 '
                f"(byte {e.start}: {e.reason}) in series {_render_raw(pairs)}",
                reason="invalid_utf8",
            ) from None
    return tuple(out)


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# --- HTTP-level checks ---------------------------------------------------------------------------


def check_content_type(content_type: str | None) -> None:
    """Accepts a missing type, ``application/x-protobuf`` and ``...;proto=prometheus.WriteRequest``."""
    if content_type is None or content_type.strip() == "":
        return
    media, *params = [p.strip() for p in content_type.split(";")]
    if media.lower() != "application/x-protobuf":
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}: remote-write 1.0 expects "
            "'application/x-protobuf' (a snappy-compressed prometheus.WriteRequest)"
        )
    for p in params:
        k, _, v = p.partition("=")
        if k.strip().lower() != "proto":
            continue
        proto = v.strip().strip('"').lower()
        if proto == _V2_PROTO:
            raise UnsupportedMediaType(
                f"Content-Type {content_type!r} asks for remote-write 2.0 (io.prometheus.write.v2.Request); "
                "this endpoint implements remote-write 1.0: configure the sender with "
                "protobuf_message: prometheus.WriteRequest"
            )
        if proto != _V1_PROTO:
            raise UnsupportedMediaType(
                f"unsupported protobuf message {v.strip()!r} in Content-Type: expected prometheus.WriteRequest"
            )


def check_content_encoding(content_encoding: str | None) -> None:
    """Accepts ``snappy`` (block format) or a missing header (Prometheus assumes snappy too)."""
    if content_encoding is None:
        return
    enc = content_encoding.strip().lower()
    if enc in ("", "snappy"):
        return
    if enc in ("x-snappy-framed", "snappy-framed", "framed-snappy"):
        raise UnsupportedMediaType(
            f"unsupported Content-Encoding {content_encoding!r}: remote-write uses the snappy block format, "
            "not the framed (streaming) format"
        )
    raise UnsupportedMediaType(
        f"unsupported Content-Encoding {content_encoding!r}: remote-write 1.0 requires 'snappy' (block format)"
    )


def decompress(body: bytes, limits: WriteLimits) -> Any:
    """Snappy block decompression with the compressed and decompressed size limits.

    Returns a buffer-protocol object (a cramjam Buffer)."""
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes, over the limit of {limits.max_body_bytes} bytes (max_body_bytes)"
        )
    if len(body) == 0:
        raise InvalidInput(
            "empty request body: expected a snappy-compressed WriteRequest", reason="invalid_snappy"
        )
    if body.startswith(_FRAMED_SNAPPY_MAGIC):
        raise InvalidInput(
            "request body is in the framed (streaming) snappy format; remote-write uses the snappy block format",
            reason="invalid_snappy",
        )
    declared = snappy_declared_len(body)
    if declared > limits.max_decompressed_bytes:
        raise PayloadTooLarge(
            f"decompressed request would be {declared} bytes, over the limit of "
            f"{limits.max_decompressed_bytes} bytes (max_decompressed_bytes)"
        )
    grow_current(declared)  # the global cap on decompressed bytes (503 when it is reached)
    try:
        return cramjam.snappy.decompress_raw(body)
    except cramjam.DecompressionError as e:
        raise InvalidInput(f"corrupt snappy block data: {e}", reason="invalid_snappy") from None


def snappy_declared_len(body: bytes) -> int:
    """The decompressed length a snappy block declares in its header (InvalidInput if unreadable)."""
    v = 0
    for i in range(min(5, len(body))):
        b = body[i]
        v |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            if v > 0xFFFFFFFF:
                break
            return v
    raise InvalidInput(
        "corrupt snappy block data: invalid uncompressed-length header at byte 0", reason="invalid_snappy"
    )


# --- entry points ----------------------------------------------------------------------------------


def batch_from_protobuf(
    data: Any, *, native: bool | None = None, limits: WriteLimits | None = None
) -> SampleBatch:
    """Decodes an uncompressed WriteRequest. ``native=None`` uses the compiled walk when built.

    With ``limits``, the walk stops as soon as the request has more series (with samples) or
    samples than allowed (``LimitExceeded``), before allocating for them."""
    max_series = limits.max_series_per_request if limits is not None else -1
    max_samples = limits.max_samples_per_request if limits is not None else -1
    use_native = NATIVE_AVAILABLE if native is None else native
    if use_native:
        if _native_split is None:
            raise RuntimeError("the _prompb extension is not built")
        split = _native_split(data, _wire_error, max_series, max_samples)
    else:
        split = split_write_request_pure(data, _wire_error, max_series, max_samples)
    keys, sidx, ts, vals, meta, exemplars, hist_at = split
    kept = exemplars_of_request(bytes(data)) if exemplars else []  # the rest of the count: dropped
    hists: HistogramSamples | None = None
    if hist_at.shape[0]:
        hists, stale = histograms_of_request(bytes(data), hist_at, keys)
        if stale is not None:  # histogram stale markers are float stale markers
            sidx = np.concatenate((sidx, stale[0]))
            ts = np.concatenate((ts, stale[1]))
            vals = np.concatenate((vals, np.full(stale[0].shape[0], STALE_NAN)))
    return SampleBatch(
        keys=keys,
        key_kind=KEY_KIND,
        decode_labels=decode_labels,
        series_idx=sidx,
        timestamps=ts,
        values=vals,
        metadata=[_metadata(m) for m in meta] if meta else [],
        exemplars_dropped=exemplars - len(kept),
        exemplars=kept,
        histograms=hists,
    )


def histograms_of_request(
    buf: bytes, at: I64Array, keys: list[bytes]
) -> tuple[HistogramSamples | None, tuple[I32Array, I64Array] | None]:
    """Decodes the Histogram messages the walk located (``at``: series number, start, end): the
    native histogram samples, and the (series, timestamp) of the stale markers among them. A
    malformed or invalid histogram rejects the request (InvalidInput naming the series)."""
    h_sidx: list[int] = []
    h_ts: list[int] = []
    hs: list[FloatHistogram] = []
    s_sidx: list[int] = []
    s_ts: list[int] = []
    for series_no, start, end in at.tolist():
        try:
            t, h = prom_histogram.decode(buf, start, end)
        except prom_histogram.HistogramDecodeError as e:
            raise InvalidInput(
                f"invalid native histogram in series {_render_raw(_raw_pairs(keys[series_no]))}: {e}",
                reason="invalid_histogram",
            ) from None
        if h is None:
            s_sidx.append(series_no)
            s_ts.append(t)
        else:
            h_sidx.append(series_no)
            h_ts.append(t)
            hs.append(h)
    samples = (
        HistogramSamples(np.asarray(h_sidx, dtype=np.int32), np.asarray(h_ts, dtype=np.int64), hs) if hs else None
    )
    stale = (np.asarray(s_sidx, dtype=np.int32), np.asarray(s_ts, dtype=np.int64)) if s_sidx else None
    return samples, stale


_F64 = struct.Struct("<d")


def _exemplar(buf: bytes, s: int, e: int, series: Labels) -> Exemplar:
    """``prometheus.Exemplar``: labels (1), value (2, double), timestamp (3, int64 ms)."""
    raw: list[bytes] = []
    value = 0.0
    ts = 0
    pos = s
    while pos < e:
        tag_at = pos
        field, wt, pos = _tag(buf, pos, e, 14)
        if field == 1:
            _expect(wt, 2, tag_at, 14)
            ls, pos = _len(buf, pos, e, 14)
            _check_label(buf, ls, pos)
            raw.append(buf[tag_at:pos])
        elif field == 2:
            _expect(wt, 1, tag_at, 14)
            bits, pos = _fixed64(buf, pos, e, 14)
            value = _F64.unpack(_Q.pack(bits))[0]
        elif field == 3:
            _expect(wt, 0, tag_at, 14)
            ts, pos = _int64(buf, pos, e, 14)
        else:
            pos = _skip(buf, pos, e, field, wt, 14, tag_at)
    return Exemplar(series=series, labels=decode_labels(b"".join(raw)) if raw else (), value=value, ts=ts)


def exemplars_of_request(buf: bytes) -> list[Exemplar]:
    """The exemplars of a WriteRequest whose structure the sample walk has accepted.

    Prometheus sends exemplars in their own ``TimeSeries`` entries (labels + exemplars, no samples),
    so this second walk, run only when the first one counted exemplars, reads every series that has
    any. Exemplars are an annotation: one that cannot be read (malformed body, labels that are not
    UTF-8) is dropped, and counted by the caller, without failing the request's samples."""
    out: list[Exemplar] = []
    n = len(buf)
    try:
        pos = 0
        while pos < n:
            field, wt, pos = _tag(buf, pos, n, 0)
            if field != 1 or wt != 2:
                pos = _skip(buf, pos, n, field, wt, 0, pos)
                continue
            s, e = _len(buf, pos, n, 1)
            pos = e
            labels: list[bytes] = []
            spans: list[tuple[int, int]] = []
            p = s
            while p < e:
                tag_at = p
                f2, wt2, p = _tag(buf, p, e, 1)
                if wt2 == 2:
                    ls, p = _len(buf, p, e, 1)
                    if f2 == 1:
                        labels.append(buf[tag_at:p])
                    elif f2 == 3:
                        spans.append((ls, p))
                else:
                    p = _skip(buf, p, e, f2, wt2, 1, tag_at)
            if not spans:
                continue
            try:
                series = decode_labels(b"".join(labels))
            except InvalidInput:
                continue
            for a, b in spans:
                try:
                    out.append(_exemplar(buf, a, b, series))
                except (_WireError, InvalidInput):
                    pass
    except _WireError:
        pass  # not reached for a request the sample walk accepted
    return out


def _metadata(m: tuple[int, bytes, bytes, bytes, int]) -> MetricMetadata:
    mtype, name, help_, unit, off = m
    fields = []
    for what, raw in (("metric_family_name", name), ("help", help_), ("unit", unit)):
        try:
            fields.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(
                f"invalid UTF-8 in MetricMetadata.{what} of the metadata entry at byte {off}",
                reason="invalid_utf8",
            ) from None
    return MetricMetadata(
        metric=fields[0], type=METRIC_TYPES.get(mtype, "unknown"), help=fields[1], unit=fields[2]
    )


def decode_write_request(
    body: bytes,
    *,
    content_encoding: str | None,
    content_type: str | None,
    limits: WriteLimits,
    native: bool | None = None,
) -> SampleBatch:
    """Decodes a remote-write 1.0 request body.

    Raises UnsupportedMediaType (415) for other content types/encodings (including remote-write
    2.0), PayloadTooLarge (413) over the size limits, InvalidInput (400) for corrupt snappy data or
    a malformed protobuf (with the byte offset), LimitExceeded (400) as soon as the request holds
    more series or samples than ``limits`` allow (so a highly compressible body cannot make the
    decoder allocate gigabytes).
    """
    check_content_type(content_type)
    check_content_encoding(content_encoding)
    data = decompress(body, limits)
    return batch_from_protobuf(data, native=native, limits=limits)
