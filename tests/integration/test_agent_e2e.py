"""The real agent (``clearsight agent``) against a real server on 127.0.0.1: the host's series are found
through the query API. The agent starts before the server (a host rebooting, a server restarting), so its first sends
fail and are retried from the buffer."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import free_port, start_clearsight

pytestmark = pytest.mark.peer


def query(url: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=30)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def wait_for(url: str, expr: str, n: int, agent: subprocess.Popen[bytes], log: Path) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90  # a guard against hanging, not a timing assertion
    while True:
        assert agent.poll() is None, f"the agent exited with {agent.returncode}:\n{log.read_text()[-3000:]}"
        result = query(url, expr)
        if len(result) >= n:
            return result
        assert time.monotonic() < deadline, f"{expr} has {len(result)} series, wanted {n}:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def cpus() -> int:
    return sum(1 for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("cpu") and ln[3] != " ")


def mem_total_bytes() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return float(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_agent_ships_this_host_to_the_server(tmp_path: Path, protocol: str) -> None:
    """OTLP/gRPC (the default: no protocol in the config) and remote-write over HTTP give the same series."""
    port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"server: {{url: '{url}', grpc_address: '127.0.0.1:{grpc_port}'}}\n"
        "metadata: {instance: e2e-host, tags: {env: test}}\n"
        f"shipper: {{{'' if protocol == 'grpc' else 'protocol: http, '}backoff_min: 100ms, backoff_max: 1s}}\n"
        f"buffer: {{dir: '{tmp_path / 'spool'}'}}\n"
        "collectors: {host: {interval: 1s}}\n"
        "self_metrics: {interval: 1s}\n"
        "log: {level: info}\n"
    )
    log = tmp_path / "agent.log"
    with open(log, "wb") as fh:
        agent = subprocess.Popen([sys.executable, "-m", "clearsight", "agent", "--config", str(cfg)],
                                 stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = None
    try:
        # the agent collects and retries while the server is not there yet
        deadline = time.monotonic() + 60
        while "cannot ship" not in log.read_text():
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        server_started = time.time()
        server = start_clearsight(tmp_path / "server", port=port, args=["--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"])
        sel = '{instance="e2e-host",job="node",env="test"}'
        cpu = wait_for(url, f"node_cpu_seconds_total{sel}", cpus() * 8, agent, log)
        assert {(s["metric"]["cpu"], s["metric"]["mode"]) for s in cpu} == {
            (str(c), m) for c in range(cpus())
            for m in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")}
        (mem,) = wait_for(url, f"node_memory_MemTotal_bytes{sel}", 1, agent, log)
        assert float(mem["value"][1]) == mem_total_bytes()
        (uname,) = wait_for(url, f"node_uname_info{sel}", 1, agent, log)
        assert uname["metric"]["nodename"] == socket.gethostname()
        wait_for(url, f"node_filesystem_avail_bytes{sel}", 1, agent, log)
        wait_for(url, f"rate(node_network_receive_bytes_total{sel}[1m])", 1, agent, log)
        sent = wait_for(url, f"clearsight_agent_samples_sent_total{sel} > 0", 1, agent, log)
        assert float(sent[0]["value"][1]) > 0
        # the collections made while the server was down arrived too, from the buffer
        (boot,) = query(url, f"node_boot_time_seconds{sel}[10m]")
        assert min(float(t) for t, _ in boot["values"]) < server_started
        assert "accepts samples again" in log.read_text()
        metrics = httpx.get(url + "/metrics", timeout=30).text
        wire = "otlp_grpc" if protocol == "grpc" else "remote_write"
        assert re.search(rf'^clearsight_ingested_samples_total{{protocol="{wire}"}} [1-9]', metrics, re.M), metrics
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60)
        if server is not None:
            server.stop()
    assert rc == 0, log.read_text()[-3000:]
    assert "agent stopped" in log.read_text()
