"""The auth-log preset end to end: the real agent tails an auth.log, parses sshd/sudo lines and ships
them; on the real server a LogQL metric query counts failed logins per source address (the alertable
"failed-login burst")."""

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

from tests.support.peers import start_clearsight

pytestmark = [pytest.mark.peer, pytest.mark.slow]

BURST = 'sum by (auth_source_ip) (count_over_time({service_name="auth"} | auth_outcome="failure" [10m]))'


def loki(url: str, query: str) -> list[dict[str, Any]]:
    r = httpx.get(url + "/loki/api/v1/query", params={"query": query, "time": str(time.time_ns())}, timeout=30)
    r.raise_for_status()
    out: list[dict[str, Any]] = r.json()["data"]["result"]
    return out


def test_failed_login_burst(tmp_path: Path) -> None:
    server = start_clearsight(tmp_path / "server")
    auth_log = tmp_path / "auth.log"
    auth_log.write_text("Dec  4 20:00:00 web-1 sshd[1]: Failed password for root from 198.51.100.7 port 1 ssh2\n")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"server: {{url: '{server.url}'}}\nmetadata: {{instance: auth-host}}\nshipper: {{protocol: http}}\n"
        f"state: {{dir: '{tmp_path / 'state'}'}}\nheartbeat: {{enabled: false}}\n"
        "collectors:\n  host: {enabled: false}\n  containers: {enabled: false}\n"
        f"  auth: {{enabled: true, interval: 200ms, paths: ['{auth_log}']}}\n"  # read_from: end
        "self_metrics: {interval: 1s}\nlog: {format: text}\n")
    log = tmp_path / "agent.log"
    with open(log, "wb") as fh:
        agent = subprocess.Popen([sys.executable, "-m", "clearsight.agent", "--config", str(cfg)],
                                 stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "state" / "auth.json").exists():  # the first poll is done (at the end)
            assert agent.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with open(auth_log, "a") as fh:
            for i in range(5):
                fh.write(f"Dec  4 21:00:0{i} web-1 sshd[10{i}]: Failed password for invalid user admin "
                         f"from 203.0.113.9 port 4{i} ssh2\n")
            fh.write("Dec  4 21:00:06 web-1 sshd[110]: Invalid user oracle from 192.0.2.4 port 50\n")
            fh.write("Dec  4 21:00:07 web-1 sshd[111]: Accepted publickey for alice from 10.0.0.2 port 5 ssh2\n")
            fh.write("Dec  4 21:00:08 web-1 sudo:    alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/true\n")
        while True:
            got = {r["metric"]["auth_source_ip"]: r["value"][1] for r in loki(server.url, BURST)}
            if got.get("203.0.113.9") == "5" and "192.0.2.4" in got:
                break
            assert agent.poll() is None and time.monotonic() < deadline, f"{got}\n{log.read_text()[-2000:]}"
            time.sleep(0.3)
        assert got == {"203.0.113.9": "5", "192.0.2.4": "1"}  # the line before the start is not read
        (sudo,) = loki(server.url, '{service_name="auth"} | program="sudo"')
        assert sudo["stream"]["auth_user"] == "alice" and sudo["stream"]["auth_command"] == "/bin/true"
        assert sudo["stream"]["auth_outcome"] == "success"
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60)
        server.stop()
    assert rc == 0, log.read_text()[-3000:]
