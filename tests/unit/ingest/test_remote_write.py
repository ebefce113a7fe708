"""Remote-write 1.0 decoder: headers, snappy, size limits, output shape; compiled walk == pure walk."""

from __future__ import annotations

import importlib.util
import logging
import math
import struct
import sys

import cramjam
import numpy as np
import pytest

import clearsight.ingest
from clearsight.ingest import remote_write as rw
from clearsight.ingest.prompb_encode import (
    Exemplar,
    Histogram,
    Metadata,
    TimeSeries,
    WriteRequest,
    encode_labels,
    encode_sample_bits,
    encode_snappy,
    encode_write_request,
    len_field,
    snappy,
    varint,
)
from clearsight.model.samples import STALE_NAN, STALE_NAN_BITS, SampleBatch, stale_mask
from clearsight.pipeline.errors import InvalidInput, LimitExceeded, PayloadTooLarge, UnsupportedMediaType
from clearsight.pipeline.limits import WriteLimits

LIMITS = WriteLimits()
IMPLS = [pytest.param(False, id="pure"), pytest.param(True, id="native")]


def decode(
    body: bytes,
    native: bool,
    *,
    enc: str | None = "snappy",
    ctype: str | None = "application/x-protobuf",
    limits: WriteLimits = LIMITS,
) -> SampleBatch:
    return rw.decode_write_request(
        body, content_encoding=enc, content_type=ctype, limits=limits, native=native
    )


def test_native_extension_is_built() -> None:
    # CI builds it (pip install -e . compiles the Cython walk); the pure walk is only a fallback.
    assert rw.NATIVE_AVAILABLE


def sample_request() -> WriteRequest:
    return WriteRequest(
        timeseries=[
            TimeSeries(
                [("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                [(1_700_000_000_000, 1.0), (1_700_000_015_000, STALE_NAN)],
            ),
            TimeSeries(
                [("__name__", "temp"), ("room", "ü")],
                [(-5, float("inf")), (0, float("-inf")), (7, -0.0)],
                exemplars=[Exemplar([("trace_id", "abc")], 1.5, 9)],
            ),
            TimeSeries(
                [("__name__", "hist")], [], histograms=[Histogram(3, 1.5, -2, 10), Histogram(1, 0.0, 1, 11)]
            ),
        ],
        metadata=[Metadata(1, "up", "1 if up", ""), Metadata(2, "temp", "", "celsius"), Metadata(99, "odd")],
    )


@pytest.mark.parametrize("native", IMPLS)
def test_decodes_series_samples_metadata(native: bool) -> None:
    b = decode(encode_snappy(sample_request()), native)
    assert b.key_kind == "prompb"
    assert b.num_series == 3  # the histogram-only series too
    assert [b.decode_labels(k) for k in b.keys] == [
        (("__name__", "up"), ("job", "node"), ("instance", "a:9100")),
        (("__name__", "temp"), ("room", "ü")),
        (("__name__", "hist"),),
    ]
    assert b.keys[0] == encode_labels([("__name__", "up"), ("job", "node"), ("instance", "a:9100")])
    assert b.series_idx.dtype == np.int32 and b.timestamps.dtype == np.int64 and b.values.dtype == np.float64
    assert b.series_idx.tolist() == [0, 0, 1, 1, 1]
    assert b.timestamps.tolist() == [1_700_000_000_000, 1_700_000_015_000, -5, 0, 7]
    assert b.values[0] == 1.0 and b.values[2] == math.inf and b.values[3] == -math.inf
    assert math.copysign(1.0, b.values[4]) == -1.0
    assert stale_mask(b.values).tolist() == [False, True, False, False, False]
    assert [(m.metric, m.type, m.help, m.unit) for m in b.metadata] == [
        ("up", "counter", "1 if up", ""),
        ("temp", "gauge", "", "celsius"),
        ("odd", "unknown", "", ""),
    ]
    assert b.exemplars_dropped == 0
    (ex,) = b.exemplars
    assert (ex.series, ex.labels, ex.value, ex.ts) == ((("__name__", "temp"), ("room", "ü")), (("trace_id", "abc"),),
                                                       1.5, 9)
    assert b.histograms is not None and b.num_histograms == 2
    assert b.histograms.series_idx.tolist() == [2, 2] and b.histograms.timestamps.tolist() == [10, 11]
    assert [(h.schema, h.count, h.sum) for h in b.histograms.histograms] == [(-2, 3.0, 1.5), (1, 1.0, 0.0)]
    assert b.histograms_dropped == 0


@pytest.mark.parametrize("native", IMPLS)
def test_exemplar_only_series_are_read_and_unreadable_exemplars_dropped(native: bool) -> None:
    """Prometheus sends exemplars in TimeSeries of their own (labels + exemplars, no samples)."""
    good = Exemplar([("trace_id", "t1")], 0.5, 100)
    ok_series = encode_write_request(WriteRequest([
        TimeSeries([("__name__", "req_total"), ("job", "a")], [(100, 3.0)]),
        TimeSeries([("__name__", "req_total"), ("job", "a")], exemplars=[good, Exemplar([], -1.0, -7)]),
    ]))
    b = rw.batch_from_protobuf(ok_series, native=native)
    assert b.num_series == 1 and b.exemplars_dropped == 0
    assert [(e.series, e.labels, e.value, e.ts) for e in b.exemplars] == [
        ((("__name__", "req_total"), ("job", "a")), (("trace_id", "t1"),), 0.5, 100),
        ((("__name__", "req_total"), ("job", "a")), (), -1.0, -7),
    ]
    # An exemplar whose body is not a valid Exemplar, and one with a non-UTF-8 label: dropped and
    # counted; the samples of the request are still decoded.
    broken = len_field(1, encode_labels([("__name__", "x")]) + len_field(3, b"\x12\x01"))
    bad_utf8 = len_field(1, encode_labels([("__name__", "y")]) + len_field(3, encode_labels([(b"k", b"\xff")])))
    sample = len_field(1, encode_labels([("__name__", "z")]) + len_field(2, encode_sample_bits(1, 0)))
    b = rw.batch_from_protobuf(broken + bad_utf8 + sample, native=native)
    assert b.num_samples == 1 and b.exemplars == [] and b.exemplars_dropped == 2


@pytest.mark.parametrize("native", IMPLS)
def test_nan_payloads_are_bit_exact(native: bool) -> None:
    bits = [STALE_NAN_BITS, 0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001, 0x7FF8000000000000]
    ts = b"".join(len_field(2, encode_sample_bits(i, v)) for i, v in enumerate(bits))
    pb = len_field(1, encode_labels([("__name__", "x")]) + ts)
    b = decode(snappy(pb), native)
    assert b.values.view(np.uint64).tolist() == bits


@pytest.mark.parametrize("native", IMPLS)
def test_key_is_raw_label_bytes_even_when_labels_are_interleaved(native: bool) -> None:
    la = len_field(1, b"\x0a\x08__name__\x12\x01a")
    lb = len_field(1, b"\x0a\x01b\x12\x01c")
    sample = len_field(2, encode_sample_bits(5, 0))
    unknown = varint((9 << 3) | 0) + varint(300)
    pb = len_field(1, la + sample + unknown + lb)
    b = decode(snappy(pb), native)
    assert b.keys == [la + lb]
    assert b.decode_labels(b.keys[0]) == (("__name__", "a"), ("b", "c"))
    # the same labels in one run give the same key
    b2 = decode(snappy(len_field(1, la + lb + sample)), native)
    assert b2.keys == b.keys


@pytest.mark.parametrize("native", IMPLS)
def test_missing_fields_default_to_zero_and_last_scalar_wins(native: bool) -> None:
    empty_sample = len_field(2, b"")
    twice = len_field(2, encode_sample_bits(1, 0) + varint(2 << 3) + varint(42))
    pb = len_field(1, encode_labels([("__name__", "x")]) + empty_sample + twice)
    b = decode(snappy(pb), native)
    assert b.timestamps.tolist() == [0, 42]
    assert b.values.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("native", IMPLS)
def test_empty_write_request_is_an_empty_batch(native: bool) -> None:
    b = decode(snappy(b""), native)
    assert b.num_series == 0 and b.num_samples == 0 and b.metadata == []


@pytest.mark.parametrize("native", IMPLS)
def test_reserved_and_unknown_fields_are_skipped(native: bool) -> None:
    ts = encode_write_request(WriteRequest([TimeSeries([("__name__", "x")], [(1, 2.0)])]))
    extra = (
        len_field(2, b"cortex source")
        + varint((7 << 3) | 1)
        + b"\0" * 8
        + varint((8 << 3) | 5)
        + b"\0" * 4
        + varint((100000 << 3) | 0)
        + varint(1 << 63)
    )
    b = decode(snappy(extra + ts + extra), native)
    assert b.num_series == 1 and b.values.tolist() == [2.0]


# --- headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ctype",
    [
        None,
        "",
        "application/x-protobuf",
        "Application/X-Protobuf",
        "application/x-protobuf; proto=prometheus.WriteRequest",
        'application/x-protobuf;proto="prometheus.WriteRequest"',
    ],
)
def test_accepted_content_types(ctype: str | None) -> None:
    assert decode(snappy(b""), True, ctype=ctype).num_series == 0


def test_remote_write_2_is_rejected_with_415_and_a_clear_message() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"remote-write 2\.0.*implements remote-write 1\.0") as ei:
        decode(snappy(b""), True, ctype="application/x-protobuf;proto=io.prometheus.write.v2.Request")
    assert ei.value.status == 415


@pytest.mark.parametrize("ctype", ["application/json", "text/plain", "application/x-protobuf;proto=foo.Bar"])
def test_other_content_types_are_415(ctype: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=r"Content-Type|protobuf message"):
        decode(snappy(b""), True, ctype=ctype)


@pytest.mark.parametrize("enc", [None, "", "snappy", " SNAPPY "])
def test_accepted_encodings(enc: str | None) -> None:
    assert decode(snappy(b""), True, enc=enc).num_series == 0


@pytest.mark.parametrize("enc", ["gzip", "zstd", "identity", "x-snappy-framed"])
def test_other_encodings_are_415(enc: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding"):
        decode(snappy(b""), True, enc=enc)


def test_framed_snappy_body_is_rejected() -> None:
    framed = bytes(cramjam.snappy.compress(encode_write_request(sample_request())))
    with pytest.raises(InvalidInput, match="framed"):
        decode(framed, True)


@pytest.mark.parametrize(
    "body, match",
    [
        (b"", "empty request body"),
        (b"\xff\xff\xff\xff\xff\xff", "invalid uncompressed-length header"),
        (b"\x10abc", "corrupt snappy block data"),
        (b"\x05\x00", "corrupt snappy block data"),
    ],
)
def test_corrupt_snappy(body: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as ei:
        decode(body, True)
    assert ei.value.status == 400 and ei.value.reason == "invalid_snappy"


def test_compressed_size_limit() -> None:
    body = encode_snappy(sample_request())
    with pytest.raises(
        PayloadTooLarge, match=rf"{len(body)} bytes, over the limit of 10 bytes \(max_body_bytes\)"
    ):
        decode(body, True, limits=WriteLimits(max_body_bytes=10))
    assert decode(body, True, limits=WriteLimits(max_body_bytes=len(body))).num_series == 3


def test_decompressed_size_limit_is_checked_before_decompressing() -> None:
    pb = encode_write_request(sample_request())
    body = snappy(pb)
    with pytest.raises(PayloadTooLarge, match=rf"would be {len(pb)} bytes.*max_decompressed_bytes") as ei:
        decode(body, True, limits=WriteLimits(max_decompressed_bytes=len(pb) - 1))
    assert ei.value.status == 413
    # a header that declares 4 GiB is refused without allocating it
    with pytest.raises(PayloadTooLarge):
        decode(b"\xff\xff\xff\xff\x0f" + b"\0" * 10, True)
    assert decode(body, True, limits=WriteLimits(max_decompressed_bytes=len(pb))).num_series == 3


# --- protobuf errors: exact messages and offsets ----------------------------------------------------


def wr_err(pb: bytes, native: bool) -> str:
    with pytest.raises(InvalidInput) as ei:
        rw.batch_from_protobuf(pb, native=native)
    assert ei.value.reason == "invalid_protobuf"
    return ei.value.message


@pytest.mark.parametrize("native", IMPLS)
@pytest.mark.parametrize(
    "pb, message",
    [
        (b"\x0a", "truncated varint in WriteRequest.timeseries at byte 1"),
        (
            b"\x0a\x05\x0a",
            "truncated WriteRequest.timeseries: declared length 5 but only 1 bytes remain at byte 2",
        ),
        (b"\x20" + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes in WriteRequest at byte 1"),
        (b"\x00", "invalid field number 0 in WriteRequest at byte 0"),
        (b"\x0e", "invalid wire type 6 (field 1) in WriteRequest at byte 0"),
        (b"\x0b", "wrong wire type 3 for WriteRequest.timeseries (expected 2 (length-delimited)) at byte 0"),
        (b"\x13", "unsupported group wire type 3 (field 2) in WriteRequest at byte 0"),
        (b"\x20", "truncated varint in WriteRequest at byte 1"),
        (b"\x21\x00", "truncated WriteRequest: needs 8 bytes but only 1 remain at byte 1"),
        (
            b"\x80\x80\x80\x80\x80\x01",
            "invalid field tag 34359738368 (exceeds 32 bits) in WriteRequest at byte 0",
        ),
        (b"\x0a\x03\x12\x01\x0a", "wrong wire type 2 for Sample.value (expected 1 (fixed64)) at byte 4"),
        (b"\x0a\x04\x12\x02\x09\x00", "truncated Sample.value: needs 8 bytes but only 1 remain at byte 5"),
        (
            b"\x0a\x04\x12\x02\x11\x00",
            "wrong wire type 1 for Sample.timestamp (expected 0 (varint)) at byte 4",
        ),
        (
            b"\x0a\x04\x0a\x02\x0a\x05",
            "truncated Label.name: declared length 5 but only 0 bytes remain at byte 6",
        ),
        (
            b"\x0a\x04\x0a\x02\x08\x01",
            "wrong wire type 0 for Label.name (expected 2 (length-delimited)) at byte 4",
        ),
        (
            b"\x0a\x02\x08\x01",
            "wrong wire type 0 for TimeSeries.labels (expected 2 (length-delimited)) at byte 2",
        ),
        (
            b"\x0a\x02\x1d\x00",
            "wrong wire type 5 for TimeSeries.exemplars (expected 2 (length-delimited)) at byte 2",
        ),
        (b"\x1a\x02\x0a\x00", "wrong wire type 2 for MetricMetadata.type (expected 0 (varint)) at byte 2"),
        (
            b"\x1a\x02\x12\x05",
            "truncated MetricMetadata.metric_family_name: declared length 5 but only 0 bytes remain"
            " at byte 4",
        ),
    ],
)
def test_protobuf_errors(native: bool, pb: bytes, message: str) -> None:
    assert wr_err(pb, native) == f"invalid WriteRequest protobuf: {message}"


@pytest.mark.parametrize("native", IMPLS)
def test_invalid_utf8_is_reported_by_decode_labels(native: bool) -> None:
    pb = encode_write_request(
        WriteRequest([TimeSeries([("__name__", "x"), ("job", b"\xc3\x28")], [(1, 1.0)])])
    )
    b = rw.batch_from_protobuf(pb, native=native)
    with pytest.raises(InvalidInput, match=r'label value "\\xc3\(" is not valid UTF-8') as ei:
        b.decode_labels(b.keys[0])
    assert "is not valid UTF-8" in ei.value.message and '__name__="x"' in ei.value.message


@pytest.mark.parametrize("native", IMPLS)
def test_invalid_utf8_in_metadata(native: bool) -> None:
    pb = encode_write_request(WriteRequest([], [Metadata(1, b"a\xff")]))
    with pytest.raises(
        InvalidInput, match=r"invalid UTF-8 in MetricMetadata.metric_family_name .* at byte 2"
    ):
        rw.batch_from_protobuf(pb, native=native)


def test_extreme_timestamps_roundtrip() -> None:
    lo, hi = -(1 << 63), (1 << 63) - 1
    pb = encode_write_request(
        WriteRequest([TimeSeries([("__name__", "x")], [(lo, 1.0), (hi, 2.0), (-1, 3.0)])])
    )
    for native in (True, False):
        assert rw.batch_from_protobuf(pb, native=native).timestamps.tolist() == [lo, hi, -1]


def test_native_accepts_any_buffer() -> None:
    pb = encode_write_request(sample_request())
    a = rw.batch_from_protobuf(pb, native=True)
    b = rw.batch_from_protobuf(memoryview(bytearray(pb)), native=True)
    c = rw.batch_from_protobuf(cramjam.snappy.decompress_raw(snappy(pb)), native=True)
    assert a.keys == b.keys == c.keys
    assert a.values.view(np.uint64).tolist() == c.values.view(np.uint64).tolist()


def test_falls_back_to_pure_walk_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "clearsight.ingest._prompb", None)  # makes the import fail
    monkeypatch.delattr(clearsight.ingest, "_prompb")
    spec = importlib.util.spec_from_file_location("rw_without_native", rw.__file__)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    with caplog.at_level(logging.WARNING):
        spec.loader.exec_module(mod)
    assert mod.NATIVE_AVAILABLE is False
    assert any("pure-Python walk" in r.getMessage() for r in caplog.records)
    b = mod.decode_write_request(
        encode_snappy(sample_request()), content_encoding="snappy", content_type=None, limits=LIMITS
    )
    assert b.num_series == 3 and b.decode_labels(b.keys[1]) == (("__name__", "temp"), ("room", "ü"))


def test_many_series_grow_buffers() -> None:
    series = [
        TimeSeries([("__name__", f"m{i}"), ("i", str(i))], [(j, float(i * 10 + j)) for j in range(3)])
        for i in range(3000)
    ]
    pb = encode_write_request(WriteRequest(series))
    a = rw.batch_from_protobuf(pb, native=True)
    assert a.num_series == 3000 and a.num_samples == 9000
    assert a.values.tolist() == [float(i * 10 + j) for i in range(3000) for j in range(3)]
    assert a.series_idx.tolist() == [i for i in range(3000) for _ in range(3)]
    assert struct.pack("<d", a.values[-1]) == struct.pack("<d", 29992.0)


@pytest.mark.parametrize("native", IMPLS)
def test_series_and_sample_limits_stop_the_walk_early(native: bool) -> None:
    series = [TimeSeries([("__name__", f"m{i}")], [(1, 1.0), (2, 2.0)]) for i in range(5)]
    series.insert(2, TimeSeries([("__name__", "hist_only")], [], histograms=[Histogram()]))
    body = encode_snappy(WriteRequest(series))
    with pytest.raises(LimitExceeded, match=r"more than 10 samples, .*\(max_samples_per_request\)") as ei:
        decode(body, native, limits=WriteLimits(max_samples_per_request=10))
    assert ei.value.limit == "samples_per_request" and ei.value.status == 400
    with pytest.raises(LimitExceeded, match=r"more than 5 series, .*\(max_series_per_request\)") as ei:
        decode(body, native, limits=WriteLimits(max_series_per_request=5))
    assert ei.value.limit == "series_per_request"
    # exactly at the limits: accepted (a native histogram counts as a sample, its series as a series)
    b = decode(body, native, limits=WriteLimits(max_series_per_request=6, max_samples_per_request=11))
    assert b.num_series == 6 and b.num_samples == 10 and b.num_histograms == 1


def test_tiny_body_with_millions_of_empty_samples_is_refused_before_allocating() -> None:
    # 2 bytes per empty Sample: 4 MiB of protobuf would be 2M samples; snappy shrinks it to ~200 KB
    pb = len_field(1, encode_labels([("__name__", "x")]) + b"\x12\x00" * (2 * 1024 * 1024))
    body = snappy(pb)
    assert len(body) < len(pb) // 10
    with pytest.raises(LimitExceeded, match="max_samples_per_request"):
        decode(body, True, limits=WriteLimits(max_samples_per_request=100_000))
