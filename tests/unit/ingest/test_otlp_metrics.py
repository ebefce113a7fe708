"""OTLP metrics -> Prometheus data model (ingest/otlp_metrics.py)."""

from __future__ import annotations

import gzip
import json
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

from clearsight.ingest.otlp_common import OtlpInvalidInput, any_value_to_str, format_float
from clearsight.ingest.otlp_metrics import (
    DecodedMetrics,
    OtlpOptions,
    decode_otlp_metrics,
    decode_otlp_metrics_report,
    prometheus_metric_name,
    prometheus_unit,
    sanitize_label_name,
)
from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.samples import SampleBatch, canonical_key, is_stale_nan
from clearsight.pipeline.errors import (
    IngestError,
    InvalidInput,
    LimitExceeded,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from clearsight.pipeline.limits import WriteLimits

PB = "application/x-protobuf"
JS = "application/json"
LIMITS = WriteLimits()
NOW_MS = 1_700_000_000_000
T_NS = 1_544_712_660_300_000_000  # the conformance example's timestamp
T_MS = 1_544_712_660_300
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA


def shared_dir() -> Path:
    env = os.environ.get("CLEARSIGHT_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "shared"


EXAMPLE = shared_dir() / "conformance" / "otlp" / "metrics.json"


# --- helpers -----------------------------------------------------------------------------------


def kv(key: str, value: Any) -> common_pb2.KeyValue:
    out = common_pb2.KeyValue(key=key)
    if isinstance(value, bool):
        out.value.bool_value = value
    elif isinstance(value, int):
        out.value.int_value = value
    elif isinstance(value, float):
        out.value.double_value = value
    elif isinstance(value, bytes):
        out.value.bytes_value = value
    else:
        out.value.string_value = value
    return out


def request(
    metrics: list[metrics_pb2.Metric],
    resource: dict[str, Any] | None = None,
    scope: tuple[str, str] = ("", ""),
) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    for k, v in (resource or {}).items():
        rm.resource.attributes.append(kv(k, v))
    sm = rm.scope_metrics.add()
    sm.scope.name, sm.scope.version = scope
    sm.metrics.extend(metrics)
    return req


def gauge(
    name: str, points: list[tuple[dict[str, Any], float | int]], unit: str = "", t_ns: int = T_NS
) -> metrics_pb2.Metric:
    m = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    for attrs, v in points:
        p = m.gauge.data_points.add(time_unix_nano=t_ns)
        p.attributes.extend(kv(k, a) for k, a in attrs.items())
        if isinstance(v, int):
            p.as_int = v
        else:
            p.as_double = v
    return m


def counter(
    name: str,
    points: list[tuple[dict[str, Any], float]],
    unit: str = "",
    monotonic: bool = True,
    temporality: int = CUMULATIVE,
) -> metrics_pb2.Metric:
    m = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    m.sum.is_monotonic = monotonic
    m.sum.aggregation_temporality = temporality  # type: ignore[assignment]
    for attrs, v in points:
        p = m.sum.data_points.add(time_unix_nano=T_NS, start_time_unix_nano=T_NS - 10**9, as_double=v)
        p.attributes.extend(kv(k, a) for k, a in attrs.items())
    return m


def histogram(
    name: str,
    bounds: list[float],
    counts: list[int],
    total: int,
    sum_: float | None,
    unit: str = "",
    attrs: dict[str, Any] | None = None,
    flags: int = 0,
    temporality: int = CUMULATIVE,
) -> metrics_pb2.Metric:
    m = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    m.histogram.aggregation_temporality = temporality  # type: ignore[assignment]
    p = m.histogram.data_points.add(time_unix_nano=T_NS, count=total, flags=flags)
    p.explicit_bounds.extend(bounds)
    p.bucket_counts.extend(counts)
    if sum_ is not None:
        p.sum = sum_
    p.attributes.extend(kv(k, a) for k, a in (attrs or {}).items())
    return m


def decode(
    req: ExportMetricsServiceRequest, options: OtlpOptions | None = None, limits: WriteLimits = LIMITS
) -> DecodedMetrics:
    return decode_otlp_metrics_report(
        req.SerializeToString(),
        content_type=PB,
        limits=limits,
        now_ms=NOW_MS,
        options=options or OtlpOptions(),
    )


def series(batch: SampleBatch) -> dict[Labels, list[tuple[int, float]]]:
    """{sorted labels: [(ts, value), ...]} of a batch, for exact assertions."""
    out: dict[Labels, list[tuple[int, float]]] = {}
    for i, key in enumerate(batch.keys):
        labels = tuple(sorted(batch.decode_labels(key)))
        mask = batch.series_idx == i
        out[labels] = [
            (int(t), float(v)) for t, v in zip(batch.timestamps[mask], batch.values[mask], strict=True)
        ]
    return out


def L(**kw: str) -> Labels:
    return tuple(sorted(kw.items()))


def lbl(name: str, **kw: str) -> Labels:
    return tuple(sorted({"__name__": name, **kw}.items()))


def example_json(cumulative: bool) -> bytes:
    doc = json.loads(EXAMPLE.read_bytes())
    if cumulative:
        for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
            for k in ("sum", "histogram", "exponentialHistogram"):
                if k in m:
                    m[k]["aggregationTemporality"] = 2
    return json.dumps(doc).encode()


# --- the shared conformance example ------------------------------------------------------------


def test_conformance_example_keeps_the_cumulative_gauge_and_rejects_the_delta_metrics() -> None:
    rep = decode_otlp_metrics_report(EXAMPLE.read_bytes(), content_type=JS, limits=LIMITS, now_ms=NOW_MS)
    names = {dict(rep.batch.decode_labels(k))["__name__"] for k in rep.batch.keys}
    assert names == {"my_gauge_ratio"}  # unit "1" -> _ratio; the example's counter and both histograms are delta
    assert rep.rejected_points == 3
    msg = rep.error_message()
    assert "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality" in msg
    assert "'my.counter'" in msg and "'my.histogram'" in msg and "'my.exponential.histogram'" in msg
    assert "delta temporality" in msg and "cumulative" in msg


def test_conformance_example_with_cumulative_temporality_maps_exactly() -> None:
    rep = decode_otlp_metrics_report(
        example_json(cumulative=True), content_type=JS, limits=LIMITS, now_ms=NOW_MS
    )
    scope = {"job": "my.service", "otel_scope_name": "my.library", "otel_scope_version": "1.0.0"}
    h = {**scope, "my_histogram_attr": "some value"}
    e = {**scope, "my_exponential_histogram_attr": "some value"}
    assert series(rep.batch) == {
        lbl("my_counter_total", my_counter_attr="some value", **scope): [(T_MS, 5.0)],
        lbl("my_gauge_ratio", my_gauge_attr="some value", **scope): [(T_MS, 10.0)],
        lbl("my_histogram_bucket", le="1", **h): [(T_MS, 1.0)],
        lbl("my_histogram_bucket", le="+Inf", **h): [(T_MS, 2.0)],
        lbl("my_histogram_count", **h): [(T_MS, 2.0)],
        lbl("my_histogram_sum", **h): [(T_MS, 2.0)],
        lbl("my_exponential_histogram", **e): [],  # its sample is a native histogram
    }
    # The exponential histogram is a native histogram: scale 0, zeroCount 1, positive offset 1
    # counts [0, 2]: Prometheus bucket 3 = (4, 8] holds 2 (the empty bucket is left out).
    hs = rep.batch.histograms
    assert hs is not None and hs.timestamps.tolist() == [T_MS]
    assert [rep.batch.decode_labels(rep.batch.keys[i]) for i in hs.series_idx.tolist()] == [
        lbl("my_exponential_histogram", **e)]
    (nh,) = hs.histograms
    assert (nh.schema, nh.count, nh.sum, nh.zero_count, nh.zero_threshold) == (0, 3.0, 10.0, 1.0, 0.0)
    assert nh.positive_index.tolist() == [3] and nh.positive.tolist() == [2.0] and nh.negative.size == 0
    assert rep.batch.histograms_dropped == 0 and rep.rejected_points == 0
    meta = {(m.metric, m.type, m.help, m.unit) for m in rep.batch.metadata}
    assert meta == {
        ("my_counter_total", "counter", "I am a Counter", ""),
        ("my_gauge_ratio", "gauge", "I am a Gauge", "ratio"),
        ("my_exponential_histogram", "histogram", "I am an Exponential Histogram", ""),
        ("my_histogram", "histogram", "I am a Histogram", ""),
    }


def test_json_and_protobuf_and_gzip_decode_identically() -> None:
    from google.protobuf import json_format

    msg = json_format.Parse(example_json(cumulative=True), ExportMetricsServiceRequest())
    pb = msg.SerializeToString()
    js = example_json(cumulative=True)
    a = decode_otlp_metrics(js, content_type=JS, limits=LIMITS, now_ms=NOW_MS)
    b = decode_otlp_metrics(pb, content_type=PB, limits=LIMITS, now_ms=NOW_MS)
    c = decode_otlp_metrics(
        gzip.compress(pb), content_type=PB, limits=LIMITS, now_ms=NOW_MS, content_encoding="gzip"
    )
    d = decode_otlp_metrics(
        gzip.compress(js),
        content_type="application/json; charset=utf-8",
        limits=LIMITS,
        now_ms=NOW_MS,
        content_encoding="GZIP",
    )
    e = decode_otlp_metrics(
        zlib.compress(pb), content_type=PB, limits=LIMITS, now_ms=NOW_MS, content_encoding="deflate"
    )
    assert series(a) == series(b) == series(c) == series(d) == series(e)
    assert a.keys == b.keys


# --- batch shape -------------------------------------------------------------------------------


def test_batch_columns_and_canonical_keys() -> None:
    req = request([gauge("g", [({"b": "2", "a": "1"}, 1.5), ({"a": "x"}, 2)])])
    batch = decode(req).batch
    assert batch.key_kind == "canon"
    assert batch.series_idx.dtype == np.int32
    assert batch.timestamps.dtype == np.int64
    assert batch.values.dtype == np.float64
    assert batch.num_samples == 2 and batch.num_series == 2
    # Keys are the same bytes SampleBatch.from_series produces for the same label sets.
    expected = SampleBatch.from_series([(lbl("g", a="1", b="2"), []), (lbl("g", a="x"), [])])
    assert batch.keys == expected.keys
    assert batch.keys[0] == canonical_key(lbl("g", a="1", b="2"))
    assert batch.decode_labels(batch.keys[0]) == lbl("g", a="1", b="2")
    assert batch.values.tolist() == [1.5, 2.0]


def test_same_series_twice_in_one_request_shares_a_key() -> None:
    m1 = gauge("g", [({"a": "1"}, 1.0)], t_ns=T_NS)
    m2 = gauge("g", [({"a": "1"}, 2.0)], t_ns=T_NS + 15 * 10**9)
    batch = decode(request([m1, m2])).batch
    assert batch.num_series == 1
    assert series(batch) == {lbl("g", a="1"): [(T_MS, 1.0), (T_MS + 15000, 2.0)]}


def test_empty_request_gives_empty_batch() -> None:
    rep = decode_otlp_metrics_report(b"", content_type=PB, limits=LIMITS, now_ms=NOW_MS)
    assert rep.batch.num_samples == 0 and rep.rejected_points == 0
    rep = decode_otlp_metrics_report(b"{}", content_type=JS, limits=LIMITS, now_ms=NOW_MS)
    assert rep.batch.num_samples == 0


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unit", "kind", "want"),
    [
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("system.memory.usage", "By", "gauge", "system_memory_usage_bytes"),
        ("system.network.packets", "{packets}", "counter", "system_network_packets_total"),
        ("http.server.active_requests", "{request}", "gauge", "http_server_active_requests"),
        ("requests", "1", "counter", "requests_total"),
        ("cpu.utilization", "1", "gauge", "cpu_utilization_ratio"),
        ("queue.fill", "1", "updown", "queue_fill_ratio"),
        ("latency", "1", "histogram", "latency"),
        ("foo_total", "", "counter", "foo_total"),
        ("foo_seconds_total", "s", "counter", "foo_seconds_total"),
        ("foo_total", "s", "counter", "foo_seconds_total"),
        ("foo_total", "", "gauge", "foo_total"),
        ("network.io", "By/s", "gauge", "network_io_bytes_per_second"),
        ("events", "1/s", "gauge", "events_per_second"),
        ("events", "{event}/min", "gauge", "events_per_minute"),
        ("seconds_before_birthday", "s", "gauge", "seconds_before_birthday_seconds"),
        ("process.runtime.memory_bytes", "By", "gauge", "process_runtime_memory_bytes"),
        ("temp", "Cel", "gauge", "temp_celsius"),
        ("dist", "km", "gauge", "dist_km"),
        ("9lives", "", "gauge", "_9lives"),
        ("a..b--c", "", "gauge", "a_b_c"),
        ("ns:metric.x", "ms", "gauge", "ns:metric_x_milliseconds"),
        ("héllo wörld", "", "gauge", "h_llo_w_rld"),
    ],
)
def test_metric_name_normalization(name: str, unit: str, kind: str, want: str) -> None:
    got, _ = prometheus_metric_name(name, unit, counter=kind == "counter", gauge=kind in ("gauge", "updown"))
    assert got == want


def test_name_suffix_options() -> None:
    assert prometheus_metric_name("x", "s", counter=True, gauge=False, unit_suffixes=False)[0] == "x_total"
    assert prometheus_metric_name("x", "s", counter=True, gauge=False, total_suffix=False)[0] == "x_seconds"
    assert (
        prometheus_metric_name("x_total", "", counter=True, gauge=False, total_suffix=False)[0] == "x_total"
    )


@pytest.mark.parametrize(
    ("unit", "gauge", "want"),
    [
        ("s", False, "seconds"),
        ("ms", True, "milliseconds"),
        ("By", True, "bytes"),
        ("1", True, "ratio"),
        ("1", False, ""),
        ("{packet}", True, ""),
        ("%", True, "percent"),
        ("By/s", True, "bytes_per_second"),
        ("", True, ""),
        ("{req}/s", False, "per_second"),
        ("m/s", True, "meters_per_second"),
    ],
)
def test_unit_words(unit: str, gauge: bool, want: str) -> None:
    assert prometheus_unit(unit, gauge) == want


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("http.method", "http_method"),
        ("a__b", "a_b"),
        ("__name__", "_name_"),
        ("2xx", "_2xx"),
        ("ok_Name9", "ok_Name9"),
        ("ü", "_"),
        ("", ""),
    ],
)
def test_label_name_sanitization(key: str, want: str) -> None:
    assert sanitize_label_name(key) == want


# --- labels ------------------------------------------------------------------------------------


def test_colliding_attribute_names_join_values_in_original_key_order() -> None:
    req = request([gauge("g", [({"a_b": "2", "a.b": "1", "a-b": "3", "c": ""}, 1.0)])])
    (labels,) = series(decode(req).batch)
    # '-' (0x2d) < '.' (0x2e) < '_' (0x5f); empty values are absent labels.
    assert labels == lbl("g", a_b="3;1;2")


def test_attribute_value_types() -> None:
    arr = common_pb2.KeyValue(key="arr")
    arr.value.array_value.values.add(string_value="x")
    arr.value.array_value.values.add(int_value=2)
    kvl = common_pb2.KeyValue(key="map")
    kvl.value.kvlist_value.values.add(key="k").value.bool_value = True
    m = gauge("g", [({"b": True, "i": -7, "d": 0.25, "whole": 3.0, "by": b"\x00\x01", "nan": math.nan}, 1.0)])
    m.gauge.data_points[0].attributes.extend([arr, kvl])
    (labels,) = series(decode(request([m])).batch)
    assert dict(labels) == {
        "__name__": "g",
        "b": "true",
        "i": "-7",
        "d": "0.25",
        "whole": "3",
        "by": "AAE=",
        "nan": "NaN",
        "arr": '["x",2]',
        "map": '{"k":true}',
    }


def test_any_value_unset_is_empty() -> None:
    assert any_value_to_str(common_pb2.AnyValue()) == ""
    assert any_value_to_str(common_pb2.AnyValue(double_value=math.inf)) == "Infinity"


def test_resource_to_job_instance_and_target_info() -> None:
    res = {
        "service.name": "api",
        "service.namespace": "shop",
        "service.instance.id": "pod-1",
        "host.name": "h1",
        "k8s.pod.name": "p",
    }
    m1 = gauge("g", [({"job": "from-point", "a": "1"}, 1.0)], t_ns=T_NS)
    m2 = gauge("h", [({}, 2.0)], t_ns=T_NS + 5 * 10**9)
    rep = decode(request([m1, m2], resource=res, scope=("lib", "2.1")))
    sc = {"otel_scope_name": "lib", "otel_scope_version": "2.1"}
    assert series(rep.batch) == {
        lbl("g", job="shop/api", instance="pod-1", a="1", **sc): [(T_MS, 1.0)],
        lbl("h", job="shop/api", instance="pod-1", **sc): [(T_MS + 5000, 2.0)],
        lbl("target_info", job="shop/api", instance="pod-1", host_name="h1", k8s_pod_name="p"): [
            (T_MS + 5000, 1.0)
        ],
    }
    assert any(m.metric == "target_info" and m.type == "gauge" for m in rep.batch.metadata)


def test_no_target_info_without_other_resource_attributes_or_when_disabled() -> None:
    m = gauge("g", [({}, 1.0)])
    names = {dict(s)["__name__"] for s in series(decode(request([m], {"service.name": "a"})).batch)}
    assert names == {"g"}
    opts = OtlpOptions(target_info=False, scope_labels=False)
    got = series(decode(request([m], {"service.name": "a", "x": "y"}, ("lib", "1")), opts).batch)
    assert got == {lbl("g", job="a"): [(T_MS, 1.0)]}


def test_job_without_namespace_and_no_job_without_service_name() -> None:
    m = gauge("g", [({}, 1.0)])
    assert set(series(decode(request([m], {"service.name": "svc"})).batch)) == {lbl("g", job="svc")}
    got = set(series(decode(request([m], {"service.namespace": "ns", "service.instance.id": "i"})).batch))
    assert got == {lbl("g", instance="i")}


def test_two_resources_with_the_same_target_share_one_target_info_key() -> None:
    req = request([gauge("g", [({}, 1.0)])], {"service.name": "a", "x": "1"})
    req.resource_metrics.append(
        request([gauge("h", [({}, 2.0)])], {"service.name": "a", "x": "1"}).resource_metrics[0]
    )
    batch = decode(req).batch
    assert [dict(batch.decode_labels(k))["__name__"] for k in batch.keys].count("target_info") == 1


# --- types -------------------------------------------------------------------------------------


def test_sums() -> None:
    rep = decode(
        request(
            [
                counter("http.requests", [({"code": "200"}, 7.0)], unit="{request}"),
                counter("queue.size", [({}, -3.0)], unit="{item}", monotonic=False),
                counter("mem.used", [({}, 4096.0)], unit="By", monotonic=False),
            ]
        )
    )
    assert series(rep.batch) == {
        lbl("http_requests_total", code="200"): [(T_MS, 7.0)],
        lbl("queue_size"): [(T_MS, -3.0)],
        lbl("mem_used_bytes"): [(T_MS, 4096.0)],
    }
    assert {(m.metric, m.type, m.unit) for m in rep.batch.metadata} == {
        ("http_requests_total", "counter", ""),
        ("queue_size", "gauge", ""),
        ("mem_used_bytes", "gauge", "bytes"),
    }


def test_int_gauge_and_special_float_values() -> None:
    m = gauge("g", [({"k": "int"}, 2**53 + 1), ({"k": "nan"}, math.nan), ({"k": "inf"}, -math.inf)])
    got = series(decode(request([m])).batch)
    assert got[lbl("g", k="int")] == [(T_MS, float(2**53 + 1))]
    assert math.isnan(got[lbl("g", k="nan")][0][1])
    assert not is_stale_nan(got[lbl("g", k="nan")][0][1])
    assert got[lbl("g", k="inf")] == [(T_MS, -math.inf)]


def test_histogram_buckets_are_cumulative_and_end_with_inf() -> None:
    m = histogram(
        "http.server.duration",
        [0.005, 0.1, 1.0, 2.5],
        [1, 2, 0, 3, 4],
        total=10,
        sum_=12.5,
        unit="s",
        attrs={"route": "/x"},
    )
    got = series(decode(request([m])).batch)
    n = "http_server_duration_seconds"
    assert got == {
        lbl(n + "_bucket", route="/x", le="0.005"): [(T_MS, 1.0)],
        lbl(n + "_bucket", route="/x", le="0.1"): [(T_MS, 3.0)],
        lbl(n + "_bucket", route="/x", le="1"): [(T_MS, 3.0)],
        lbl(n + "_bucket", route="/x", le="2.5"): [(T_MS, 6.0)],
        lbl(n + "_bucket", route="/x", le="+Inf"): [(T_MS, 10.0)],
        lbl(n + "_count", route="/x"): [(T_MS, 10.0)],
        lbl(n + "_sum", route="/x"): [(T_MS, 12.5)],
    }


def test_histogram_without_sum_or_buckets() -> None:
    m = histogram("h", [], [], total=4, sum_=None)
    assert series(decode(request([m])).batch) == {
        lbl("h_bucket", le="+Inf"): [(T_MS, 4.0)],
        lbl("h_count"): [(T_MS, 4.0)],
    }


def test_histogram_point_attribute_le_is_replaced_by_the_bucket_bound() -> None:
    m = histogram("h", [1.0], [1, 1], total=2, sum_=3.0, attrs={"le": "oops"})
    got = series(decode(request([m])).batch)
    assert lbl("h_bucket", le="1") in got and lbl("h_count", le="oops") in got


@pytest.mark.parametrize(
    ("bounds", "counts", "field"),
    [
        ([1.0, 2.0], [1, 1], "bucketCounts"),
        ([2.0, 1.0], [1, 1, 1], "explicitBounds"),
        ([1.0, math.nan], [1, 1, 1], "explicitBounds"),
    ],
)
def test_invalid_histograms_are_rejected_with_the_field(
    bounds: list[float], counts: list[int], field: str
) -> None:
    m = histogram("h", bounds, counts, total=3, sum_=1.0)
    with pytest.raises(OtlpInvalidInput) as ei:
        decode(request([gauge("ok", [({}, 1.0)]), m]))
    assert ei.value.field == f"resourceMetrics[0].scopeMetrics[0].metrics[1].histogram.dataPoints[0].{field}"


def test_summary() -> None:
    m = metrics_pb2.Metric(name="rpc.latency", unit="ms", description="d")
    p = m.summary.data_points.add(time_unix_nano=T_NS, count=9, sum=45.5)
    p.attributes.append(kv("m", "get"))
    p.quantile_values.add(quantile=0.99, value=12.0)
    p.quantile_values.add(quantile=0.5, value=3.0)
    rep = decode(request([m]))
    n = "rpc_latency_milliseconds"
    assert series(rep.batch) == {
        lbl(n, m="get", quantile="0.5"): [(T_MS, 3.0)],
        lbl(n, m="get", quantile="0.99"): [(T_MS, 12.0)],
        lbl(n + "_sum", m="get"): [(T_MS, 45.5)],
        lbl(n + "_count", m="get"): [(T_MS, 9.0)],
    }
    assert [(x.metric, x.type, x.unit) for x in rep.batch.metadata] == [(n, "summary", "milliseconds")]


def test_summary_quantile_out_of_range_is_rejected() -> None:
    m = metrics_pb2.Metric(name="s")
    m.summary.data_points.add(time_unix_nano=T_NS).quantile_values.add(quantile=1.5, value=1)
    with pytest.raises(OtlpInvalidInput, match=r"quantileValues\[0\]"):
        decode(request([m]))


def test_no_recorded_value_becomes_stale_markers() -> None:
    g = gauge("g", [({}, 1.0)])
    g.gauge.data_points[0].flags = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    g.gauge.data_points[0].ClearField("as_double")
    h = histogram("h", [1.0], [1, 1], total=2, sum_=3.0, flags=1)
    batch = decode(request([g, h])).batch
    assert batch.num_samples == 5
    assert all(is_stale_nan(float(v)) for v in batch.values)


def test_exponential_histograms_can_be_dropped_and_counted() -> None:
    m = metrics_pb2.Metric(name="eh")
    m.exponential_histogram.aggregation_temporality = CUMULATIVE
    m.exponential_histogram.data_points.add(time_unix_nano=T_NS, count=3)
    m.exponential_histogram.data_points.add(time_unix_nano=T_NS, count=4)
    rep = decode(request([m, gauge("g", [({}, 1.0)])]), OtlpOptions(exponential_histograms="drop"))
    assert rep.batch.histograms_dropped == 2 and rep.rejected_points == 2
    assert "exponential histograms are not accepted" in rep.error_message()
    assert set(series(rep.batch)) == {lbl("g")}


CLASSIC = OtlpOptions(exponential_histograms="classic")


def exp_histogram(
    scale: int,
    positive: tuple[int, list[int]] = (0, []),
    negative: tuple[int, list[int]] = (0, []),
    zero: tuple[int, float] = (0, 0.0),
    total: int | None = None,
    sum_: float | None = None,
    temporality: int = CUMULATIVE,
    flags: int = 0,
) -> metrics_pb2.Metric:
    m = metrics_pb2.Metric(name="eh", unit="s")
    m.exponential_histogram.aggregation_temporality = temporality  # type: ignore[assignment]
    p = m.exponential_histogram.data_points.add(time_unix_nano=T_NS, scale=scale, flags=flags)
    p.positive.offset, _ = positive
    p.positive.bucket_counts.extend(positive[1])
    p.negative.offset = negative[0]
    p.negative.bucket_counts.extend(negative[1])
    p.zero_count, p.zero_threshold = zero
    p.count = total if total is not None else sum(positive[1]) + sum(negative[1]) + zero[0]
    if sum_ is not None:
        p.sum = sum_
    return m


def buckets(batch: SampleBatch) -> dict[str, float]:
    out = {}
    for labels, pts in series(batch).items():
        d = dict(labels)
        key = d["__name__"] + (f"{{le={d['le']}}}" if "le" in d else "")
        out[key] = pts[0][1]
    return out


def test_exponential_histogram_downscaled_to_powers_of_two() -> None:
    # scale 2: bucket i holds (2^(i/4), 2^((i+1)/4)]; i = 0..7 merge into (1, 2] and (2, 4];
    # the empty (0.5, 1] below them gives histogram_quantile the lower bound 1.
    m = exp_histogram(2, positive=(0, [1, 0, 2, 1, 0, 0, 3, 1]), zero=(2, 0.0), sum_=20.0)
    assert buckets(decode(request([m]), CLASSIC).batch) == {
        "eh_seconds_bucket{le=0}": 2.0,
        "eh_seconds_bucket{le=1}": 2.0,
        "eh_seconds_bucket{le=2}": 6.0,
        "eh_seconds_bucket{le=4}": 10.0,
        "eh_seconds_bucket{le=+Inf}": 10.0,
        "eh_seconds_count": 10.0,
        "eh_seconds_sum": 20.0,
    }


def test_exponential_histogram_negative_buckets_and_finer_scale_option() -> None:
    # scale 1 kept at max scale 1: negative bucket i holds [-2^((i+1)/2), -2^(i/2)).
    m = exp_histogram(1, positive=(1, [4]), negative=(0, [1, 2]))
    got = buckets(decode(request([m]), OtlpOptions(exponential_histograms="classic", exponential_max_scale=1)).batch)
    assert got == {
        "eh_seconds_bucket{le=-2}": 0.0,  # the empty bucket beyond: lower bound -2
        "eh_seconds_bucket{le=-1.4142135623730951}": 2.0,  # [-2, -1.41...)
        "eh_seconds_bucket{le=-1}": 3.0,  # [-1.41..., -1)
        "eh_seconds_bucket{le=1.4142135623730951}": 3.0,  # the empty bucket below (1.41..., 2]
        "eh_seconds_bucket{le=2}": 7.0,  # (1.41..., 2]
        "eh_seconds_bucket{le=+Inf}": 7.0,
        "eh_seconds_count": 7.0,
    }


def test_exponential_histogram_negative_scale_and_float_range() -> None:
    # scale -1: bucket i holds (4^i, 4^(i+1)]; an index past the float range only counts in +Inf.
    m = exp_histogram(-1, positive=(-1, [1, 1]))
    assert buckets(decode(request([m]), CLASSIC).batch) == {
        "eh_seconds_bucket{le=0.25}": 0.0,
        "eh_seconds_bucket{le=1}": 1.0,
        "eh_seconds_bucket{le=4}": 2.0,
        "eh_seconds_bucket{le=+Inf}": 2.0,
        "eh_seconds_count": 2.0,
    }
    huge = exp_histogram(0, positive=(2000, [5]))
    assert buckets(decode(request([huge]), CLASSIC).batch) == {
        "eh_seconds_bucket{le=+Inf}": 5.0,
        "eh_seconds_count": 5.0,
    }


def test_exponential_histogram_errors_and_staleness() -> None:
    with pytest.raises(OtlpInvalidInput, match=r"exponentialHistogram\.dataPoints\[0\]\.scale"):
        decode(request([exp_histogram(21, positive=(0, [1]))]))
    rep = decode(request([exp_histogram(0, positive=(0, [1]), temporality=DELTA)]))
    assert rep.batch.num_samples == 0 and rep.rejected_points == 1 and "delta temporality" in rep.error_message()
    with pytest.raises(OtlpInvalidInput, match="zeroThreshold"):
        decode(request([exp_histogram(0, zero=(1, math.inf))]))
    stale = exp_histogram(0, positive=(0, [1]), sum_=1.0, flags=1)
    batch = decode(request([stale]), CLASSIC).batch
    assert batch.num_samples == 5 and all(is_stale_nan(float(v)) for v in batch.values)
    # native (the default): one stale marker on the histogram's series
    batch = decode(request([stale])).batch
    assert batch.num_samples == 1 and is_stale_nan(float(batch.values[0])) and batch.histograms is None
    assert [batch.decode_labels(k) for k in batch.keys] == [lbl("eh_seconds")]


def test_points_without_value_are_rejected_not_invented() -> None:
    m = gauge("g", [({"a": "1"}, 1.0), ({"a": "2"}, 2.0)])
    m.gauge.data_points[1].ClearField("as_double")
    rep = decode(request([m]))
    assert series(rep.batch) == {lbl("g", a="1"): [(T_MS, 1.0)]}
    assert rep.rejected_points == 1 and "without a value" in rep.error_message()


def test_exemplars_are_kept_with_trace_and_span_ids() -> None:
    m = counter("c", [({"k": "v"}, 1.0)])
    ex = m.sum.data_points[0].exemplars.add(as_double=0.25, time_unix_nano=T_NS + 5_000_000,
                                             trace_id=bytes(range(16)), span_id=bytes(range(8)))
    ex.filtered_attributes.append(kv("user", "alice"))
    m.sum.data_points[0].exemplars.add(as_int=3)  # no time: "now"
    batch = decode(request([m])).batch
    assert batch.exemplars_dropped == 0
    first, second = batch.exemplars
    assert first.series == lbl("c_total", k="v")
    assert first.labels == (("span_id", "0001020304050607"), ("trace_id", "000102030405060708090a0b0c0d0e0f"),
                            ("user", "alice"))
    assert (first.value, first.ts) == (0.25, T_MS + 5)
    assert (second.value, second.ts, second.labels) == (3.0, NOW_MS, ())


def test_histogram_exemplars_go_to_the_bucket_that_holds_them() -> None:
    m = histogram("h", [1.0, 5.0], [1, 1, 1], 3, 10.0, unit="s")
    for v in (0.5, 1.0, 4.0, 99.0):
        m.histogram.data_points[0].exemplars.add(as_double=v, time_unix_nano=T_NS)
    got = [(dict(e.series).get("le"), dict(e.series)["__name__"], e.value) for e in decode(request([m])).batch.exemplars]
    assert got == [("1", "h_seconds_bucket", 0.5), ("1", "h_seconds_bucket", 1.0),
                   ("5", "h_seconds_bucket", 4.0), ("+Inf", "h_seconds_bucket", 99.0)]


def test_metric_without_data_is_ignored_and_empty_name_is_rejected() -> None:
    assert decode(request([metrics_pb2.Metric(name="nothing")])).batch.num_samples == 0
    with pytest.raises(OtlpInvalidInput, match=r"metrics\[0\]\.name"):
        decode(request([gauge("", [({}, 1.0)])]))


# --- temporality -------------------------------------------------------------------------------


@pytest.mark.parametrize("monotonic", [True, False])
def test_a_delta_sum_is_rejected_alone_and_the_rest_is_kept(monotonic: bool) -> None:
    rep = decode(
        request(
            [
                gauge("ok", [({}, 1.0)]),
                counter("d.c", [({"a": "1"}, 1.0), ({"a": "2"}, 2.0)], monotonic=monotonic, temporality=DELTA),
                counter("c", [({}, 5.0)]),
            ]
        )
    )
    assert series(rep.batch) == {lbl("ok"): [(T_MS, 1.0)], lbl("c_total"): [(T_MS, 5.0)]}
    assert rep.rejected_points == 2
    msg = rep.error_message()
    assert "resourceMetrics[0].scopeMetrics[0].metrics[1].sum.aggregationTemporality" in msg
    assert "'d.c'" in msg and "2 data point(s) dropped" in msg


def test_delta_histogram_and_unspecified_temporality_are_rejected_per_metric() -> None:
    rep = decode(request([histogram("h", [], [], 1, 1.0, temporality=DELTA), gauge("g", [({}, 3.0)])]))
    assert series(rep.batch) == {lbl("g"): [(T_MS, 3.0)]}
    assert rep.rejected_points == 1 and "delta temporality" in rep.error_message()
    rep = decode(request([counter("c", [({}, 1.0)], temporality=0)]))
    assert rep.batch.num_samples == 0 and rep.rejected_points == 1 and "unspecified" in rep.error_message()


# --- timestamps --------------------------------------------------------------------------------


def test_timestamps_nanoseconds_to_milliseconds_and_zero_means_now() -> None:
    m = gauge("g", [({}, 1.0)], t_ns=1_000_999_999)
    z = gauge("z", [({}, 1.0)], t_ns=0)
    got = series(decode(request([m, z])).batch)
    assert got == {lbl("g"): [(1000, 1.0)], lbl("z"): [(NOW_MS, 1.0)]}


# --- scope labels ------------------------------------------------------------------------------


def test_scope_labels_on_by_default_and_override_point_attributes() -> None:
    m = gauge("g", [({"otel_scope_name": "spoof"}, 1.0)])
    assert set(series(decode(request([m], scope=("real", ""))).batch)) == {lbl("g", otel_scope_name="real")}


# --- transport-level errors --------------------------------------------------------------------


def test_unsupported_content_type_and_encoding() -> None:
    with pytest.raises(UnsupportedMediaType) as ei:
        decode_otlp_metrics(b"", content_type="text/plain", limits=LIMITS, now_ms=0)
    assert ei.value.status == 415
    with pytest.raises(UnsupportedMediaType):
        decode_otlp_metrics(b"", content_type="", limits=LIMITS, now_ms=0)
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding"):
        decode_otlp_metrics(b"", content_type=PB, limits=LIMITS, now_ms=0, content_encoding="br")


def test_size_limits() -> None:
    small = WriteLimits(max_body_bytes=100, max_decompressed_bytes=1000)
    with pytest.raises(PayloadTooLarge):
        decode_otlp_metrics(b"\x00" * 101, content_type=PB, limits=small, now_ms=0)
    bomb = gzip.compress(b" " * 10_000)
    assert len(bomb) <= 100
    with pytest.raises(PayloadTooLarge) as ei:
        decode_otlp_metrics(bomb, content_type=JS, limits=small, now_ms=0, content_encoding="gzip")
    assert ei.value.status == 413


def test_bad_compression_and_bad_payloads_are_invalid_input() -> None:
    pb = request([gauge("g", [({}, 1.0)])]).SerializeToString()
    cases: list[tuple[bytes, str, str | None]] = [
        (gzip.compress(pb)[:-6], PB, "gzip"),
        (b"not gzip", PB, "gzip"),
        (gzip.compress(pb) + b"junk", PB, "gzip"),
        (pb[:-3], PB, None),
        (b"{", JS, None),
        (b'{"resourceMetrics": 5}', JS, None),
        (b"\xff\xfe", JS, None),
        (b"[" * 100_000, JS, None),
    ]
    for body, ctype, enc in cases:
        with pytest.raises(InvalidInput):
            decode_otlp_metrics(body, content_type=ctype, limits=LIMITS, now_ms=0, content_encoding=enc)


def test_concatenated_gzip_members_are_accepted() -> None:
    pb = request([gauge("g", [({}, 1.0)])]).SerializeToString()
    body = gzip.compress(pb[:5]) + gzip.compress(pb[5:])
    batch = decode_otlp_metrics(body, content_type=PB, limits=LIMITS, now_ms=0, content_encoding="gzip")
    assert batch.num_samples == 1


def test_json_accepts_enum_names_numbers_for_int64_and_ignores_unknown_fields() -> None:
    doc = {
        "resourceMetrics": [
            {
                "futureField": {"x": 1},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "c",
                                "newThing": 1,
                                "sum": {
                                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                                    "isMonotonic": True,
                                    "dataPoints": [{"asInt": 3, "timeUnixNano": 2_000_000_000}],
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    batch = decode_otlp_metrics(json.dumps(doc).encode(), content_type=JS, limits=LIMITS, now_ms=0)
    assert series(batch) == {lbl("c_total"): [(2000, 3.0)]}


def test_request_expansion_limits() -> None:
    m = histogram("h", [float(i) for i in range(50)], [1] * 51, total=51, sum_=1.0)
    with pytest.raises(LimitExceeded) as ei:
        decode(request([m]), limits=WriteLimits(max_series_per_request=10))
    assert ei.value.status == 400
    with pytest.raises(LimitExceeded):
        decode(request([m]), limits=WriteLimits(max_samples_per_request=10))


def test_errors_are_ingest_errors() -> None:
    assert issubclass(OtlpInvalidInput, IngestError)


def test_format_float() -> None:
    assert [format_float(x) for x in (0.005, 1.0, 250.0, 1e-9, math.inf, -math.inf, 0.1 + 0.2)] == [
        "0.005",
        "1",
        "250",
        "0.000000001",
        "+Inf",
        "-Inf",
        "0.30000000000000004",
    ]


# --- memoized series keys ----------------------------------------------------------------------


def test_repeated_requests_decode_identically_through_the_key_memo() -> None:
    req = request(
        [gauge("g", [({"a": "1"}, 1.0)]), histogram("h", [1.0, 2.0], [1, 2, 3], 6, 9.0)],
        {"service.name": "s", "x": "y"},
        ("lib", "1"),
    )
    first, second = decode(req).batch, decode(req).batch
    assert first.keys == second.keys
    assert series(first) == series(second)


def test_memo_distinguishes_context_and_family() -> None:
    a = request([gauge("g", [({"a": "1"}, 1.0)])], {"service.name": "one"})
    b = request([gauge("g", [({"a": "1"}, 1.0)])], {"service.name": "two"})
    c = request([gauge("g2", [({"a": "1"}, 1.0)])], {"service.name": "one"})
    d = request([gauge("g", [({"a": "1"}, 1.0)])], {"service.name": "one"}, ("scope", ""))
    got = [set(series(decode(r).batch)) for r in (a, b, c, d)]
    assert got == [
        {lbl("g", a="1", job="one")},
        {lbl("g", a="1", job="two")},
        {lbl("g2", a="1", job="one")},
        {lbl("g", a="1", job="one", otel_scope_name="scope")},
    ]
    scopeless = decode(d, OtlpOptions(scope_labels=False)).batch
    assert set(series(scopeless)) == {lbl("g", a="1", job="one")}


def test_cached_histogram_still_checks_bucket_counts() -> None:
    decode(request([histogram("h", [1.0], [1, 1], 2, 1.0)]))
    with pytest.raises(OtlpInvalidInput, match="bucketCounts"):
        decode(request([histogram("h", [1.0], [1, 1, 1], 3, 1.0)]))


def test_histogram_with_an_explicit_inf_bound() -> None:
    m = histogram("h", [1.0, math.inf], [1, 2, 0], total=3, sum_=None)
    assert series(decode(request([m])).batch) == {
        lbl("h_bucket", le="1"): [(T_MS, 1.0)],
        lbl("h_bucket", le="+Inf"): [(T_MS, 3.0)],
        lbl("h_count"): [(T_MS, 3.0)],
    }


def test_unparseable_attribute_bytes_name_the_attribute() -> None:
    req = request([gauge("g", [({"a": "1"}, 1.0)])])
    pb = bytearray(req.SerializeToString())
    i = pb.index(b"\n\x01a")  # the attribute's key field: turn it into an invalid length
    pb[i + 1] = 0x7F
    with pytest.raises(InvalidInput):
        decode_otlp_metrics(bytes(pb), content_type=PB, limits=LIMITS, now_ms=0)


def test_invalid_utf8_in_attribute_is_rejected() -> None:
    req = request([gauge("g", [({"a": "x"}, 1.0)])])
    pb = req.SerializeToString().replace(b"\x12\x03\n\x01x", b"\x12\x03\n\x01\xff")
    with pytest.raises(OtlpInvalidInput, match=r"dataPoints\[0\]\.attributes\[0\]"):
        decode_otlp_metrics(pb, content_type=PB, limits=LIMITS, now_ms=0)


def test_key_memo_is_bounded_by_entries_and_bytes() -> None:
    from clearsight.ingest.otlp_metrics import _Memo

    memo = _Memo(max_items=3, max_bytes=1000)
    for i in range(3):
        memo.put(i, i, 10)
    assert len(memo.items) == 3
    memo.put(3, 3, 10)  # over the entry bound: cleared, then stored
    assert memo.items == {3: 3} and memo.bytes == 10
    memo.put(4, 4, 995)  # over the byte bound
    assert memo.items == {4: 4} and memo.bytes == 995


def test_promoted_resource_attributes_are_copied_to_every_series() -> None:
    res = {
        "service.name": "api",
        "k8s.namespace.name": "prod",
        "host.name": "h1",
        "deployment.environment": "",
    }
    m = gauge("g", [({"a": "1"}, 1.0), ({"a": "2", "k8s.namespace.name": "override"}, 2.0)])
    opts = OtlpOptions(
        scope_labels=False, promote_resource_attributes=("k8s.namespace.name", "service.name", "missing")
    )
    got = series(decode(request([m], res), opts).batch)
    assert got == {
        lbl("g", job="api", a="1", k8s_namespace_name="prod"): [(T_MS, 1.0)],
        lbl("g", job="api", a="2", k8s_namespace_name="override"): [(T_MS, 2.0)],
        lbl("target_info", job="api", k8s_namespace_name="prod", host_name="h1"): [(T_MS, 1.0)],
    }
    # Without the option the same request (and the key memo) gives the unpromoted series.
    plain = series(decode(request([m], res), OtlpOptions(scope_labels=False)).batch)
    assert lbl("g", job="api", a="1") in plain


def test_nan_payloads_never_become_stale_markers() -> None:
    stale_bits = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    m = gauge("g", [({}, stale_bits)])
    h = histogram("h", [], [], total=1, sum_=stale_bits)
    batch = decode(request([m, h])).batch
    nans = [float(v) for v in batch.values if math.isnan(v)]
    assert len(nans) == 2
    assert not any(is_stale_nan(v) for v in nans)


def _native(m: metrics_pb2.Metric) -> FloatHistogram:
    batch = decode(request([m])).batch
    assert batch.histograms is not None and batch.num_samples == 0
    assert [batch.decode_labels(k) for k in batch.keys] == [lbl("eh_seconds")]
    (h,) = batch.histograms.histograms
    h.validate()
    return h


def test_exponential_histograms_become_native_histograms() -> None:
    # OTLP bucket offset+k holds (2^((offset+k)/2^s), 2^((offset+k+1)/2^s)]: Prometheus index +1.
    h = _native(exp_histogram(1, positive=(-2, [3, 0, 5]), negative=(4, [1]), zero=(2, 1e-9), sum_=7.5))
    assert (h.schema, h.count, h.sum, h.zero_count, h.zero_threshold) == (1, 11.0, 7.5, 2.0, 1e-9)
    assert h.positive_index.tolist() == [-1, 1] and h.positive.tolist() == [3.0, 5.0]
    assert h.negative_index.tolist() == [5] and h.negative.tolist() == [1.0]
    # No sum on the point: 0, as Prometheus' translator.
    assert _native(exp_histogram(0, positive=(0, [1]))).sum == 0.0
    # Scales above 8 are merged down to 8: indices 1..4 at scale 10 -> bucket ((i-1) >> 2) + 1.
    h = _native(exp_histogram(10, positive=(0, [1, 2, 3, 4, 5]), sum_=1.0))
    assert h.schema == 8 and h.positive_index.tolist() == [1, 2] and h.positive.tolist() == [10.0, 5.0]
    assert _native(exp_histogram(-4, positive=(0, [1]))).schema == -4


def test_native_exponential_histograms_refuse_what_has_no_schema() -> None:
    with pytest.raises(OtlpInvalidInput, match=r"dataPoints\[0\]\.scale: scale -5 cannot be stored as a native"):
        decode(request([exp_histogram(-5, positive=(0, [1]))]))
    with pytest.raises(OtlpInvalidInput, match=r"dataPoints\[0\]\.count: count 1 is less than the 3 observations"):
        decode(request([exp_histogram(0, positive=(0, [3]), total=1)]))
    with pytest.raises(OtlpInvalidInput, match="zeroThreshold"):
        decode(request([exp_histogram(0, zero=(1, -1.0))]))
