"""Scrape forwarding: the real agent scrapes Debian's node_exporter (``scrape_configs`` in agent.yaml, the
server's format) and forwards to the real server: the target's job and instance are kept, the agent's
tags added, ``up`` is 1 (and 0 for a target that does not answer), metric_relabel_configs apply."""

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

from tests.support.peers import free_port, start_clearsight, start_node_exporter

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def query(url: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=30)
    r.raise_for_status()
    out: list[dict[str, Any]] = r.json()["data"]["result"]
    return out


def test_agent_forwards_node_exporter(tmp_path: Path) -> None:
    ne = start_node_exporter(tmp_path / "ne")
    server = start_clearsight(tmp_path / "server")
    target = ne.url.removeprefix("http://")
    dead = f"127.0.0.1:{free_port()}"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"server: {{url: '{server.url}'}}\nshipper: {{protocol: http}}\n"
        "metadata: {instance: scrape-host, tags: {dc: par}}\n"
        f"state: {{dir: '{tmp_path / 'state'}'}}\nheartbeat: {{enabled: false}}\n"
        "collectors: {host: {enabled: false}, containers: {enabled: false}}\n"
        "self_metrics: {interval: 1s}\nlog: {format: text}\n"
        "scrape_configs:\n"
        "- job_name: local-ne\n  scrape_interval: 1s\n"
        f"  static_configs: [{{targets: ['{target}'], labels: {{team: infra}}}}]\n"
        "  metric_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]\n"
        f"- job_name: dead\n  scrape_interval: 1s\n  static_configs: [{{targets: ['{dead}']}}]\n")
    log = tmp_path / "agent.log"
    with open(log, "wb") as fh:
        agent = subprocess.Popen([sys.executable, "-m", "clearsight.agent", "--config", str(cfg)],
                                 stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90  # a guard against hanging, not a timing assertion
        while not query(server.url, 'node_exporter_build_info{job="local-ne"}') or not query(
                server.url, 'up{job="dead"}'):
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        (info,) = query(server.url, 'node_exporter_build_info{job="local-ne"}')
        assert info["metric"]["instance"] == target and info["metric"]["team"] == "infra"
        assert info["metric"]["dc"] == "par"  # the agent's tag, added where absent
        (up,) = query(server.url, 'up{job="local-ne"}')
        assert up["value"][1] == "1"
        (down,) = query(server.url, 'up{job="dead"}')
        assert down["value"][1] == "0" and down["metric"]["instance"] == dead
        assert query(server.url, '{job="local-ne", __name__=~"go_.*"}') == []  # metric_relabel_configs
        assert query(server.url, 'node_cpu_seconds_total{job="local-ne"}')
        assert "scrape of http://" in log.read_text()  # the dead target, once
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60)
        server.stop()
        ne.stop()
    assert rc == 0, log.read_text()[-3000:]
