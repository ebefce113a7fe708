"""OTLP/gRPC logs and traces against a real ``clearsight server`` with the OpenTelemetry SDK's gRPC
exporters: logs are stored and queryable, spans are stored and read back by trace id (more trace tests:
test_traces.py)."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.peers import Proc, free_port, start_clearsight


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    work: Path = tmp_path_factory.mktemp("grpc")
    target = f"127.0.0.1:{free_port()}"
    proc = start_clearsight(work, args=["--otlp-grpc-listen", target])
    try:
        yield proc, target
    finally:
        proc.stop()


def _lines(url: str, query: str) -> list[str]:
    r = httpx.get(f"{url}/loki/api/v1/query_range", params={"query": query, "direction": "forward"}, timeout=10)
    assert r.status_code == 200, r.text
    return [v[1] for s in r.json()["data"]["result"] for v in s["values"]]


def _counter(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


def test_sdk_grpc_log_exporter_lands_in_the_log_store(server: tuple[Proc, str]) -> None:
    proc, target = server
    provider = LoggerProvider(resource=Resource.create({"service.name": "grpc-logs"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=target, insecure=True)))
    with warnings.catch_warnings():  # the SDK's own handler is deprecated in favour of a contrib package
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger("clearsight-test-grpc-logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("order 7 shipped")
        logger.error("order 8 failed: out of stock")
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    assert _lines(proc.url, '{service_name="grpc-logs"}') == ["order 7 shipped", "order 8 failed: out of stock"]
    assert _counter(proc.url, "clearsight_write_requests_total", protocol="otlp_logs_grpc", code="200") == 2


def test_malformed_logs_message_is_invalid_argument_and_writes_nothing(server: tuple[Proc, str]) -> None:
    proc, target = server
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        with pytest.raises(grpc.RpcError) as ei:
            export(b"\x0a\xff\xff\xff", timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportLogsServiceRequest" in (ei.value.details() or "")
    assert _counter(proc.url, "clearsight_rejected_requests_total", protocol="otlp_logs_grpc",
                    reason="invalid") >= 1


def test_sdk_grpc_span_exporter_lands_in_the_span_store(server: tuple[Proc, str]) -> None:
    proc, target = server
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-traces"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=target, insecure=True)))
    with provider.get_tracer("t").start_as_current_span("work") as span:
        pass
    provider.shutdown()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    r = httpx.get(f"{proc.url}/api/v1/traces/{trace_id}", timeout=10)
    assert r.status_code == 200, r.text
    assert [(s["name"], s["serviceName"]) for s in r.json()["data"]["spans"]] == [("work", "grpc-traces")]
    assert _counter(proc.url, "clearsight_write_requests_total", protocol="otlp_traces_grpc", code="200") == 1
