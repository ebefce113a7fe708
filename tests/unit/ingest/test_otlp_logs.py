"""OTLP logs decoder: the OTLP/JSON samples, the SDK's own protobuf encoding, errors, limits, fuzz."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from clearsight.ingest import otlp_logs as ol
from clearsight.ingest.log_common import LogLimits
from clearsight.model.logs import LogBatch
from clearsight.pipeline.errors import IngestError, LimitExceeded, PayloadTooLarge, UnsupportedMediaType

OTLP = Path("/work/shared/conformance/otlp")
ALLOWED = (ol.OtlpLogsError, LimitExceeded, PayloadTooLarge)  # a decoder raises its own error or a limit error
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_800_000_000_000_000_000


def _decode_json(doc: object, **kw: object) -> LogBatch:
    return ol.decode_logs(orjson.dumps(doc), "application/json", now_ns=NOW, **kw)  # type: ignore[arg-type]


def test_logs_json_sample() -> None:
    b = ol.decode_logs((OTLP / "logs.json").read_bytes(), "application/json", now_ns=NOW)
    e = b.entry(0)
    assert e.timestamp == 1544712660300000000
    assert e.severity_number == 10 and e.severity_text == "Information"
    assert e.body == "Example log record"
    assert e.trace_id == bytes.fromhex("5B8EFFF798038103D269B633813FC60C")
    assert e.span_id == bytes.fromhex("EEE19B7EC3C1B174")
    assert e.stream == (("service_name", "my.service"),)
    assert e.resource == (("service.name", "my.service"),)
    attrs = dict(e.attributes)
    assert attrs["boolean.attribute"] == "true" and attrs["int.attribute"] == "10"
    assert attrs["array.attribute"] == '["many","values"]'
    assert attrs["map.attribute"] == '{"some.map.key":"some value"}'
    assert attrs["otel.scope.name"] == "my.library"


def test_events_json_sample_keeps_event_name_and_map_body() -> None:
    b = ol.decode_logs((OTLP / "events.json").read_bytes(), "application/json", now_ns=NOW)
    e = b.entry(0)
    assert ("event.name", "browser.page_view") in e.attributes
    assert orjson.loads(e.body)["title"] == "Free Online GUID Generator"


def test_json_and_protobuf_agree_and_gzip() -> None:
    doc = orjson.loads((OTLP / "logs.json").read_bytes())
    for rl in doc["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for rec in sl["logRecords"]:
                rec["traceId"] = bytes.fromhex(rec["traceId"]).hex() if "traceId" in rec else ""
    from_json = _decode_json(doc)
    req = ol.parse_json(orjson.dumps(doc))
    from_pb = ol.decode_logs(gzip.compress(req.SerializeToString()), "application/x-protobuf", "gzip", now_ns=NOW)
    assert from_json.entries() == from_pb.entries()


def test_sdk_encoded_records() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout", "host.name": "h1",
                                                       "k8s.namespace.name": "shop",
                                                       "service.instance.id": "i-1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("clearsight.test")
    logger.emit(LogRecord(timestamp=1_700_000_000_123_456_789, severity_text="WARN",
                          severity_number=SeverityNumber.WARN, body="disk /var is 91% full",
                          attributes={"disk": "/var"}))
    logger.emit(LogRecord(timestamp=1_700_000_001_000_000_000, severity_text="ERROR",
                          severity_number=SeverityNumber.ERROR, body="boom"))
    provider.shutdown()
    body = encode_logs(exporter.get_finished_logs()).SerializeToString()
    b = ol.decode_logs(body, "application/x-protobuf", now_ns=NOW)
    assert b.body == ["disk /var is 91% full", "boom"]
    assert [b.severity_text(j) for j in range(2)] == ["WARN", "ERROR"]
    assert b.severity_number.tolist() == [13, 17]
    assert b.streams == [(("k8s_namespace_name", "shop"), ("service_instance_id", "i-1"),
                         ("service_name", "checkout"))]
    assert ("host.name", "h1") in b.resources[int(b.resource_idx[0])]
    assert ("disk", "/var") in b.attributes(0)
    assert b.timestamps.tolist() == [1_700_000_000_123_456_789, 1_700_000_001_000_000_000]


def test_time_falls_back_to_observed_then_now_and_unknown_service() -> None:
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"observedTimeUnixNano": "1700000000000000001", "body": {"intValue": "5"}},
        {"body": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": False}}]}}},
    ]}]}]}
    b = _decode_json(doc)
    assert b.timestamps.tolist() == [1700000000000000001, NOW]
    assert b.body == ["5", '{"a":false}']
    assert b.streams == [(("service_name", "unknown_service"),)]


@pytest.mark.parametrize(
    ("record", "path"),
    [
        ({"traceId": "zz"}, "resourceLogs[0].scopeLogs[0].logRecords[0].traceId"),
        ({"traceId": "00ff"}, "resourceLogs[0].scopeLogs[0].logRecords[0].traceId"),
        ({"spanId": "00ff"}, "resourceLogs[0].scopeLogs[0].logRecords[0].spanId"),
        ({"severityNumber": 99}, "resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber"),
        ({"timeUnixNano": str(2**64 - 1)}, "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano"),
    ],
)
def test_errors_name_the_field(record: dict[str, object], path: str) -> None:
    with pytest.raises(ol.OtlpLogsError) as ei:
        _decode_json({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]})
    assert ei.value.field == path


def test_parse_errors_and_media_type() -> None:
    with pytest.raises(ol.OtlpLogsError, match="cannot parse protobuf"):
        ol.decode_logs(b"\x0a\xff", "application/x-protobuf", now_ns=NOW)
    with pytest.raises(ol.OtlpLogsError, match="cannot parse OTLP/JSON"):
        ol.decode_logs(b'{"resourceLogs": 3}', "application/json", now_ns=NOW)
    with pytest.raises(UnsupportedMediaType):
        ol.decode_logs(b"", "text/plain", now_ns=NOW)


def test_limits() -> None:
    recs = [{"body": {"stringValue": "x" * 20}}] * 3
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": recs}]}]}
    with pytest.raises(LimitExceeded, match=r"logRecords\[0\]: line of 20 bytes exceeds the limit of 10"):
        _decode_json(doc, limits=LogLimits(max_line_bytes=10))
    with pytest.raises(LimitExceeded, match="more than 2 entries"):
        _decode_json(doc, limits=LogLimits(max_entries_per_request=2))
    attrs = [{"key": f"k{i}", "value": {"stringValue": "v"}} for i in range(5)]
    with pytest.raises(LimitExceeded, match="5 attributes exceed the limit of 4"):
        _decode_json({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": attrs}]}]}]},
                     limits=LogLimits(max_attributes_per_entry=4))
    big = {"resourceLogs": [{"resource": {"attributes": attrs}}]}
    with pytest.raises(LimitExceeded, match=r"resourceLogs\[0\].resource: 5 attributes"):
        _decode_json(big, limits=LogLimits(max_attributes_per_entry=4))
    two = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s}}]}}
                            for s in "ab"]}
    with pytest.raises(LimitExceeded, match="more than 1 streams"):
        _decode_json(two, limits=LogLimits(max_streams_per_request=1))


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_protobuf_bytes(data: bytes) -> None:
    try:
        b = ol.decode_logs(data, "application/x-protobuf", now_ns=NOW)
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message
    else:
        b.check()


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_mutated_sample(data: bytes) -> None:
    base = ol.parse_json((OTLP / "logs.json").read_bytes()).SerializeToString()
    cut = len(data) % (len(base) + 1)
    try:
        ol.decode_logs(base[:cut] + data + base[cut:], "application/x-protobuf", now_ns=NOW)
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["resourceLogs", "scopeLogs", "logRecords", "body", "traceId", "spanId",
                         "attributes", "key", "value", "stringValue", "timeUnixNano", "severityNumber",
                         "kvlistValue", "values", "x"]), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(json_values)
def test_fuzz_json(doc: object) -> None:
    try:
        b = _decode_json(doc)
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message
    else:
        b.check()


def test_request_type_is_the_otlp_one() -> None:
    assert ol.ExportLogsServiceRequest is ExportLogsServiceRequest


# --- the direct OTLP/JSON walk agrees with the message path ---------------------------------------

any_values = st.recursive(
    st.one_of(
        st.builds(lambda s: {"stringValue": s}, st.text(max_size=10)),
        st.builds(lambda b: {"boolValue": b}, st.booleans()),
        st.builds(lambda i: {"intValue": str(i)}, st.integers(-(2**63), 2**63 - 1)),
        st.builds(lambda i: {"intValue": i}, st.integers(-(2**53), 2**53)),
        st.builds(lambda d: {"doubleValue": d}, st.floats(allow_nan=False, allow_infinity=False)),
        st.builds(lambda b: {"bytesValue": __import__("base64").b64encode(b).decode()}, st.binary(max_size=6)),
        st.just({}),
    ),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"arrayValue": {"values": xs}}, st.lists(inner, max_size=3)),
        st.builds(lambda kvs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kvs]}},
                  st.lists(st.tuples(st.text(max_size=4), inner), max_size=3)),
    ),
    max_leaves=6,
)
kvs = st.lists(st.builds(lambda k, v: {"key": k, "value": v}, st.text(max_size=6), any_values), max_size=3)
records = st.fixed_dictionaries(
    {},
    optional={
        "timeUnixNano": st.one_of(st.integers(0, 2**63 - 1).map(str), st.integers(0, 2**53)),
        "observedTimeUnixNano": st.integers(0, 2**63 - 1).map(str),
        "severityNumber": st.integers(0, 24),
        "severityText": st.text(max_size=6),
        "body": any_values,
        "attributes": kvs,
        "traceId": st.binary(min_size=16, max_size=16).map(bytes.hex),
        "spanId": st.binary(min_size=8, max_size=8).map(bytes.hex),
        "eventName": st.text(max_size=6),
        "flags": st.integers(0, 255),
    },
)
requests = st.builds(
    lambda rls: {"resourceLogs": rls},
    st.lists(st.fixed_dictionaries(
        {"scopeLogs": st.lists(st.fixed_dictionaries(
            {"logRecords": st.lists(records, max_size=3)},
            optional={"scope": st.fixed_dictionaries({}, optional={"name": st.text(max_size=5),
                                                                 "version": st.text(max_size=3)})}),
            max_size=2)},
        optional={"resource": st.fixed_dictionaries({"attributes": st.lists(st.sampled_from([
            {"key": "service.name", "value": {"stringValue": "svc"}},
            {"key": "host.name", "value": {"stringValue": "h"}},
            {"key": "k8s.pod.name", "value": {"stringValue": "p"}},
            {"key": "n", "value": {"intValue": "3"}}]), max_size=3)})}),
        max_size=2),
)


@FUZZ
@given(requests)
def test_json_fast_walk_matches_the_message_path(doc: dict[str, object]) -> None:
    fast = ol._convert_json_fast(doc, NOW, LogLimits())  # must not fall back on canonical OTLP/JSON
    fast.check()
    via_message = ol.convert_request(ol.parse_json(orjson.dumps(doc)), now_ns=NOW)
    assert fast.entries() == via_message.entries()
    assert fast.streams == via_message.streams


def test_json_odd_shapes_fall_back_to_the_message_semantics() -> None:
    doc = {"resource_logs": [{"scope_logs": [{"log_records": [
        {"severity_number": "SEVERITY_NUMBER_WARN", "body": {"string_value": "x"}, "unknownField": 1}]}]}]}
    b = _decode_json(doc)
    assert b.body == ["x"] and b.severity_number.tolist() == [13]


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["application/json", "application/x-protobuf"]))
def test_fuzz_gzip_bodies(data: bytes, ctype: str) -> None:
    for body in (data, gzip.compress(data)):
        try:
            ol.decode_logs(body, ctype, "gzip", now_ns=NOW)
        except IngestError as e:
            assert isinstance(e, ALLOWED) and e.message
