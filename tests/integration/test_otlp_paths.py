"""OTLP completeness on the server: Prometheus' OTLP path ``/api/v1/otlp/v1/metrics`` ingests like
``/v1/metrics``; ``/v1/traces`` stores spans (protobuf and JSON) and counts them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.server import build

PB = "application/x-protobuf"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


def test_prometheus_otlp_path_ingests(client: TestClient) -> None:
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="prom_path_gauge")
    m.gauge.data_points.add(as_double=4.5, time_unix_nano=time.time_ns() - 1_000_000_000)
    r = client.post("/api/v1/otlp/v1/metrics", content=req.SerializeToString(), headers={"Content-Type": PB})
    assert r.status_code == 200, r.text
    res = client.get("/api/v1/query", params={"query": "prom_path_gauge"}).json()["data"]["result"]
    assert [s["value"][1] for s in res] == ["4.5"]


@pytest.mark.parametrize("ctype", [PB, "application/json"])
def test_traces_path_stores_spans_and_counts_them(client: TestClient, ctype: str) -> None:
    req = trace_service_pb2.ExportTraceServiceRequest()
    sp = req.resource_spans.add().scope_spans.add().spans.add(name="GET /", start_time_unix_nano=time.time_ns(),
                                                               end_time_unix_nano=time.time_ns() + 5)
    sp.trace_id, sp.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    body = req.SerializeToString() if ctype == PB else orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": sp.trace_id.hex(), "spanId": sp.span_id.hex(), "name": "GET /",
        "startTimeUnixNano": str(sp.start_time_unix_nano), "endTimeUnixNano": str(sp.end_time_unix_nano)}]}]}]})
    r = client.post("/v1/traces", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), r.text
    if ctype == PB:
        assert trace_service_pb2.ExportTraceServiceResponse.FromString(r.content) == \
            trace_service_pb2.ExportTraceServiceResponse()
    else:
        assert r.json() == {}
    got = client.get(f"/api/v1/traces/{sp.trace_id.hex()}").json()["data"]["spans"]
    assert [(s["spanId"], s["name"], s["serviceName"]) for s in got] == [(sp.span_id.hex(), "GET /", "unknown_service")]
    exposition = client.get("/metrics").text
    assert 'clearsight_write_requests_total{code="200",protocol="otlp_traces_http"} 1.0' in exposition
    assert 'clearsight_ingested_spans_total{protocol="otlp_traces_http"} 1.0' in exposition
