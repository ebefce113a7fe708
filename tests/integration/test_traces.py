"""Trace ingestion against a real ``clearsight server``: the OpenTelemetry Python SDK's span exporters
over OTLP/HTTP (main port and the OTLP/HTTP port) and OTLP/gRPC store spans that come back by trace id;
spans outside the time window are a partial success; bad input is a precise 4xx (INVALID_ARGUMENT on
gRPC) with nothing written; self-metrics count spans per protocol; acknowledged span batches survive
``kill -9`` of the server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.integration.test_otlp_grpc_logs_traces import _counter
from tests.support.peers import Proc, free_port, start_clearsight

PB = {"Content-Type": "application/x-protobuf"}


def otlp_spans(n: int, *, trace: int = 1, start_ns: int | None = None, service: str = "svc",
               first_span: int = 1) -> bytes:
    """An ExportTraceServiceRequest with ``n`` spans of trace ``trace`` (protobuf bytes)."""
    t0 = time.time_ns() - 1_000_000_000 if start_ns is None else start_ns
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    ss = rs.scope_spans.add()
    for i in range(n):
        sp = ss.spans.add(name=f"op {i}", start_time_unix_nano=t0 + i, end_time_unix_nano=t0 + i + 1000)
        sp.trace_id = trace.to_bytes(16, "big")
        sp.span_id = (first_span + i).to_bytes(8, "big")
    return req.SerializeToString()


def status_message(content: bytes) -> str:
    return str(status_pb2.Status.FromString(content).message)


def _trace(url: str, trace_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/traces/{trace_id}", timeout=10)
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    spans: list[dict[str, Any]] = r.json()["data"]["spans"]
    return spans


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str, str]]:
    work = tmp_path_factory.mktemp("traces")
    http_port, grpc_target = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = start_clearsight(work, args=["--otlp-http-listen", http_port, "--otlp-grpc-listen", grpc_target])
    try:
        yield proc, f"http://{http_port}", grpc_target
    finally:
        proc.stop()


def _emit(exporter: SpanExporter, service: str) -> tuple[str, dict[str, str]]:
    """A server span with a failing client child, exported by ``exporter``: (trace id, name -> span id)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, "host.name": "web-1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout", "1.2")
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER,
                                      attributes={"http.route": "/checkout", "http.status_code": 502}) as root:
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as child:
            child.add_event("retry")
            child.set_status(Status(StatusCode.ERROR, "gateway timeout"))
    provider.force_flush()
    provider.shutdown()
    ids = {"POST /checkout": f"{root.get_span_context().span_id:016x}",
           "charge card": f"{child.get_span_context().span_id:016x}"}
    return f"{root.get_span_context().trace_id:032x}", ids


def _check_trace(url: str, trace_id: str, ids: dict[str, str], service: str) -> None:
    spans = _trace(url, trace_id)
    assert [s["name"] for s in spans] == ["POST /checkout", "charge card"]  # by start time
    root, child = spans
    assert {s["spanId"] for s in spans} == set(ids.values())
    assert root["spanId"] == ids["POST /checkout"] and root["parentSpanId"] == ""
    assert child["parentSpanId"] == ids["POST /checkout"] and child["traceId"] == trace_id
    assert (root["kind"], child["kind"]) == ("server", "client")
    assert child["status"] == {"code": "error", "message": "gateway timeout"} and child["events"] == 1
    assert root["attributes"] == {"http.route": "/checkout", "http.status_code": "502"}
    assert root["serviceName"] == service and root["resource"]["host.name"] == "web-1"
    assert root["scope"] == {"name": "shop.checkout", "version": "1.2"}
    assert int(root["endTimeUnixNano"]) >= int(child["endTimeUnixNano"]) > int(child["startTimeUnixNano"])


@pytest.mark.parametrize("port", ["main", "otlp"])
def test_sdk_http_exporter_spans_come_back_by_trace_id(server: tuple[Proc, str, str], port: str) -> None:
    proc, otlp_url, _ = server
    base = proc.url if port == "main" else otlp_url
    before = _counter(proc.url, "clearsight_ingested_spans_total", protocol="otlp_traces_http")
    trace_id, ids = _emit(HttpSpanExporter(endpoint=f"{base}/v1/traces"), f"checkout-http-{port}")
    _check_trace(proc.url, trace_id, ids, f"checkout-http-{port}")
    assert _counter(proc.url, "clearsight_ingested_spans_total", protocol="otlp_traces_http") == before + 2


def test_sdk_grpc_exporter_spans_come_back_by_trace_id(server: tuple[Proc, str, str]) -> None:
    proc, _, target = server
    trace_id, ids = _emit(GrpcSpanExporter(endpoint=target, insecure=True), "checkout-grpc")
    _check_trace(proc.url, trace_id, ids, "checkout-grpc")
    assert _counter(proc.url, "clearsight_ingested_spans_total", protocol="otlp_traces_grpc") == 2
    assert _counter(proc.url, "clearsight_write_requests_total", protocol="otlp_traces_grpc", code="200") == 2


def test_spans_outside_the_time_window_are_a_partial_success(server: tuple[Proc, str, str]) -> None:
    proc, _, _ = server
    old = time.time_ns() - 40 * 86_400 * 10**9  # past logs.reject_older_than (the span window)
    req = trace_service_pb2.ExportTraceServiceRequest()
    req.MergeFromString(otlp_spans(2, trace=0xA1))
    req.MergeFromString(otlp_spans(1, trace=0xA1, start_ns=old, first_span=9))
    before = _counter(proc.url, "clearsight_rejected_spans_total", protocol="otlp_traces_http")
    r = httpx.post(f"{proc.url}/v1/traces", content=req.SerializeToString(), headers=PB, timeout=10)
    assert r.status_code == 200, r.text
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 1
    assert "too old" in resp.partial_success.error_message and f"{9:016x}" in resp.partial_success.error_message
    assert [s["spanId"] for s in _trace(proc.url, f"{0xA1:032x}")] == [f"{1:016x}", f"{2:016x}"]
    assert _counter(proc.url, "clearsight_rejected_spans_total", protocol="otlp_traces_http") == before + 1
    # the same in OTLP/JSON: the answer is JSON, rejectedSpans a decimal string
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": f"{0xA2:032x}", "spanId": f"{1:016x}", "name": "old", "startTimeUnixNano": str(old),
        "endTimeUnixNano": str(old + 5)}]}]}]}
    r = httpx.post(f"{proc.url}/v1/traces", content=orjson.dumps(doc), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedSpans"] == "1", r.text
    assert _trace(proc.url, f"{0xA2:032x}") == []


def test_grpc_partial_success_for_spans_outside_the_time_window(server: tuple[Proc, str, str]) -> None:
    proc, _, target = server
    req = trace_service_pb2.ExportTraceServiceRequest()
    req.MergeFromString(otlp_spans(1, trace=0xA3))
    req.MergeFromString(otlp_spans(2, trace=0xA3, start_ns=time.time_ns() + 3_600 * 10**9, first_span=5))
    before = _counter(proc.url, "clearsight_rejected_spans_total", protocol="otlp_traces_grpc")
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        resp = trace_service_pb2.ExportTraceServiceResponse.FromString(export(req.SerializeToString(), timeout=10))
    assert resp.partial_success.rejected_spans == 2 and "too new" in resp.partial_success.error_message
    assert [s["spanId"] for s in _trace(proc.url, f"{0xA3:032x}")] == [f"{1:016x}"]
    assert _counter(proc.url, "clearsight_rejected_spans_total", protocol="otlp_traces_grpc") == before + 2


def _bad_request_field(r: httpx.Response) -> str:
    st = status_pb2.Status.FromString(r.content)
    br = error_details_pb2.BadRequest()
    assert st.details[0].Unpack(br)
    return str(br.field_violations[0].field)


def test_bad_input_is_a_precise_4xx_and_writes_nothing(server: tuple[Proc, str, str]) -> None:
    proc, _, target = server
    url = f"{proc.url}/v1/traces"
    before = _counter(proc.url, "clearsight_ingested_spans_total", protocol="otlp_traces_http")
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(otlp_spans(3, trace=0xB1))
    req.resource_spans[0].scope_spans[0].spans[2].span_id = b"\x01\x02"  # the third span is bad
    r = httpx.post(url, content=req.SerializeToString(), headers=PB)
    assert r.status_code == 400 and _bad_request_field(r) == "resourceSpans[0].scopeSpans[0].spans[2].spanId"
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(otlp_spans(2, trace=0xB1))
    sp = req.resource_spans[0].scope_spans[0].spans[1]
    sp.end_time_unix_nano = sp.start_time_unix_nano - 1
    r = httpx.post(url, content=req.SerializeToString(), headers=PB)
    assert r.status_code == 400 and _bad_request_field(r).endswith("spans[1].endTimeUnixNano")
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": f"{0xB1:032x}", "spanId": "zz"}]}]}]}
    r = httpx.post(url, content=orjson.dumps(doc), headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "spans[0].spanId" in r.json()["message"], r.text
    assert httpx.post(url, content=b"\x0a\xff\xff\xff", headers=PB).status_code == 400
    assert httpx.post(url, content=otlp_spans(1, trace=0xB1), headers={"Content-Type": "text/plain"}).status_code == 415
    r = httpx.post(url, content=otlp_spans(1, trace=0xB1), headers={**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "decompress" in status_message(r.content)
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        req = trace_service_pb2.ExportTraceServiceRequest.FromString(otlp_spans(1, trace=0xB1))
        req.resource_spans[0].scope_spans[0].spans[0].trace_id = bytes(16)
        with pytest.raises(grpc.RpcError) as ei:
            export(req.SerializeToString(), timeout=10)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "traceId" in (ei.value.details() or "")
        with pytest.raises(grpc.RpcError) as ei:
            export(b"\x0a\xff\xff\xff", timeout=10)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trace(proc.url, f"{0xB1:032x}") == []
    assert _counter(proc.url, "clearsight_ingested_spans_total", protocol="otlp_traces_http") == before
    assert _counter(proc.url, "clearsight_rejected_requests_total", protocol="otlp_traces_grpc", reason="invalid") == 2


def test_trace_read_errors(server: tuple[Proc, str, str]) -> None:
    proc, _, _ = server
    for bad in ("xyz", "0" * 32, "ab" * 17, "g" * 32):
        r = httpx.get(f"{proc.url}/api/v1/traces/{bad}", timeout=10)
        assert r.status_code == 400 and r.json()["errorType"] == "bad_data", bad
    r = httpx.get(f"{proc.url}/api/v1/traces/{0xDEAD:032x}", timeout=10)
    assert r.status_code == 404 and r.json()["errorType"] == "not_found"


def test_a_trace_read_answers_the_earliest_spans_up_to_the_limit_and_says_it_is_truncated(
        server: tuple[Proc, str, str]) -> None:
    proc, _, _ = server
    limit = 10_000  # the documented bound of a trace read (docs/traces.md)
    r = httpx.post(f"{proc.url}/v1/traces", content=otlp_spans(limit + 1, trace=0x7777), headers=PB, timeout=60)
    assert r.status_code == 200, r.content
    r = httpx.get(f"{proc.url}/api/v1/traces/{0x7777:032x}", timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["truncated"] is True
    assert [s["name"] for s in data["spans"]] == [f"op {i}" for i in range(limit)]  # by start time: not op 10000
    r = httpx.post(f"{proc.url}/v1/traces", content=otlp_spans(limit, trace=0x7778), headers=PB, timeout=60)
    assert r.status_code == 200, r.content
    data = httpx.get(f"{proc.url}/api/v1/traces/{0x7778:032x}", timeout=60).json()["data"]
    assert data["truncated"] is False and len(data["spans"]) == limit


def test_acked_span_batches_survive_kill9(tmp_path: Any) -> None:
    data_dir = tmp_path / "data"
    acked: list[int] = []
    for round_no in range(2):
        proc = start_clearsight(tmp_path / f"round{round_no}", data_dir=data_dir)
        stop = threading.Event()

        def send(first: int, url: str = proc.url, stop: threading.Event = stop) -> None:
            trace = first
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    try:
                        r = client.post(f"{url}/v1/traces", content=otlp_spans(20, trace=trace), headers=PB)
                    except httpx.HTTPError:
                        return  # the server died
                    if r.status_code == 200:
                        acked.append(trace)
                    trace += 1

        senders = [threading.Thread(target=send, args=(1 + round_no * 20_000 + k * 10_000,)) for k in range(2)]
        for s in senders:
            s.start()
        deadline = time.monotonic() + 30
        while len(acked) < 10 * (round_no + 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill9()
        stop.set()
        for s in senders:
            s.join(15)
    assert len(acked) >= 20, "the senders should have been acknowledged many batches"
    proc = start_clearsight(tmp_path / "after", data_dir=data_dir)
    try:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        missing = [t for t in acked if len(_trace(proc.url, f"{t:032x}")) != 20]
        assert not missing, f"{len(missing)} acknowledged span batches lost, e.g. {missing[:5]}"
    finally:
        proc.stop()
