"""The real agent (``python -m clearsight.agent``) tails a log file and the journal (files written by
systemd-journal-remote) into a real server on 127.0.0.1; lines are read back through the Loki
query API. The agent is killed with SIGKILL and restarted, the file rotated while it is down: every
line arrives, none twice (counted by sequence number)."""

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

from tests.integration.test_agent_journald import entry, write_entries
from tests.support.peers import require_binary, start_clearsight

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def loki_lines(url: str, query: str) -> list[tuple[dict[str, str], str]]:
    now = time.time_ns()
    r = httpx.get(f"{url}/loki/api/v1/query_range",
                  params={"query": query, "limit": "5000", "direction": "forward",
                          "start": str(now - 3600 * 10**9), "end": str(now + 60 * 10**9)}, timeout=30)
    r.raise_for_status()
    out = []
    for stream in r.json()["data"]["result"]:
        for _ts, line in stream["values"]:
            out.append((stream["stream"], line))
    return out


def start_agent(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "clearsight.agent", "--config", str(cfg)],
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def wait_lines(url: str, query: str, n: int, agent: subprocess.Popen[bytes], log: Path) -> list[Any]:
    deadline = time.monotonic() + 90  # a guard against hanging, not a timing assertion
    while True:
        assert agent.poll() is None, f"the agent exited with {agent.returncode}:\n{log.read_text()[-3000:]}"
        got = loki_lines(url, query)
        if len(got) >= n:
            return got
        assert time.monotonic() < deadline, f"{len(got)} of {n} lines:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)


def test_files_and_journald_survive_sigkill_and_rotation(tmp_path: Path) -> None:
    require_binary("journalctl")
    server = start_clearsight(tmp_path / "server")
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    jdir = tmp_path / "journal"
    jdir.mkdir()
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"server: {{url: '{server.url}'}}\n"
        "metadata: {instance: logs-host, tags: {env: test}}\n"
        "shipper: {protocol: http, backoff_min: 100ms, backoff_max: 1s}\n"
        f"buffer: {{dir: '{tmp_path / 'spool'}'}}\n"
        f"state: {{dir: '{tmp_path / 'state'}'}}\n"
        "heartbeat: {enabled: false}\n"
        "collectors:\n"
        "  host: {enabled: false}\n"
        "  containers: {enabled: false}\n"
        f"  journald: {{enabled: true, interval: 300ms, directory: '{jdir}', read_from: beginning}}\n"
        "  files:\n"
        f"  - {{path: '{logs}/*.log', service: shop, labels: {{app: shop}}, interval: 200ms, read_from: beginning,"
        " multiline_start: '^seq='}\n"
        "self_metrics: {interval: 1s}\n"
        "log: {level: info, format: text}\n"
    )
    agent_log = tmp_path / "agent.log"
    seq = 0

    def write(n: int, trace_every: int = 0) -> None:
        nonlocal seq
        with open(app, "a") as fh:
            for _ in range(n):
                seq += 1
                fh.write(f"seq={seq} level=info msg=hello\n")
                if trace_every and seq % trace_every == 0:
                    fh.write("Traceback (most recent call last):\n  File \"x.py\", line 1\n")

    write(300, trace_every=100)
    write_entries(jdir, [entry(i, prio="3" if i % 2 else "6") for i in range(1, 11)], 1)
    agent = start_agent(cfg, agent_log)
    try:
        got = wait_lines(server.url, '{service_name="shop"}', 300, agent, agent_log)
        streams = {tuple(sorted(s.items())) for s, _ in got}
        assert streams == {(("service_instance_id", "logs-host"), ("service_name", "shop"))}
        traced = [line for _, line in got if "Traceback" in line]
        assert traced == [f'seq={n} level=info msg=hello\nTraceback (most recent call last):\n  File "x.py", line 1'
                          for n in (100, 200, 300)]
        jl = wait_lines(server.url, '{service_name="journald"}', 10, agent, agent_log)
        assert [line for _, line in jl] == [f"line {i}" for i in range(1, 11)]

        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(30)
        # while the agent is down: more lines, a rotation (rename + create), more journal entries
        write(200)
        os.rename(app, logs / "app.log.1")  # no longer matches *.log: only the offset saved the rest
        write(200)
        write_entries(jdir, [entry(i) for i in range(11, 16)], 11)
        agent = start_agent(cfg, agent_log)
        got = wait_lines(server.url, '{service_name="shop"}', 700, agent, agent_log)
        jl = wait_lines(server.url, '{service_name="journald"}', 15, agent, agent_log)
        time.sleep(1.5)  # a few more polls: anything sent twice would show up now
        got = loki_lines(server.url, '{service_name="shop"}')
        jl = loki_lines(server.url, '{service_name="journald"}')
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60)
        server.stop()
    seqs = sorted(int(line.split()[0].removeprefix("seq=")) for _, line in got)
    assert seqs == list(range(1, 701)), "a gap or a duplicate in the file's lines"
    assert sorted(line for _, line in jl) == sorted(f"line {i}" for i in range(1, 16))
    assert rc == 0, agent_log.read_text()[-3000:]
