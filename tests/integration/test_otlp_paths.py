"""OTLP completeness on the server: Prometheus' OTLP path ``/api/v1/otlp/v1/metrics`` ingests like
``/v1/metrics``; ``/v1/traces`` is an explicit, counted 501 (google.rpc.Status UNIMPLEMENTED)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
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
def test_traces_are_an_explicit_counted_501(client: TestClient, ctype: str) -> None:
    r = client.post("/v1/traces", content=b"{}" if "json" in ctype else b"", headers={"Content-Type": ctype})
    assert r.status_code == 501
    if "json" in ctype:
        doc = r.json()
        assert doc["code"] == code_pb2.UNIMPLEMENTED
        message = doc["message"]
    else:
        st = status_pb2.Status.FromString(r.content)
        assert st.code == code_pb2.UNIMPLEMENTED
        message = st.message
    assert "traces" in message and "later release" in message
    exposition = client.get("/metrics").text
    assert 'clearsight_write_requests_total{code="501",protocol="otlp_traces"} 1.0' in exposition
