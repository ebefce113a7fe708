"""The real agent against a real server: its heartbeats register this host (metadata, tags, agent
version), its node_exporter-named metrics give the host its health through the built-in rules, and
once the agent stops the host goes stale, then down, and its health critical."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from clearsight import __version__
from tests.support.peers import start_clearsight

SERVER_CONFIG = """
resources: {heartbeat_interval: 1s, discovery_interval: 1s, metrics_interval: 1s}
health: {evaluation_interval: 1s}
"""


def _get(url: str, path: str) -> Any:
    r = httpx.get(url + path, timeout=10)
    return r.json().get("data") if r.status_code == 200 else None


def _wait(fn: Any, what: str, log: Path, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout  # a guard against hanging, not a timing assertion
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)


def test_agent_heartbeats_and_host_health(tmp_path: Path) -> None:
    server = start_clearsight(tmp_path / "server", config_yaml=SERVER_CONFIG)
    url = server.url
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"server: {{url: '{url}'}}\nshipper: {{protocol: http}}\n"
        "metadata: {instance: e2e-host, tags: {env: test}}\n"
        "collectors: {host: {interval: 1s}}\n"
        "heartbeat: {interval: 1s}\n"
    )
    log = tmp_path / "agent.log"
    with open(log, "wb") as fh:
        agent = subprocess.Popen([sys.executable, "-m", "clearsight", "agent", "--config", str(cfg)],
                                 stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    rid = f"host:{socket.gethostname()}"
    try:
        host = _wait(lambda: (r := _get(url, f"/api/v1/resources/{rid}")) and len(r["sources"]) == 2 and r,
                     "the host from heartbeats and metrics", log)
        assert (host["kind"], host["status"], host["agent_version"], host["tags"], host["sources"]) == (
            "host", "up", __version__, {"env": "test"}, ["agent", "metrics"])
        assert "e2e-host" in host["instances"] and host["kernel"] == os.uname().release
        machine_id = Path("/etc/machine-id")
        if machine_id.exists():
            assert host["machine_id"] == machine_id.read_text().strip()

        def metric_signals() -> dict[str, Any]:
            h = _get(url, f"/api/v1/resources/{rid}/health")
            sigs = {s["name"]: s for s in (h or {}).get("signals", []) if s["kind"] == "metric"}
            return sigs if len(sigs) == 3 else {}

        sigs = _wait(metric_signals, "cpu, memory and disk signals", log)
        assert sorted(sigs) == ["cpu_usage", "disk_usage", "memory_usage"]
        assert all(0 <= s["value"] <= 100 for s in sigs.values()), sigs
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60)
    try:
        assert rc == 0, log.read_text()[-3000:]
        down = _wait(lambda: (r := _get(url, f"/api/v1/resources/{rid}")) and r["status"] == "down" and r,
                     "the host going down after the agent stopped", log)
        assert down["last_seen"] <= time.time()
        # (this host's real CPU may be critical too: the down signal must be among the reasons)
        h = _wait(lambda: (x := _get(url, f"/api/v1/resources/{rid}/health")) and x["status"] == "critical"
                  and any(s["kind"] == "liveness" and s["status"] == "critical" for s in x["signals"]) and x,
                  "critical health of a down host", log)
        assert h["reason"].startswith("down: not seen for "), h
        assert _get(url, "/api/v1/resources?status=down")[0]["id"] == rid
    finally:
        server.stop()
