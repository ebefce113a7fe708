"""Remote-write 2.0 decoder (ingest/remote_write2.py): payloads encoded from the specification's schema
(tests/support/rw2_encode.py) decode to what was encoded; malformed input is a precise 400."""

from __future__ import annotations

import math

import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import remote_write2 as rw2
from clearsight.ingest.prompb_encode import len_field, snappy, varint
from clearsight.model.samples import MetricMetadata, SampleBatch
from clearsight.pipeline.errors import InvalidInput, LimitExceeded, PayloadTooLarge, UnsupportedMediaType
from clearsight.pipeline.limits import WriteLimits
from tests.support.rw2_encode import CONTENT_TYPE, Series2, encode_request, encode_snappy_v2

LIMITS = WriteLimits()


def decode(body: bytes, limits: WriteLimits = LIMITS) -> SampleBatch:
    return rw2.decode_write_request_v2(body, content_encoding="snappy", content_type=CONTENT_TYPE, limits=limits)


def as_dict(b: SampleBatch) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for j in range(b.num_samples):
        key = b.decode_labels(b.keys[int(b.series_idx[j])])
        out.setdefault(key, []).append((int(b.timestamps[j]), float(b.values[j])))
    return out


def test_samples_labels_metadata_and_dropped_counts() -> None:
    body = encode_snappy_v2([
        Series2([("__name__", "http_requests_total"), ("job", "api")], [(1000, 1.0), (2000, 2.5)],
                exemplars=[([("trace_id", "abc")], 1.0, 1000)], metric_type="counter", help="Requests.",
                unit="requests", created_timestamp=500),
        Series2([("__name__", "temp"), ("room", "a")], [(-5, -1.25)], metric_type="gauge"),
        Series2([("__name__", "latency"), ("job", "api")], histograms=2, metric_type="histogram"),
        Series2([("__name__", "http_requests_total"), ("job", "api")], [(3000, 3.0)]),  # repeated series
    ])
    b = decode(body)
    assert as_dict(b) == {
        (("__name__", "http_requests_total"), ("job", "api")): [(1000, 1.0), (2000, 2.5), (3000, 3.0)],
        (("__name__", "temp"), ("room", "a")): [(-5, -1.25)],
    }
    assert b.num_series == 3  # the histogram-only series too
    assert b.histograms is not None and b.histograms.series_idx.tolist() == [2, 2]
    assert [(t, h.count, h.sum) for t, h in zip(b.histograms.timestamps.tolist(), b.histograms.histograms,
                                                 strict=True)] == [(1000, 1.0, 1.5), (1001, 2.0, 1.5)]
    assert b.exemplars_dropped == 0
    assert [(e.series, e.labels, e.value, e.ts) for e in b.exemplars] == [
        ((("__name__", "http_requests_total"), ("job", "api")), (("trace_id", "abc"),), 1.0, 1000)]
    assert b.key_kind == "rw2"
    assert b.metadata == [
        MetricMetadata("http_requests_total", "counter", "Requests.", "requests"),
        MetricMetadata("temp", "gauge", "", ""),
        MetricMetadata("latency", "histogram", "", ""),
    ]


def test_stale_nan_kept_bit_exact() -> None:
    stale = 0x7FF0000000000002
    raw = cramjam.snappy.compress_raw(
        len_field(4, b"") + len_field(4, b"__name__") + len_field(4, b"up")
        + len_field(5, len_field(1, b"\x01\x02") + len_field(2, b"\x09" + stale.to_bytes(8, "little") + b"\x10\x01")))
    b = decode(bytes(raw))
    assert math.isnan(b.values[0])
    assert int(b.values.view("uint64")[0]) == stale


def test_unpacked_label_refs_are_accepted() -> None:
    payload = (len_field(4, b"") + len_field(4, b"__name__") + len_field(4, b"up")
               + len_field(5, b"\x08\x01\x08\x02" + len_field(2, b"\x09" + b"\0" * 8 + b"\x10\x07")))
    assert as_dict(decode(snappy(payload))) == {(("__name__", "up"),): [(7, 0.0)]}


@pytest.mark.parametrize(("payload", "message"), [
    (len_field(4, b"x"), "symbols[0] must be the empty string at byte 0"),
    (len_field(4, b"") + len_field(4, b"\xff"), "invalid UTF-8 in Request.symbols[1]"),
    (len_field(4, b"") + len_field(5, len_field(1, b"\x00\x01\x00")), "odd length (3)"),
    (len_field(4, b"") + len_field(5, len_field(1, b"\x05\x00")), "holds 5, outside the symbols table of 1"),
    (len_field(4, b"") + len_field(4, b"v") + len_field(5, len_field(1, b"\x00\x01")), "empty symbol 0"),
    (len_field(4, b"") + len_field(5, len_field(2, b"\x09" + b"\0" * 8)), "without labels_refs"),
    (len_field(4, b"") + len_field(4, b"a") + len_field(5, len_field(1, b"\x01\x01") + b"\x10\x01"),
     "wrong wire type 0 for TimeSeries.samples"),
    (len_field(4, b"") + len_field(4, b"a") + len_field(5, len_field(1, b"\x01\x01") + len_field(2, b"\x08\x01")),
     "wrong wire type 0 for Sample.value"),
    (b"\x2a\x10\x0a", "truncated Request field 5: declared length 16 but only 1 bytes remain at byte 0"),
    (b"\x2b", "unsupported group wire type 3 (field 5) in Request at byte 0"),
    (b"\x80", "truncated varint in Request at byte 0"),
    (b"\x00", "invalid field number 0 in Request at byte 0"),
    (len_field(4, b"") + len_field(4, b"a") + len_field(5, len_field(1, b"\x01\x01") + len_field(5, b"\x18\x09")),
     "Metadata references symbol 9"),
])
def test_malformed_requests_are_400_with_the_reason(payload: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as ei:
        decode(snappy(payload))
    assert ei.value.status == 400
    assert message in ei.value.message
    assert ei.value.message.startswith("invalid io.prometheus.write.v2.Request protobuf: ")


def test_limits_and_transport_errors() -> None:
    body = encode_snappy_v2([Series2([("__name__", f"m{i}")], [(1, 1.0), (2, 2.0)]) for i in range(5)])
    with pytest.raises(LimitExceeded, match="more than 3 series"):
        decode(body, WriteLimits(max_series_per_request=3))
    with pytest.raises(LimitExceeded, match="more than 7 samples"):
        decode(body, WriteLimits(max_samples_per_request=7))
    with pytest.raises(PayloadTooLarge):
        decode(body, WriteLimits(max_decompressed_bytes=10))
    with pytest.raises(InvalidInput, match="snappy"):
        decode(b"not snappy")
    with pytest.raises(UnsupportedMediaType):
        rw2.decode_write_request_v2(body, content_encoding="gzip", content_type=CONTENT_TYPE, limits=LIMITS)
    with pytest.raises(UnsupportedMediaType):
        rw2.decode_write_request_v2(body, content_encoding="snappy", content_type="application/x-protobuf",
                                    limits=LIMITS)


@pytest.mark.parametrize(("ctype", "v2"), [
    (CONTENT_TYPE, True), ('application/x-protobuf; proto="io.prometheus.write.v2.Request"', True),
    ("APPLICATION/X-PROTOBUF;PROTO=IO.PROMETHEUS.WRITE.V2.REQUEST", True), ("application/x-protobuf", False),
    ("application/x-protobuf;proto=prometheus.WriteRequest", False), (None, False), ("text/plain", False),
])
def test_content_type_dispatch(ctype: str | None, v2: bool) -> None:
    assert rw2.is_v2_content_type(ctype) is v2


# --- fuzzing -------------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
values = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
series = st.builds(
    Series2,
    labels=st.lists(st.tuples(names, values), min_size=1, max_size=4),
    samples=st.lists(st.tuples(st.integers(-(1 << 63), (1 << 63) - 1),
                               st.floats(allow_nan=False)), max_size=4),
    histograms=st.integers(0, 2),
    metric_type=st.one_of(st.none(), st.sampled_from(["counter", "gauge", "summary"])),
)


@FUZZ
@given(st.lists(series, max_size=6))
def test_roundtrip(req: list[Series2]) -> None:
    b = decode(encode_snappy_v2(req))
    expected: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for s in req:
        if s.samples:
            expected.setdefault(tuple(s.labels), []).extend(s.samples)
    assert as_dict(b) == expected
    assert b.num_histograms == sum(s.histograms for s in req)


@FUZZ
@given(st.lists(series, min_size=1, max_size=4), st.data())
def test_mutated_bytes_only_raise_invalid_input(req: list[Series2], data: st.DataObject) -> None:
    raw = bytearray(encode_request(req))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[pos:]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
    try:
        b = decode(snappy(bytes(raw)))
    except InvalidInput as e:
        assert e.status == 400
        assert "at byte" in e.message or "UTF-8" in e.message
        return
    # a mutation that stays well-formed decodes to columns of equal length
    assert len(b.timestamps) == len(b.values) == len(b.series_idx)
    for key in b.keys:
        assert all(n for n, _ in b.decode_labels(key))


@FUZZ
@given(st.binary(max_size=200))
def test_garbage_only_raises_documented_errors(raw: bytes) -> None:
    try:
        decode(snappy(raw))
    except InvalidInput as e:
        assert e.status == 400
    try:
        decode(raw)
    except (InvalidInput, PayloadTooLarge) as e:
        assert e.status in (400, 413)


def test_varint_helper_matches_encoder() -> None:
    payload = len_field(4, b"") + len_field(4, b"n") + len_field(4, b"v") + len_field(
        5, len_field(1, b"\x01\x02") + len_field(2, b"\x10" + varint((-1) & 0xFFFFFFFFFFFFFFFF)))
    assert as_dict(decode(snappy(payload))) == {(("n", "v"),): [(-1, 0.0)]}
