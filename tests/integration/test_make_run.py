"""``make run`` (scripts/run.sh): the server on ./data and, once it is ready, the local agent shipping
this host over OTLP/gRPC (issue 12: gRPC by default); when the gRPC port is taken by another program
before the server starts, the agent ships over HTTP instead, never to the other program. Both stop on
SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.peers import REPO, free_port

HOST_SERIES = 'node_load1{job="node"}'


def run_sh(cwd: Path, port: int, grpc_port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PY": sys.executable, "AGENT_ARGS": "--interval 1s"}
    return subprocess.Popen(
        ["bash", str(REPO / "scripts" / "run.sh"), "--listen", f"127.0.0.1:{port}", "--otlp-http-listen", "",
         "--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def ingested_by_protocol(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^clearsight_ingested_samples_total\{protocol="([^"]+)"\} (\S+)$', text, re.M)}


def wait_for_host_series(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "make run exited"
        try:
            r = httpx.get(url + "/api/v1/query", params={"query": HOST_SERIES}, timeout=10)
            if r.status_code == 200 and r.json()["data"]["result"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no {HOST_SERIES} from the local agent within {timeout:.0f}s")


def stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        raise AssertionError("make run did not stop on SIGTERM") from None
    return out.decode(errors="replace")


def test_make_run_starts_the_agent_shipping_over_grpc(tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    proc = run_sh(tmp_path, port, grpc_port)
    try:
        wait_for_host_series(url, proc)
        by_protocol = ingested_by_protocol(url)
    finally:
        out = stop(proc)
    assert by_protocol.get("otlp_grpc", 0) > 0, (by_protocol, out[-3000:])
    assert by_protocol.get("remote_write", 0) == 0, by_protocol
    assert proc.returncode == 0, out[-3000:]
    assert (tmp_path / "data").is_dir()


def test_a_taken_grpc_port_makes_the_agent_ship_over_http(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:  # e.g. a local OTel Collector
        other.bind(("127.0.0.1", 0))
        other.listen(8)
        grpc_port = other.getsockname()[1]
        proc = run_sh(tmp_path, port, grpc_port)
        try:
            wait_for_host_series(url, proc)
            by_protocol = ingested_by_protocol(url)
        finally:
            out = stop(proc)
    assert f"127.0.0.1:{grpc_port} is taken by another program: the local agent ships over HTTP" in out
    assert by_protocol.get("remote_write", 0) > 0 and by_protocol.get("otlp_grpc", 0) == 0, by_protocol
