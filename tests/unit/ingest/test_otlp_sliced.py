"""Large OTLP bodies (ingest/otlp_metrics.py, shallow parse + sliced points): decoded exactly like the
one-parse path, and no single protobuf parse (which holds the GIL) gets more than ``_SLICE_ABOVE``
bytes of data points; millions of tiny points fail the point limit before any of them is parsed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from clearsight.ingest import otlp_metrics
from clearsight.ingest.otlp_metrics import DecodedMetrics, convert_protobuf
from clearsight.pipeline.errors import IngestError, LimitExceeded
from clearsight.pipeline.limits import WriteLimits

LIMITS = WriteLimits()
T = 1_700_000_000_000_000_000


def decode(data: bytes, slice_above: int, monkeypatch: pytest.MonkeyPatch) -> DecodedMetrics | str:
    monkeypatch.setattr(otlp_metrics, "_SLICE_ABOVE", slice_above)
    try:
        return convert_protobuf(data, limits=LIMITS, now_ms=1000)
    except IngestError as e:
        return f"{e.status} {type(e).__name__}: {e.message}"


def same(a: DecodedMetrics | str, b: DecodedMetrics | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert a.batch.keys == b.batch.keys
    assert a.batch.series_idx.tolist() == b.batch.series_idx.tolist()
    assert a.batch.timestamps.tolist() == b.batch.timestamps.tolist()
    assert a.batch.values.view(np.uint64).tolist() == b.batch.values.view(np.uint64).tolist()  # NaN bits too
    assert a.batch.metadata == b.batch.metadata
    assert (a.rejected_points, a.messages) == (b.rejected_points, b.messages)
    assert (a.batch.exemplars_dropped, a.batch.histograms_dropped) == (b.batch.exemplars_dropped,
                                                                        b.batch.histograms_dropped)


def request(kinds: list[str], n_points: int, temporality: int = 2) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "svc"
    sm = rm.scope_metrics.add()
    sm.scope.name = "lib"
    for mi, kind in enumerate(kinds):
        m = sm.metrics.add(name=f"m{mi}", unit="s")
        for i in range(n_points):
            if kind in ("gauge", "sum"):
                container = m.gauge if kind == "gauge" else m.sum
                p = container.data_points.add(time_unix_nano=T + i * 1_000_000)
                if i % 3 == 0:
                    p.as_int = i
                elif i % 3 == 1:
                    p.as_double = i / 7
                if i % 5 == 0:
                    p.exemplars.add(as_double=1.0)
                if i % 11 == 0:
                    p.flags = 1
            elif kind == "histogram":
                p = m.histogram.data_points.add(time_unix_nano=T + i, count=6, sum=1.5)
                p.explicit_bounds.extend([0.5, 1.0])
                p.bucket_counts.extend([1, 2, 3])
            elif kind == "exponential_histogram":
                p = m.exponential_histogram.data_points.add(time_unix_nano=T + i, count=3, scale=1, zero_count=1)
                p.positive.offset = 1
                p.positive.bucket_counts.extend([1, 1])
            else:
                p = m.summary.data_points.add(time_unix_nano=T + i, count=4, sum=2.0)
                p.quantile_values.add(quantile=0.5, value=1.0)
            p.attributes.add(key="i").value.int_value = i % 13
        if kind == "sum":
            m.sum.aggregation_temporality = temporality
            m.sum.is_monotonic = True
        elif kind == "histogram":
            m.histogram.aggregation_temporality = temporality
        elif kind == "exponential_histogram":
            m.exponential_histogram.aggregation_temporality = temporality
    return req.SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


KINDS = ["gauge", "sum", "histogram", "exponential_histogram", "summary"]


@pytest.mark.parametrize("slice_above", [0, 1, 40, 300, 5000])
@pytest.mark.parametrize("temporality", [2, 1])
def test_sliced_decoding_equals_one_parse(slice_above: int, temporality: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = request(KINDS, 40, temporality)
    same(decode(data, slice_above, monkeypatch), decode(data, 1 << 40, monkeypatch))


def _temporality_after_points() -> bytes:
    """The Sum's temporality and monotonic flag on the wire after (and between) its points."""
    pts = b"".join(b"\x0a" + bytes([len(p)]) + p for p in (
        metrics_pb2.NumberDataPoint(time_unix_nano=T + i, as_double=float(i)).SerializeToString() for i in range(30)))
    assert len(pts) == 30 * 20  # 20 bytes a point: the cut below falls between points
    sum_blob = pts[:60] + b"\x10\x01" + pts[60:] + b"\x10\x02\x18\x01"  # delta, then cumulative + monotonic
    metric = b"\x0a\x01m" + b"\x3a" + _varint(len(sum_blob)) + sum_blob
    sm = b"\x12" + _varint(len(metric)) + metric
    rm = b"\x12" + _varint(len(sm)) + sm
    return b"\x0a" + _varint(len(rm)) + rm


@pytest.mark.parametrize("slice_above", [0, 50, 200])
def test_fields_among_the_points_keep_last_value_wins(slice_above: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _temporality_after_points()
    got = decode(data, slice_above, monkeypatch)
    same(got, decode(data, 1 << 40, monkeypatch))
    assert not isinstance(got, str) and got.batch.num_samples == 30


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4), st.integers(1, 25), st.integers(0, 400),
       st.sampled_from([0, 1, 2]), st.data())
def test_sliced_equals_one_parse_random(kinds: list[str], n: int, slice_above: int, temporality: int,
                                        data: st.DataObject) -> None:
    body = bytearray(request(kinds, n, temporality))
    if data.draw(st.booleans()):  # through JSON: json_to_wire writes each metric's data in two occurrences
        from google.protobuf import json_format

        from clearsight.ingest.otlp_json import json_to_wire

        body = bytearray(json_to_wire(json_format.MessageToJson(
            ExportMetricsServiceRequest.FromString(bytes(body))).encode()))
    if data.draw(st.booleans()):  # damage a byte: both paths must agree on the result or the error kind
        pos = data.draw(st.integers(0, len(body) - 1))
        body[pos] = data.draw(st.integers(0, 255))
    mp = pytest.MonkeyPatch()
    try:
        a = decode(bytes(body), slice_above, mp)
        b = decode(bytes(body), 1 << 40, mp)
    finally:
        mp.undo()
    if isinstance(a, str) and isinstance(b, str):
        # both refused with the same status (which fault of a damaged body is reported first may differ)
        assert a.split()[0] == b.split()[0]
    else:
        same(a, b)


def test_millions_of_tiny_points_fail_before_any_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    original = otlp_metrics._parse_container

    def spy(container: Any, data: bytes) -> Any:
        sizes.append(len(data))
        return original(container, data)

    monkeypatch.setattr(otlp_metrics, "_parse_container", spy)
    gauge = b"\x0a\x00" * 3_000_000
    metric = b"\x0a\x01g" + b"\x2a" + _varint(len(gauge)) + gauge
    sm = b"\x12" + _varint(len(metric)) + metric
    rm = b"\x12" + _varint(len(sm)) + sm
    data = b"\x0a" + _varint(len(rm)) + rm
    with pytest.raises(LimitExceeded) as e:
        convert_protobuf(data, limits=LIMITS, now_ms=0)
    assert "more than 2000000 data points" in e.value.message
    assert sorted(sizes) == [0, 3]  # only the metric's name field and the (empty) rest of its Gauge


def test_no_parse_gets_more_than_a_slice_of_points(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    original = otlp_metrics._parse_container

    def spy(container: Any, data: bytes) -> Any:
        sizes.append(len(data))
        return original(container, data)

    monkeypatch.setattr(otlp_metrics, "_parse_container", spy)
    monkeypatch.setattr(otlp_metrics, "_SLICE_ABOVE", 2000)
    data = request(["gauge", "histogram"], 400)
    assert len(data) > 2000
    res = convert_protobuf(data, limits=LIMITS, now_ms=0)
    assert res.batch.num_samples > 400
    assert max(sizes) <= 2000  # a slice ends before the point that would take it past the bound
    assert len(sizes) > 4


def _metric_wire(name: bytes, data_fields: list[tuple[int, bytes]]) -> bytes:
    out = b"\x0a" + _varint(len(name)) + name
    for number, payload in data_fields:
        out += _varint(number << 3 | 2) + _varint(len(payload)) + payload
    return out


def _wrap_metrics(metrics: list[bytes]) -> bytes:
    sm = b"".join(b"\x12" + _varint(len(m)) + m for m in metrics)
    rm = b"\x12" + _varint(len(sm)) + sm
    return b"\x0a" + _varint(len(rm)) + rm


def _points_blob(n: int) -> bytes:
    return b"".join(b"\x0a" + _varint(len(p)) + p for p in (
        metrics_pb2.NumberDataPoint(time_unix_nano=T + i, as_double=float(i)).SerializeToString() for i in range(n)))


@pytest.mark.parametrize("slice_above", [0, 30, 100, 1000, 1 << 20])
def test_repeated_and_switched_data_fields_follow_protobuf_merge_rules(
        slice_above: int, monkeypatch: pytest.MonkeyPatch) -> None:
    pts = _points_blob(12)
    sum_head = b"\x10\x02\x18\x01"  # cumulative, monotonic
    metrics = [
        # a Sum in two occurrences (temporality first, points after: what json_to_wire writes)
        _metric_wire(b"split", [(7, sum_head), (7, pts)]),
        # a gauge, then a sum: the sum wins (oneof), the gauge's points are gone
        _metric_wire(b"switched", [(5, pts), (7, sum_head + pts[:40])]),
        # sum, gauge, sum again: only the last sum occurrence counts
        _metric_wire(b"back", [(7, sum_head + pts), (5, pts), (7, sum_head + pts[:20])]),
    ]
    data = _wrap_metrics(metrics)
    got = decode(data, slice_above, monkeypatch)
    same(got, decode(data, 1 << 40, monkeypatch))
    assert not isinstance(got, str) and got.batch.num_samples == 12 + 2 + 1


def test_large_json_request_decodes_like_one_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """json_to_wire writes a metric's data in two occurrences: the sliced path must merge them."""
    import json

    from clearsight.ingest.otlp_json import json_to_wire

    doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": f"m{j}", "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
            {"asInt": str(i), "timeUnixNano": str(T + i), "attributes": [{"key": "i", "value": {"intValue": i}}]}
            for i in range(300)]}} for j in range(3)]}]}]}
    data = json_to_wire(json.dumps(doc).encode())
    for slice_above in (0, 500, 5000):
        got = decode(data, slice_above, monkeypatch)
        same(got, decode(data, 1 << 40, monkeypatch))
        assert not isinstance(got, str) and got.batch.num_samples == 900
