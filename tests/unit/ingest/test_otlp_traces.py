"""OTLP traces decoder: the OTLP/JSON sample, the SDK's own protobuf encoding, JSON = protobuf, every
validation error naming its field, limits, gzip, and hypothesis fuzzing of both encodings."""

from __future__ import annotations

import copy
import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from clearsight.ingest import otlp_traces as ot
from clearsight.ingest.log_common import LogLimits
from clearsight.model.spans import SpanBatch
from clearsight.pipeline.errors import IngestError, LimitExceeded, PayloadTooLarge, UnsupportedMediaType

OTLP = Path("/work/shared/conformance/otlp")
ALLOWED = (ot.OtlpTracesError, LimitExceeded, PayloadTooLarge)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TID, SID, PID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"


def _json(doc: object, **kw: Any) -> SpanBatch:
    return ot.decode_traces(orjson.dumps(doc), "application/json", **kw)


def _one(**span: Any) -> dict[str, Any]:
    base = {"traceId": TID, "spanId": SID, "name": "op", "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [{**base, **span}]}]}]}


def test_trace_json_sample() -> None:
    b = ot.decode_traces((OTLP / "trace.json").read_bytes(), "application/json")
    [s] = b.spans
    assert s.trace_id == bytes.fromhex(TID) and s.span_id == bytes.fromhex(SID)
    assert s.parent_span_id == bytes.fromhex(PID)
    assert s.name == "I'm a server span" and s.kind == 2
    assert (s.start_ns, s.end_ns) == (1544712660000000000, 1544712661000000000)
    assert s.service_name == "my.service"
    assert dict(zip(s.resource_keys, s.resource_values, strict=True)) == {"service.name": "my.service"}
    assert dict(zip(s.attr_keys, s.attr_values, strict=True)) == {"my.span.attr": "some value"}
    assert (s.scope_name, s.scope_version) == ("my.library", "1.0.0")


def test_json_and_gzipped_protobuf_agree() -> None:
    from_json = ot.decode_traces((OTLP / "trace.json").read_bytes(), "application/json")
    req = ot.parse_json((OTLP / "trace.json").read_bytes())
    body = gzip.compress(req.SerializeToString())
    assert ot.decode_traces(body, "application/x-protobuf", "gzip").spans == from_json.spans


def test_sdk_encoded_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "host.name": "h1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("clearsight.test", "2.0")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes={"http.status": 500}) as root:
        with tracer.start_as_current_span("SELECT cart", kind=SpanKind.CLIENT) as child:
            child.add_event("retry", {"n": 1})
            child.set_status(Status(StatusCode.ERROR, "timeout"))
        root.add_event("done")
    provider.shutdown()
    sdk = exporter.get_finished_spans()
    b = ot.decode_traces(encode_spans(sdk).SerializeToString(), "application/x-protobuf")
    by_name = {s.name: s for s in b.spans}
    root_s, child_s = by_name["GET /cart"], by_name["SELECT cart"]
    sdk_root = next(s for s in sdk if s.name == "GET /cart")
    assert root_s.trace_id == sdk_root.context.trace_id.to_bytes(16, "big") == child_s.trace_id
    assert root_s.span_id == sdk_root.context.span_id.to_bytes(8, "big") == child_s.parent_span_id
    assert root_s.parent_span_id == b""
    assert (root_s.kind, child_s.kind) == (2, 3)
    assert (child_s.status_code, child_s.status_message) == (2, "timeout")
    assert (root_s.start_ns, root_s.end_ns) == (sdk_root.start_time, sdk_root.end_time)
    assert dict(zip(root_s.attr_keys, root_s.attr_values, strict=True)) == {"http.status": "500"}
    assert root_s.service_name == "checkout"
    assert dict(zip(root_s.resource_keys, root_s.resource_values, strict=True))["host.name"] == "h1"
    assert (root_s.scope_name, root_s.scope_version) == ("clearsight.test", "2.0")
    assert (root_s.events, child_s.events, root_s.links) == (1, 1, 0)


def test_unknown_service_and_odd_json_shapes() -> None:
    doc = {"resource_spans": [{"scope_spans": [{"spans": [{
        "trace_id": TID, "span_id": SID, "name": "x", "start_time_unix_nano": 5, "end_time_unix_nano": 5,
        "kind": "SPAN_KIND_PRODUCER", "status": {"code": "STATUS_CODE_OK"}, "unknownField": 1}]}]}]}
    [s] = _json(doc).spans
    assert s.service_name == "unknown_service" and s.kind == 4 and s.status_code == 1


@pytest.mark.parametrize(
    ("span", "field", "why"),
    [
        ({"traceId": "zz"}, "traceId", "not hex"),
        ({"traceId": "00ff"}, "traceId", "must be 16 bytes, got 2"),
        ({"traceId": "0" * 32}, "traceId", "all zero"),
        ({"traceId": ""}, "traceId", "required"),
        ({"spanId": "00ff00ff00ff00ff00"}, "spanId", "must be 8 bytes, got 9"),
        ({"spanId": "0" * 16}, "spanId", "all zero"),
        ({"parentSpanId": "0102"}, "parentSpanId", "must be 8 bytes"),
        ({"startTimeUnixNano": "0"}, "startTimeUnixNano", "required"),
        ({"startTimeUnixNano": str(2**63)}, "startTimeUnixNano", "int64"),
        ({"endTimeUnixNano": "999"}, "endTimeUnixNano", "before startTimeUnixNano 1000"),
        ({"kind": 9}, "kind", "not a span kind"),
        ({"status": {"code": 7}}, "status.code", "not a status code"),
    ],
)
def test_bad_spans_name_the_field(span: dict[str, Any], field: str, why: str) -> None:
    with pytest.raises(ot.OtlpTracesError) as ei:
        _json(_one(**span))
    assert ei.value.field == f"resourceSpans[0].scopeSpans[0].spans[0].{field}"
    assert why in ei.value.description and ei.value.status == 400


def test_second_span_is_named() -> None:
    doc = _one()
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**copy.deepcopy(spans[0]), "spanId": "ab"})
    with pytest.raises(ot.OtlpTracesError, match=r"spans\[1\]\.spanId"):
        _json(doc)


def test_limits_and_media() -> None:
    doc = _one(attributes=[{"key": f"k{i}", "value": {"stringValue": "v"}} for i in range(5)])
    with pytest.raises(LimitExceeded, match=r"spans\[0\]: 5 attributes"):
        _json(doc, limits=LogLimits(max_attributes_per_entry=4))
    two = _one()
    two["resourceSpans"][0]["scopeSpans"][0]["spans"] *= 2
    with pytest.raises(LimitExceeded):
        _json(two, limits=LogLimits(max_entries_per_request=1))
    with pytest.raises(LimitExceeded, match="name"):
        _json(_one(name="x" * 100), limits=LogLimits(max_line_bytes=10))
    with pytest.raises(PayloadTooLarge):
        _json(_one(), limits=LogLimits(max_body_bytes=10))
    with pytest.raises(PayloadTooLarge):
        ot.decode_traces(gzip.compress(b" " * 5000 + orjson.dumps(_one())), "application/json", "gzip",
                         limits=LogLimits(max_decompressed_bytes=1000))
    with pytest.raises(UnsupportedMediaType):
        ot.decode_traces(b"{}", "text/plain")
    with pytest.raises(ot.OtlpTracesError, match="cannot decompress"):
        ot.decode_traces(b"not gzip", "application/json", "gzip")
    with pytest.raises(ot.OtlpTracesError, match="ExportTraceServiceRequest"):
        ot.decode_traces(b"\x0a\xff\xff\xff", "application/x-protobuf")
    assert len(ot.decode_traces(b"", "application/x-protobuf")) == 0


def _shared(resource_value: str, spans: int, scope_name: str = "lib") -> dict[str, Any]:
    """One resource (``r`` = ``resource_value``) and one scope over ``spans`` spans."""
    doc = _one()
    rs = doc["resourceSpans"][0]
    rs["resource"] = {"attributes": [{"key": "r", "value": {"stringValue": resource_value}}]}
    ss = rs["scopeSpans"][0]
    ss["scope"] = {"name": scope_name}
    ss["spans"] = [{**ss["spans"][0], "spanId": f"{i + 1:016x}"} for i in range(spans)]
    return doc


def test_resource_and_scope_copied_into_every_span_are_bounded_per_request() -> None:
    # each stored span keeps its resource's attributes and its scope's name: a large resource over many
    # small spans would make a stored copy far larger than the request; at most max_decompressed_bytes
    lim = LogLimits(max_decompressed_bytes=1_000_000)
    per_span = len("r") + 999 + len("lib")  # bytes of the resource and scope text each span keeps
    fits = 1_000_000 // per_span
    assert len(_json(_shared("v" * 999, fits), limits=lim)) == fits
    with pytest.raises(LimitExceeded, match=r"resourceSpans\[0\]\.scopeSpans\[0\].*max_decompressed_bytes"):
        _json(_shared("v" * 999, fits + 1), limits=lim)
    with pytest.raises(LimitExceeded, match=r"scopeSpans\[0\]\.scope\.name"):
        _json(_shared("v", 1, scope_name="s" * 100), limits=LogLimits(max_line_bytes=10))


def _decodes_or_refuses(decode: Callable[[], SpanBatch]) -> None:
    """A fuzzed body decodes into well-formed spans, or is refused with an allowed error and a message."""
    try:
        b = decode()
    except IngestError as e:
        assert isinstance(e, ALLOWED) and e.message
        return
    for s in b.spans:
        assert len(s.trace_id) == 16 and any(s.trace_id)
        assert len(s.span_id) == 8 and any(s.span_id)
        assert len(s.parent_span_id) in (0, 8)
        assert 0 < s.start_ns <= s.end_ns < 2**63
        assert len(s.attr_keys) == len(s.attr_values)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_protobuf_bytes(data: bytes) -> None:
    _decodes_or_refuses(lambda: ot.decode_traces(data, "application/x-protobuf"))


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_mutated_sample(data: bytes) -> None:
    base = ot.parse_json((OTLP / "trace.json").read_bytes()).SerializeToString()
    cut = len(data) % (len(base) + 1)
    _decodes_or_refuses(lambda: ot.decode_traces(base[:cut] + data + base[cut:], "application/x-protobuf"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
    | st.sampled_from([TID, SID, "0" * 32]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "parentSpanId", "name",
                         "startTimeUnixNano", "endTimeUnixNano", "kind", "status", "code", "attributes", "key",
                         "value", "stringValue", "links", "events", "x"]), inner, max_size=5),
    max_leaves=25,
)


@FUZZ
@given(json_values)
def test_fuzz_json(doc: object) -> None:
    _decodes_or_refuses(lambda: _json(doc))


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["application/json", "application/x-protobuf"]))
def test_fuzz_gzip_bodies(data: bytes, ctype: str) -> None:
    for body in (data, gzip.compress(data)):
        _decodes_or_refuses(lambda body=body: ot.decode_traces(body, ctype, "gzip"))
