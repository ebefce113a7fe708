"""Fuzzing the OTLP metrics decoder: whatever the bytes, it returns a consistent batch or raises an
``IngestError`` subclass, nothing else."""

from __future__ import annotations

import gzip
import json
import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from clearsight.ingest.otlp_metrics import decode_otlp_metrics_report
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError
from clearsight.pipeline.limits import WriteLimits

PB = "application/x-protobuf"
JS = "application/json"
LIMITS = WriteLimits(
    max_body_bytes=1 << 20,
    max_decompressed_bytes=4 << 20,
    max_series_per_request=20_000,
    max_samples_per_request=50_000,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(body: bytes, content_type: str, encoding: str | None = None) -> SampleBatch | None:
    try:
        rep = decode_otlp_metrics_report(
            body, content_type=content_type, limits=LIMITS, now_ms=1000, content_encoding=encoding
        )
    except IngestError:
        return None
    b = rep.batch
    n = b.num_samples
    assert b.series_idx.shape == b.timestamps.shape == b.values.shape == (n,)
    assert len(set(b.keys)) == len(b.keys)
    if n:
        assert int(b.series_idx.min()) >= 0 and int(b.series_idx.max()) < b.num_series
    for key in b.keys:
        labels = b.decode_labels(key)
        names = [name for name, _ in labels]
        assert len(set(names)) == len(names)
        assert "__name__" in names
        assert all(v != "" for _, v in labels)
    assert rep.rejected_points >= 0
    return b


# --- arbitrary bytes ---------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([PB, JS]), st.sampled_from([None, "gzip", "deflate"]))
def test_random_bytes(body: bytes, ctype: str, enc: str | None) -> None:
    check(body, ctype, enc)


def _valid_request() -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "svc"
    rm.resource.attributes.add(key="host").value.string_value = "h"
    sm = rm.scope_metrics.add()
    sm.scope.name = "lib"
    g = sm.metrics.add(name="g", unit="By")
    p = g.gauge.data_points.add(time_unix_nano=10**18, as_double=1.5)
    p.attributes.add(key="a.b").value.int_value = 3
    h = sm.metrics.add(name="h", unit="s")
    h.histogram.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    hp = h.histogram.data_points.add(time_unix_nano=10**18, count=3, sum=2.0)
    hp.explicit_bounds.extend([0.1, 1.0])
    hp.bucket_counts.extend([1, 1, 1])
    s = sm.metrics.add(name="s")
    sp = s.summary.data_points.add(time_unix_nano=10**18, count=2, sum=1.0)
    sp.quantile_values.add(quantile=0.5, value=0.4)
    return req.SerializeToString()


VALID = _valid_request()


def test_valid_request_decodes() -> None:
    batch = check(VALID, PB)
    assert batch is not None and batch.num_samples == 10  # incl. target_info


@FUZZ
@given(st.integers(min_value=0, max_value=len(VALID)))
def test_truncated_protobuf(cut: int) -> None:
    check(VALID[:cut], PB)
    check(gzip.compress(VALID)[:cut], PB, "gzip")


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_mutated_protobuf(edits: list[tuple[int, int]]) -> None:
    body = bytearray(VALID)
    for pos, byte in edits:
        body[pos] = byte
    check(bytes(body), PB)


# --- JSON --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)

otlp_keys = st.sampled_from(
    [
        "resourceMetrics",
        "scopeMetrics",
        "metrics",
        "name",
        "unit",
        "gauge",
        "sum",
        "histogram",
        "summary",
        "exponentialHistogram",
        "dataPoints",
        "asDouble",
        "asInt",
        "timeUnixNano",
        "attributes",
        "key",
        "value",
        "stringValue",
        "intValue",
        "bucketCounts",
        "explicitBounds",
        "count",
        "aggregationTemporality",
        "isMonotonic",
        "quantileValues",
        "quantile",
        "flags",
        "resource",
        "scope",
    ]
)

otlp_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "2", "1e400", "AGGREGATION_TEMPORALITY_CUMULATIVE"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(otlp_keys, inner, max_size=5),
    max_leaves=40,
)


@FUZZ
@given(json_values)
def test_random_json(doc: Any) -> None:
    check(json.dumps(doc).encode(), JS)


@FUZZ
@given(otlp_like)
def test_otlp_shaped_json(doc: Any) -> None:
    check(json.dumps({"resourceMetrics": [doc]}).encode(), JS)
    check(json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [doc]}]}]}).encode(), JS)


# --- structurally valid requests with hostile contents -----------------------------------------

floats = st.floats(allow_nan=True, allow_infinity=True)
label_text = st.text(max_size=40)


@st.composite
def requests(draw: st.DrawFn) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rm = req.resource_metrics.add()
        for k, v in draw(
            st.dictionaries(
                st.sampled_from(["service.name", "service.namespace", "service.instance.id", "x.y", "job"])
                | label_text,
                label_text,
                max_size=4,
            )
        ).items():
            rm.resource.attributes.add(key=k).value.string_value = v
        sm = rm.scope_metrics.add()
        sm.scope.name = draw(label_text)
        for _ in range(draw(st.integers(0, 4))):
            m = sm.metrics.add(
                name=draw(st.text(max_size=30)),
                unit=draw(
                    st.sampled_from(["", "1", "s", "By/s", "{x}", "%", "/", "{", "}/", "1/1"])
                    | st.text(max_size=8)
                ),
            )
            kind = draw(st.sampled_from(["gauge", "sum", "histogram", "summary", "exponential"]))
            for _ in range(draw(st.integers(0, 3))):
                attrs = draw(st.dictionaries(label_text, label_text, max_size=6))
                t = draw(st.integers(0, 2**64 - 1))
                flags = draw(st.integers(0, 3))
                if kind in ("gauge", "sum"):
                    dp = (m.gauge if kind == "gauge" else m.sum).data_points.add(
                        time_unix_nano=t, flags=flags
                    )
                    if draw(st.booleans()):
                        dp.as_double = draw(floats)
                    else:
                        dp.as_int = draw(st.integers(-(2**63), 2**63 - 1))
                elif kind == "histogram":
                    hp = m.histogram.data_points.add(
                        time_unix_nano=t, flags=flags, count=draw(st.integers(0, 2**64 - 1))
                    )
                    hp.explicit_bounds.extend(draw(st.lists(floats, max_size=5)))
                    hp.bucket_counts.extend(draw(st.lists(st.integers(0, 2**64 - 1), max_size=6)))
                    if draw(st.booleans()):
                        hp.sum = draw(floats)
                    dp = hp
                elif kind == "exponential":
                    ep = m.exponential_histogram.data_points.add(
                        time_unix_nano=t,
                        flags=flags,
                        count=draw(st.integers(0, 2**64 - 1)),
                        scale=draw(st.integers(-12, 22)),
                        zero_count=draw(st.integers(0, 3)),
                        zero_threshold=draw(floats),
                    )
                    for side in (ep.positive, ep.negative):
                        side.offset = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(-40, 40))
                        side.bucket_counts.extend(draw(st.lists(st.integers(0, 2**64 - 1), max_size=6)))
                    if draw(st.booleans()):
                        ep.sum = draw(floats)
                    dp = ep
                else:
                    sp = m.summary.data_points.add(time_unix_nano=t, flags=flags, sum=draw(floats))
                    for q in draw(st.lists(floats, max_size=3)):
                        sp.quantile_values.add(quantile=q, value=draw(floats))
                    dp = sp
                for k, v in attrs.items():
                    dp.attributes.add(key=k).value.string_value = v
            if kind == "sum":
                m.sum.is_monotonic = draw(st.booleans())
                m.sum.aggregation_temporality = draw(st.sampled_from([0, 1, 2, 2, 2, 7]))
            elif kind == "histogram":
                m.histogram.aggregation_temporality = draw(st.sampled_from([1, 2, 2, 2]))
            elif kind == "exponential":
                m.exponential_histogram.aggregation_temporality = draw(st.sampled_from([1, 2, 2, 2]))
    return req


@FUZZ
@given(requests())
def test_hostile_but_well_formed_requests(req: ExportMetricsServiceRequest) -> None:
    body = req.SerializeToString()
    batch = check(body, PB)
    # The protobuf and the JSON encoding of the same request decode to the same batch (or both fail).
    from google.protobuf import json_format

    js = json_format.MessageToJson(req).encode()
    other = check(js, JS)
    assert (batch is None) == (other is None)
    if batch is not None and other is not None:
        assert batch.keys == other.keys
        # Bit-exact: the decoder turns every NaN payload into the one NaN JSON can express.
        assert np.array_equal(batch.values.view(np.uint64), other.values.view(np.uint64))
        assert np.array_equal(batch.timestamps, other.timestamps)


def test_huge_attribute_sets() -> None:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    m = sm.metrics.add(name="wide")
    dp = m.gauge.data_points.add(time_unix_nano=1, as_double=math.pi)
    for i in range(5000):
        dp.attributes.add(key=f"k.{i}").value.string_value = "v" * 100
    dp.attributes.add(key="k_0").value.string_value = "collides"
    batch = check(req.SerializeToString(), PB)
    assert batch is not None
    (labels,) = [batch.decode_labels(k) for k in batch.keys]
    assert len(labels) == 5001
    assert dict(labels)["k_0"] == "v" * 100 + ";collides"
