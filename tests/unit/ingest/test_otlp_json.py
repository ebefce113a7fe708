"""ingest/otlp_json.py: the fast OTLP/JSON path builds exactly the message ``json_format`` builds,
and fails exactly as it fails (differential against ``json_format.Parse``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from clearsight.ingest import otlp_json
from clearsight.ingest.otlp_json import json_to_wire
from clearsight.pipeline.errors import InvalidInput

DIFF = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(doc: bytes) -> ExportMetricsServiceRequest | str:
    """What the original path gives: the message, or the error message."""
    from clearsight.ingest.otlp_common import parse_message

    try:
        return parse_message(doc, "json", ExportMetricsServiceRequest)
    except InvalidInput as e:
        return e.message


def assert_same(doc: bytes) -> None:
    ref = reference(doc)
    try:
        got: ExportMetricsServiceRequest | str = ExportMetricsServiceRequest.FromString(json_to_wire(doc))
    except InvalidInput as e:
        got = e.message
    assert got == ref


def fast_path_taken(doc: bytes) -> bool:
    try:
        otlp_json._level(otlp_json._load(doc), ExportMetricsServiceRequest, 1, "resourceMetrics",
                         "resource_metrics", 1, otlp_json._resource_metrics)
    except (otlp_json._Unusual, RecursionError):
        return False
    return True


u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
any_value = st.one_of(
    st.builds(lambda s: {"stringValue": s}, st.text(max_size=8)),
    st.builds(lambda b: {"boolValue": b}, st.booleans()),
    st.builds(lambda i: {"intValue": i}, st.one_of(i64, i64.map(str))),
    st.builds(lambda d: {"doubleValue": d}, finite),
    st.just({}),
)
attributes = st.lists(st.builds(lambda k, v: {"key": k, "value": v}, st.text(max_size=6), any_value), max_size=4)
time_ns = st.one_of(u64, u64.map(str))
number_point = st.fixed_dictionaries(
    {"timeUnixNano": time_ns, "attributes": attributes},
    optional={
        "startTimeUnixNano": time_ns,
        "flags": st.integers(0, 2**32 - 1),
        "asDouble": finite,
        "exemplars": st.lists(st.fixed_dictionaries({"asDouble": finite, "timeUnixNano": time_ns}), max_size=2),
    },
) | st.fixed_dictionaries({"asInt": st.one_of(i64, i64.map(str)), "attributes": attributes})
histogram_point = st.fixed_dictionaries(
    {"timeUnixNano": time_ns, "count": time_ns, "bucketCounts": st.lists(u64, max_size=4),
     "explicitBounds": st.lists(finite, max_size=3)},
    optional={"sum": finite, "min": finite, "max": finite, "attributes": attributes,
              "flags": st.integers(0, 2**32 - 1)},
)
metric = st.one_of(
    st.fixed_dictionaries({"name": st.text(max_size=5), "gauge": st.fixed_dictionaries(
        {"dataPoints": st.lists(number_point, max_size=4)})}),
    st.fixed_dictionaries({"name": st.text(max_size=5), "unit": st.just("By"), "sum": st.fixed_dictionaries(
        {"dataPoints": st.lists(number_point, max_size=4), "aggregationTemporality": st.sampled_from(
            [2, 1, "AGGREGATION_TEMPORALITY_CUMULATIVE"]), "isMonotonic": st.booleans()})}),
    st.fixed_dictionaries({"name": st.text(max_size=5), "histogram": st.fixed_dictionaries(
        {"dataPoints": st.lists(histogram_point, max_size=3), "aggregationTemporality": st.just(2)})}),
)
request = st.builds(
    lambda ms, attrs: {"resourceMetrics": [{"resource": {"attributes": attrs},
                                            "scopeMetrics": [{"scope": {"name": "s", "version": "1"},
                                                              "metrics": ms}]}]},
    st.lists(metric, max_size=4), attributes,
)

# JSON values an exporter should not send, put in place of a random value of a canonical request.
odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=6),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e3", " 5", "-0", "+7", "1_000", "0x10"]),
    st.just([]), st.just({}), st.just([{"stringValue": "x"}]), st.just({"kvlistValue": {"values": []}}),
)


@DIFF
@given(request)
def test_canonical_requests_take_the_fast_path_and_match(doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    assert fast_path_taken(body)
    assert_same(body)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


@DIFF
@given(request, st.data(), odd_values)
def test_mutated_requests_match_result_or_error(doc: dict[str, Any], data: st.DataObject, odd: Any) -> None:
    paths = _paths(doc)
    if paths:
        path = data.draw(st.sampled_from(paths))
        node = doc
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = odd
    assert_same(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "text",
    [
        b'{"resourceMetrics": [], "resourceMetrics": []}',  # duplicate key
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": '
        b'[{"asDouble": NaN}]}}]}]}]}',  # bare NaN literal
        b'{"resource_metrics": [{"scope_metrics": [{"metrics": [{"name": "m", "gauge": {"data_points": '
        b'[{"as_double": 1, "time_unix_nano": "5"}]}}]}]}]}',  # proto field names
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": '
        b'[{"asDouble": 1, "asInt": 2}]}}]}]}]}',  # oneof conflict
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": '
        b'[{"asDouble": "NaN", "timeUnixNano": 1.5e18}]}}]}]}]}',  # quoted NaN, float integer
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {}, "sum": {}}]}]}]}',
        b'[1, 2]',
        b'\xff',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": '
        b'[{"attributes": [{"key": "k", "value": {"stringValue": "\\ud800"}}]}]}}]}]}]}',  # lone surrogate
    ],
)
def test_unusual_documents_take_the_original_path(text: bytes) -> None:
    assert not fast_path_taken(text)
    assert_same(text)


def test_deep_attribute_nesting_fails_like_json_format() -> None:
    value: dict[str, Any] = {"stringValue": "x"}
    for _ in range(60):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": [
        {"asDouble": 1, "exemplars": [{"asDouble": 1, "filteredAttributes": [{"key": "k", "value": value}]}]}]}}]}]}]}
    assert_same(json.dumps(doc).encode())
    assert isinstance(reference(json.dumps(doc).encode()), str)  # too deep for json_format as well


def test_speed_path_is_not_json_format() -> None:
    """The canonical shape never calls json_format for data points (what makes it fast)."""
    calls: list[str] = []
    original = json_format.ParseDict

    def spy(js: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(type(message).__name__)
        return original(js, message, *args, **kwargs)

    doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": [
        {"asDouble": float(i), "timeUnixNano": str(i), "attributes": [{"key": "i", "value": {"intValue": i}}]}
        for i in range(50)]}}]}]}]}
    mp = pytest.MonkeyPatch()
    mp.setattr(otlp_json.json_format, "ParseDict", spy)
    try:
        assert_same(json.dumps(doc).encode())
    finally:
        mp.undo()
    assert "NumberDataPoint" not in calls and calls.count("Metric") == 1


ODD = [None, True, False, 0, 5, -1, 5.0, 1.5, -0.0, 1e300, 2**32, 2**63, 2**64, -(2**63) - 1, 2**70, float("inf"),
       "5", "-5", "", " 5", "+7", "1_000", "0x10", "-0", "NaN", "Infinity", "1e3", "٣", [], {}, [1], {"a": 1}]


def _doc(point: dict[str, Any], kind: str = "gauge") -> bytes:
    return json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "m", kind: {"dataPoints": [point], "aggregationTemporality": 2}}]}]}]}).encode()


@pytest.mark.parametrize("odd", ODD, ids=repr)
@pytest.mark.parametrize("field", ["timeUnixNano", "startTimeUnixNano", "asDouble", "asInt", "flags"])
def test_every_number_point_field_with_odd_values(field: str, odd: Any) -> None:
    assert_same(_doc({field: odd}))
    assert_same(_doc({"timeUnixNano": "1", field: odd, "attributes": []}))


@pytest.mark.parametrize("odd", ODD, ids=repr)
@pytest.mark.parametrize("field", ["count", "sum", "min", "max", "bucketCounts", "explicitBounds"])
def test_every_histogram_point_field_with_odd_values(field: str, odd: Any) -> None:
    assert_same(_doc({field: odd}, "histogram"))
    assert_same(_doc({field: [odd] if field in ("bucketCounts", "explicitBounds") else odd}, "histogram"))


@pytest.mark.parametrize("odd", ODD, ids=repr)
@pytest.mark.parametrize("kind", ["stringValue", "boolValue", "intValue", "doubleValue", "key", "value"])
def test_every_attribute_field_with_odd_values(kind: str, odd: Any) -> None:
    if kind == "key":
        kv: dict[str, Any] = {"key": odd, "value": {"stringValue": "v"}}
    elif kind == "value":
        kv = {"key": "k", "value": odd}
    else:
        kv = {"key": "k", "value": {kind: odd}}
    assert_same(_doc({"asDouble": 1, "attributes": [kv]}))


@pytest.mark.parametrize(("kind", "points_key"), [("summary", "dataPoints"), ("gauge", "dataPoints"),
                                                  ("exponential_histogram", "data_points"), ("sum", "data_points")])
def test_too_many_points_fail_before_any_is_converted(kind: str, points_key: str) -> None:
    from clearsight.pipeline.errors import LimitExceeded

    calls: list[str] = []
    original = json_format.ParseDict

    def spy(js: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(type(message).__name__)
        return original(js, message, *args, **kwargs)

    doc = json.dumps({"resourceMetrics": [{"scopeMetrics": [
        {"metrics": [{"name": "a", kind: {points_key: [{}] * 6}}]},
        {"metrics": [{"name": "b", kind: {points_key: [{}] * 5}}]}]}]}).encode()
    assert otlp_json.count_points(json.loads(doc)) == 11
    mp = pytest.MonkeyPatch()
    mp.setattr(otlp_json.json_format, "ParseDict", spy)
    try:
        with pytest.raises(LimitExceeded) as e:
            json_to_wire(doc, max_points=10)
    finally:
        mp.undo()
    assert "more than 10 data points" in e.value.message
    assert calls == []  # refused before json_format or the encoder saw a point
    assert_same(doc)  # within the limit: the usual result
