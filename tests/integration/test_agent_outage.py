"""The server stops for a while during collection, then restarts on the same data: every collection the
agent made meanwhile arrives (it waited in the agent's disk buffer), none is lost, none counted twice."""

from __future__ import annotations

import os
import signal
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


def wait_log(log: Path, text: str, agent: subprocess.Popen[bytes], count: int = 1) -> None:
    deadline = time.monotonic() + 60  # a guard against hanging, not a timing assertion
    while log.read_text().count(text) < count:
        assert agent.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in the agent's log:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_outage_loses_nothing_and_duplicates_nothing(tmp_path: Path, protocol: str) -> None:
    port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    grpc = ["--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"]
    data = tmp_path / "data"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"server: {{url: '{url}', grpc_address: '127.0.0.1:{grpc_port}'}}\n"
        "metadata: {instance: outage-host}\n"
        f"shipper: {{protocol: {protocol}, backoff_min: 100ms, backoff_max: 500ms}}\n"
        f"buffer: {{dir: '{tmp_path / 'spool'}'}}\n"
        "collectors: {host: {interval: 1s, top_processes: 0}}\n"
        # self-metrics rarely (they are shipped once more at stop, with the final counters), so the
        # spool files written during the outage are host collections
        "self_metrics: {interval: 60s}\n"
    )
    server = start_clearsight(tmp_path / "s1", data_dir=data, port=port, args=grpc)
    log = tmp_path / "agent.log"
    with open(log, "wb") as fh:
        agent = subprocess.Popen([sys.executable, "-m", "clearsight.agent", "--config", str(cfg)],
                                 stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        sel = '{instance="outage-host"}'
        deadline = time.monotonic() + 60
        while not query(url, f"node_boot_time_seconds{sel}"):
            assert agent.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        assert server.stop() == 0
        wait_log(log, "cannot ship", agent)
        spool = tmp_path / "spool" / ("otlp-metrics" if protocol == "grpc" else "")
        deadline = time.monotonic() + 60
        while len(list(spool.glob("*.rw"))) < 3:  # collections made while the server is away wait on disk
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        server = start_clearsight(tmp_path / "s2", data_dir=data, port=port, args=grpc)
        wait_log(log, "accepts samples again", agent)
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60)
    assert rc == 0, log.read_text()[-3000:]
    try:
        # the agent's final self-metrics say how many host collections it made; each is one sample
        # (one timestamp) of node_boot_time_seconds on the server: all arrived, none twice
        (runs,) = query(url, 'last_over_time(clearsight_agent_collector_runs_total{collector="host",instance="outage-host"}[1h])')
        (stored,) = query(url, f"count_over_time(node_boot_time_seconds{sel}[1h])")
        # at least one collection before the outage and the three spooled during it
        assert int(float(stored["value"][1])) == int(float(runs["value"][1])) >= 4
        (samples,) = query(url, f"last_over_time(clearsight_agent_samples_sent_total{sel}[1h])")
        assert float(samples["value"][1]) > 0
        assert not list(spool.glob("*.rw"))  # everything delivered, the spool is empty
    finally:
        server.stop()
