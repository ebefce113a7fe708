"""An operator's first hour: a busy OTLP port is a warning (the server starts without that listener);
a second server on the same data directory is a one-line error naming the process holding it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson

from tests.support.peers import free_port, start_clearsight


@contextmanager
def _held_port() -> Iterator[int]:
    """A port some other program listens on (like a local OTel Collector on 4317/4318)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _json_lines(text: str) -> list[dict[str, object]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(orjson.loads(line))
    return out


def test_busy_otlp_ports_are_warnings_and_the_server_starts_without_them(tmp_path: Path) -> None:
    with _held_port() as http_port, _held_port() as grpc_port:
        cs = start_clearsight(tmp_path, args=["--otlp-http-listen", f"127.0.0.1:{http_port}",
                                              "--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"])
        try:
            r = httpx.get(cs.url + "/api/v1/query", params={"query": "1+1"}, timeout=30)
            assert r.json()["data"]["result"][1] == "2"
            log = cs.log()
        finally:
            cs.stop()
    warnings = [x for x in _json_lines(log) if x["level"] == "warning"]
    http = [x for x in warnings if "OTLP/HTTP listener not started" in str(x["msg"])]
    grpc = [x for x in warnings if "OTLP/gRPC listener not started" in str(x["msg"])]
    assert len(http) == 1 and f"127.0.0.1:{http_port}" in str(http[0]["msg"]), warnings
    assert "--otlp-http-listen" in str(http[0]["msg"])
    assert len(grpc) == 1 and "--otlp-grpc-listen" in str(grpc[0]["msg"]), warnings
    assert "Traceback" not in log


def test_second_server_on_a_locked_data_dir_prints_one_line_naming_the_holder(tmp_path: Path) -> None:
    first = start_clearsight(tmp_path / "first", data_dir=tmp_path / "data")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "clearsight", "server", "--data-dir", str(tmp_path / "data"),
             "--listen", f"127.0.0.1:{free_port()}", "--otlp-http-listen", "", "--otlp-grpc-listen", ""],
            capture_output=True, text=True, timeout=120)
        assert httpx.get(first.url + "/ready", timeout=10).status_code == 200  # the first one is untouched
    finally:
        first.stop()
    assert second.returncode == 1
    assert "Traceback" not in second.stderr and "Traceback" not in second.stdout
    plain = [line for line in second.stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1, second.stderr
    assert plain[0].startswith(f"clearsight: the data directory {tmp_path / 'data'} is in use by another process: "
                               f"PID {first.pid} (")
    assert "clearsight server" in plain[0]  # the holder's command line
