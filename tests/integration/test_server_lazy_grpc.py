"""grpcio (~12 MiB of RSS, docs/storage.md "Memory") is loaded by a server only when a gRPC
listener is configured: without one, a server that took remote-write and answered a query has no
grpc library mapped; with one, it is mapped and the OTLP/gRPC service answers (a malformed export
gets INVALID_ARGUMENT, through the status-code table built on first use)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import httpx
import pytest

from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy
from tests.support.peers import free_port, start_clearsight


def _grpc_mapped(pid: int) -> bool:
    return "cygrpc" in Path(f"/proc/{pid}/maps").read_text()


def test_no_grpc_listener_no_grpc_library(tmp_path: Path) -> None:
    proc = start_clearsight(tmp_path)  # --otlp-grpc-listen ""
    try:
        now_ms = int(time.time() * 1000)
        body = snappy(len_field(1, encode_labels([("__name__", "up"), ("job", "a")]) + len_field(2, encode_sample(now_ms, 1.0))))
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            r = c.post("/api/v1/write", content=body, headers={
                "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0"})
            assert r.status_code == 204, r.text
            got = c.get("/api/v1/query", params={"query": "up"}).json()["data"]["result"]
            assert [s["value"][1] for s in got] == ["1"]
        assert not _grpc_mapped(proc.pid)
    finally:
        proc.stop()


def test_a_grpc_listener_loads_grpc_and_serves(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    proc = start_clearsight(tmp_path, args=["--otlp-grpc-listen", target])
    try:
        assert _grpc_mapped(proc.pid)
        with grpc.insecure_channel(target) as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
            with pytest.raises(grpc.RpcError) as ei:
                export(b"\x0a\xff\xff\xff", timeout=10)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        proc.stop()
