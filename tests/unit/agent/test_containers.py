"""The container collector on canned Engine API answers (exact values), and the Engine client over a
real unix socket."""

from __future__ import annotations

import http.server
import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clearsight.agent.collectors.containers import ContainerCollector, parse_engine_time
from clearsight.agent.engine_api import EngineClient, EngineError
from clearsight.agent.sample import Sample

CID = "9370079abed542fe85dcc1bfce328c9276e70d07194d3051dff52ff342037202"
LISTING = [
    {"Id": CID, "Names": ["/web"], "Image": "localhost/bb:test", "State": "running", "Labels": {"app": "demo",
                                                                                                   "com.x/y": "1"}},
    {"Id": "deadbeef" * 8, "Names": ["/old"], "Image": "busybox", "State": "exited", "Labels": {}},
]
INSPECT = {"State": {"StartedAt": "2026-12-04T21:02:14.500000000Z", "Health": {"Status": "healthy"}},
           "RestartCount": 2}


def stats(total: int, system: int) -> dict[str, Any]:
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": total, "usage_in_usermode": total - 10_000_000,
                                    "usage_in_kernelmode": 10_000_000},
                      "system_cpu_usage": system, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 0}},
        "memory_stats": {"usage": 323584, "limit": 25276203008},
        "pids_stats": {"current": 3},
        "networks": {"eth0": {"rx_bytes": 542, "rx_packets": 5, "rx_errors": 0, "rx_dropped": 1,
                              "tx_bytes": 1166, "tx_packets": 7, "tx_errors": 0, "tx_dropped": 0}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "read", "value": 4096}, {"major": 8, "minor": 0, "op": "write", "value": 100},
            {"major": 8, "minor": 16, "op": "Read", "value": 4096}]},
    }


class FakeEngine:
    def __init__(self) -> None:
        self.stats = [stats(2_000_000_000, 100_000_000_000), stats(2_500_000_000, 102_000_000_000)]
        self.calls: list[str] = []

    def get(self, path: str) -> Any:
        self.calls.append(path)
        if path == "/containers/json?all=true":
            return LISTING
        if path == f"/containers/{CID}/json":
            return INSPECT
        if path.startswith(f"/containers/{CID}/stats"):
            return self.stats.pop(0)
        raise EngineError(f"unexpected {path}")


def by_name(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.name, []).append(s)
    return out


def test_two_collections_exact_values() -> None:
    eng = FakeEngine()
    c = ContainerCollector(eng)
    first = by_name(c.collect())
    assert "clearsight_container_cpu_usage_ratio" not in first  # one sample: no share yet
    second = by_name(c.collect())
    base = {"id": CID, "name": "web", "image": "localhost/bb:test", "container_label_app": "demo",
            "container_label_com_x_y": "1"}

    def one(fam: str, **extra: str) -> float:
        [s] = [s for s in second[fam] if dict(s.labels) == {**base, **extra}]
        return s.value

    # 0.5 s of CPU over 2 s of all CPUs' time on 2 CPUs: half a core
    assert one("clearsight_container_cpu_usage_ratio") == pytest.approx(0.5)
    assert one("container_cpu_usage_seconds_total") == 2.5
    assert one("container_cpu_system_seconds_total") == 0.01
    assert one("container_memory_usage_bytes") == 323584
    assert one("container_spec_memory_limit_bytes") == 25276203008
    assert one("container_threads") == 3
    assert one("container_network_receive_bytes_total", interface="eth0") == 542
    assert one("container_network_receive_packets_dropped_total", interface="eth0") == 1
    assert one("container_network_transmit_packets_total", interface="eth0") == 7
    assert one("container_fs_reads_bytes_total") == 8192
    assert one("container_fs_writes_bytes_total") == 100
    assert one("container_start_time_seconds") == 1796418134.5
    assert one("clearsight_container_restarts_total") == 2
    assert one("clearsight_container_health", status="healthy") == 1
    assert one("clearsight_container_state", state="running") == 1
    [old] = second["clearsight_container_state"][1:]
    assert dict(old.labels) == {"id": "deadbeef" * 8, "name": "old", "image": "busybox", "state": "exited"}
    assert [i.name for i in c.last_containers] == ["web", "old"]
    assert not any("deadbeef" in p for p in eng.calls)  # no stats for a stopped container


def test_engine_down_is_an_error_not_a_crash() -> None:
    class Down:
        def get(self, path: str) -> Any:
            raise EngineError("connection refused")

    c = ContainerCollector(Down())
    assert c.collect() == [] and c.errors == {"list": 1}


def test_a_lasting_engine_outage_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky:
        up = False

        def get(self, path: str) -> Any:
            if not self.up:
                raise EngineError("connection refused")
            return []

    eng = Flaky()
    c = ContainerCollector(eng)
    with caplog.at_level(logging.DEBUG, logger="clearsight.agent.containers"):
        c.collect()
        c.collect()
        eng.up = True
        c.collect()
        eng.up = False
        c.collect()
    assert c.errors == {"list": 3}
    assert [r.levelname for r in caplog.records] == ["WARNING", "DEBUG", "WARNING"]  # again after recovery


def test_parse_engine_time() -> None:
    assert parse_engine_time("0001-01-01T00:00:00Z") is None
    assert parse_engine_time("1970-01-01T00:00:01.123456789Z") == pytest.approx(1.123456)
    assert parse_engine_time("junk") is None


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/v1.41/containers/json?all=true":
            body, status = json.dumps(LISTING).encode(), 200
        else:
            body, status = b'{"message":"no such container"}', 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def engine_socket(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "engine.sock")
    srv = _UnixServer(path, _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield path
    srv.shutdown()
    srv.server_close()


def test_engine_client_over_a_unix_socket(engine_socket: str) -> None:
    client = EngineClient(engine_socket, timeout=5)
    assert client.get("/containers/json?all=true") == LISTING
    assert client.get("/containers/json?all=true") == LISTING  # the kept-alive connection
    with pytest.raises(EngineError, match=r"HTTP 404: .*no such container"):
        client.get("/containers/nope/json")
    client.close()
    with pytest.raises(EngineError, match="FileNotFoundError"):
        EngineClient(engine_socket + ".missing").get("/containers/json")
