"""grpcio (~12 MiB of RSS, docs/storage.md "Memory") is loaded by a server only when a gRPC
listener is configured: without one, a server that took remote-write and answered a query has no
grpc library mapped; with one, it is mapped and the OTLP/gRPC service answers (a malformed export
gets INVALID_ARGUMENT, through the status-code table built on first use)."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest

from tests.support.peers import free_port, start_clearsight
from tests.support.rw_smoke import write_and_query_up


def _grpc_mapped(pid: int) -> bool:
    return "cygrpc" in Path(f"/proc/{pid}/maps").read_text()


def test_no_grpc_listener_no_grpc_library(tmp_path: Path) -> None:
    proc = start_clearsight(tmp_path)  # --otlp-grpc-listen ""
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            write_and_query_up(c)
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
