"""The event gRPC service's messages: the committed generated code is what ``grpc_tools.protoc``
makes of the published ``docs/clearsight_events.proto``; the decoder turns any bytes into events or
an ``EventValidationError`` naming the field (hypothesis), and stream limits hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.api.events_grpc import decode_event, decode_stream, event_message, message_dict, query_of
from clearsight.api.proto import clearsight_events_pb2 as pb
from clearsight.ingest.events import EventValidationError, event_from_dict
from clearsight.ingest.log_common import LimitExceeded, LogLimits
from clearsight.pipeline.errors import IngestError, PayloadTooLarge

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "src" / "clearsight" / "api" / "proto"
NOW = 1_700_000_000_000_000_000


def test_committed_code_is_what_protoc_generates_from_the_published_proto(tmp_path: Path) -> None:
    """The committed module's descriptor equals the one protoc compiles from docs/ (compared as
    messages, so a newer protoc's version banner does not matter), and the service compiles to a stub."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'docs'}",
            f"--descriptor_set_out={tmp_path / 'set.pb'}",
            f"--grpc_python_out={tmp_path}",
            str(ROOT / "docs" / "clearsight_events.proto"),
        ],
        check=True,
    )
    (published,) = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "set.pb").read_bytes()).file
    for msg in published.message_type:  # protoc fills json_name in descriptor sets, not in generated code
        for f in [*msg.field, *(f for nested in msg.nested_type for f in nested.field)]:
            f.ClearField("json_name")
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert committed == published, "regenerate src/clearsight/api/proto (see its __init__.py)"
    pyi = (GENERATED / "clearsight_events_pb2.pyi").read_text()
    assert all(
        f"class {m}(_message.Message)" in pyi
        for m in ("Event", "LogResponse", "QueryRequest", "QueryResponse")
    )
    assert "class EventServiceStub" in (tmp_path / "clearsight_events_pb2_grpc.py").read_text()


def test_message_round_trip_keeps_nanoseconds_and_integral_numbers() -> None:
    m = pb.Event(message="m", level="error", tags=["a"], resource={"host": "h", "empty": ""})
    m.timestamp.seconds, m.timestamp.nanos = 1_700_000_000, 123_456_789
    m.data.update({"n": 7, "f": 1.5, "nested": {"list": [1, 2.5, "x"]}})
    ev = decode_event(m.SerializeToString(), "event", now_ns=NOW, limits=LogLimits())
    assert ev.timestamp == 1_700_000_000_123_456_789 and ev.level == "ERROR" and ev.severity == "high"
    assert ev.data == {"n": 7, "f": 1.5, "nested": {"list": [1, 2.5, "x"]}}
    assert type(ev.data["n"]) is int and ev.resource == (("host", "h"),)
    back = event_message(ev)
    assert message_dict(back)["timestamp"] == ev.timestamp and back.id == ev.id


def test_unset_fields_take_the_http_defaults() -> None:
    ev = decode_event(
        pb.Event(message="hello").SerializeToString(),
        "event",
        now_ns=NOW,
        limits=LogLimits(),
    )
    same = event_from_dict({"message": "hello", "id": ev.id}, "event", now_ns=NOW, limits=LogLimits())
    assert ev == same and ev.timestamp == NOW and ev.level == "INFO" and ev.severity == "low"


def test_stream_limits_count_and_bytes() -> None:
    one = pb.Event(message="x" * 100).SerializeToString()
    with pytest.raises(LimitExceeded, match="max_entries_per_request"):
        decode_stream(iter([one] * 4), now_ns=NOW, limits=LogLimits(max_entries_per_request=3))
    with pytest.raises(PayloadTooLarge, match="max_decompressed_bytes"):
        decode_stream(iter([one] * 4), now_ns=NOW, limits=LogLimits(max_decompressed_bytes=300))
    with pytest.raises(EventValidationError) as ei:
        decode_stream(iter([one, b"\xff\xff"]), now_ns=NOW, limits=LogLimits())
    assert ei.value.field == "events[1]"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_fail_with_a_field(raw: bytes) -> None:
    try:
        ev = decode_event(raw, "event", now_ns=NOW, limits=LogLimits())
    except EventValidationError as e:
        assert e.field.startswith("event") and e.status == 400
        return
    assert ev.level in ("DEBUG", "INFO", "WARN", "ERROR")


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=20),
    st.sampled_from(["", "info", "WARNING", "Error", "trace", "debug"]),
    st.sampled_from(["", "LOW", "critical", "severe"]),
    st.lists(st.text(max_size=5), max_size=3),
)
def test_generated_messages_validate_like_the_http_api(
    message: str, level: str, severity: str, tags: list[str]
) -> None:
    m = pb.Event(id="i", message=message, level=level, severity=severity, tags=tags)
    d: dict[str, object] = (
        {"id": "i", "message": message, "tags": tags} if tags else {"id": "i", "message": message}
    )
    if level:
        d["level"] = level
    if severity:
        d["severity"] = severity
    try:
        want = event_from_dict(d, "event", now_ns=NOW, limits=LogLimits())
    except IngestError as e:
        with pytest.raises(EventValidationError) as ei:
            decode_event(m.SerializeToString(), "event", now_ns=NOW, limits=LogLimits())
        assert str(ei.value) == str(e)
        return
    assert decode_event(m.SerializeToString(), "event", now_ns=NOW, limits=LogLimits()) == want


def test_query_request_decoding() -> None:
    q = pb.QueryRequest(type=["a"], level=["warn"], limit=5, forward=True)
    q.end.seconds = 10
    got = query_of(q.SerializeToString())
    assert (got.types, got.levels, got.origins, got.start_ns, got.end_ns, got.limit, got.forward) == (
        ("a",),
        ("warn",),
        (),
        0,
        10_000_000_000,
        5,
        True,
    )
    with pytest.raises(ValueError, match="QueryRequest"):
        query_of(b"\xff\xff")
