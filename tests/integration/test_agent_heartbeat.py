"""The real agent registers this host and its real containers (podman + runc, DESIGN.md section 4) with
the real server's resource registry through its heartbeat; ``clearsight agent status`` reads the
running agent's numbers."""

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
import pytest

from clearsight import __version__
from tests.integration.test_agent_containers import RUN_FLAGS, Podman
from tests.support.peers import start_clearsight

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def test_heartbeat_registers_host_and_containers(tmp_path: Path) -> None:
    podman = Podman(tmp_path / "podman")
    (tmp_path / "podman").mkdir()
    server = None
    agent = None
    log = tmp_path / "agent.log"
    try:
        image = podman.import_busybox()
        podman("run", "-d", "--name", "hb-web", "--network", "none", *RUN_FLAGS, image, "/bin/sleep", "3600")
        podman.start_service()
        server = start_clearsight(tmp_path / "server")
        cfg = tmp_path / "agent.yaml"
        cfg.write_text(
            f"server: {{url: '{server.url}'}}\nshipper: {{protocol: http}}\n"
            "metadata: {instance: hb-host, tags: {env: test}}\n"
            f"state: {{dir: '{tmp_path / 'state'}'}}\n"
            "heartbeat: {interval: 1s}\n"
            f"collectors: {{host: {{enabled: false}}, containers: {{interval: 1s, socket: '{podman.socket}'}}}}\n"
            "self_metrics: {interval: 1s}\nlog: {format: text}\n")
        with open(log, "wb") as fh:
            agent = subprocess.Popen([sys.executable, "-m", "clearsight", "agent", "--config", str(cfg)],
                                     stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        host_id = f"host:{socket.gethostname()}"
        deadline = time.monotonic() + 90  # a guard against hanging, not a timing assertion
        while True:
            assert agent.poll() is None, log.read_text()
            r = httpx.get(server.url + "/api/v1/resources", timeout=10)
            assert r.status_code == 200, r.text
            found: list[dict[str, Any]] = r.json()["data"]
            if any(x["kind"] == "container" and x["name"] == "hb-web" for x in found):
                break
            assert time.monotonic() < deadline, f"{found}\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        host = httpx.get(f"{server.url}/api/v1/resources/{host_id}", timeout=10).json()["data"]
        assert host["name"] == "hb-host" and host["status"] == "up" and host["tags"] == {"env": "test"}
        assert host["agent_version"] == __version__ and host["kernel"] == os.uname().release
        (web,) = [x for x in found if x["kind"] == "container" and x["name"] == "hb-web"]
        assert web["image"] == "localhost/clearsight-test:busybox" and web["state"] == "running"
        assert web["parent"] == host_id

        status = tmp_path / "state" / "status.json"
        while not status.exists():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        out = subprocess.run([sys.executable, "-m", "clearsight", "agent", "status", "--config", str(cfg)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"pid {agent.pid} (running)" in out.stdout and "heartbeat: sent" in out.stdout
        assert "containers" in out.stdout  # the collector's row
    finally:
        if agent is not None and agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
            agent.wait(60)
        if server is not None:
            server.stop()
        podman.stop()
    assert agent.returncode == 0, log.read_text()[-3000:]
