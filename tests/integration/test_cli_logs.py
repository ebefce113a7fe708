"""``clearsight logs`` and ``clearsight events`` as a user runs them, against a real server."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_clearsight(tmp_path_factory.mktemp("cli-logs"))
    try:
        now = time.time_ns()
        push = {"streams": [
            {"stream": {"app": "shop", "level": "error"},
             "values": [[str(now - 3_000_000_000), "payment failed order=1"], [str(now - 1_000_000_000),
                                                                              "payment failed order=2"]]},
            {"stream": {"app": "shop", "level": "info"}, "values": [[str(now - 2_000_000_000), "order=1 placed"]]},
        ]}
        assert httpx.post(f"{proc.url}/loki/api/v1/push", json=push, timeout=10).status_code == 204
        evs = [{"message": "deployed v2", "level": "INFO", "type": "change", "origin": "ci", "tags": ["deploy"]},
               {"message": "sudo by bob", "level": "WARN", "type": "process_spawn", "origin": "falco"}]
        assert httpx.post(f"{proc.url}/api/v1/events", json=evs, timeout=10).status_code == 200
        yield proc
    finally:
        proc.stop()


def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clearsight", *args, "--url", url], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})


def test_logs_raw_newest_first_and_forward(server: Proc) -> None:
    out = cli("logs", '{app="shop"}', "--output", "raw", url=server.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["payment failed order=2", "order=1 placed", "payment failed order=1"]
    out = cli("logs", '{app="shop"} |= "payment"', "--output", "raw", "--forward", "--limit", "1", url=server.url)
    assert out.stdout.splitlines() == ["payment failed order=1"]


def test_logs_table_and_json(server: Proc) -> None:
    out = cli("logs", '{app="shop", level="info"}', url=server.url)
    (line,) = out.stdout.splitlines()
    assert line.endswith('{app="shop", level="info"} order=1 placed')
    out = cli("logs", '{app="shop"} | logfmt | order="2"', "--output", "json", url=server.url)
    (doc,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert doc["line"] == "payment failed order=2" and doc["labels"]["level"] == "error"


def test_logs_metric_query(server: Proc) -> None:
    out = cli("logs", 'sum by (level) (count_over_time({app="shop"}[1h]))', "--step", "1h", "--since", "1h",
              url=server.url)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert any(r.startswith('{level="error"} 2 @ ') for r in rows), rows
    assert any(r.startswith('{level="info"} 1 @ ') for r in rows), rows


def test_logs_bad_query_and_flags(server: Proc) -> None:
    out = cli("logs", '{app="shop"', url=server.url)
    assert out.returncode == 1 and "parse error" in out.stderr
    out = cli("logs", '{app="shop"}', "--since", "soon", url=server.url)
    assert out.returncode == 1 and "--since" in out.stderr
    out = cli("logs", '{app="shop"}', "--output", "xml", url=server.url)
    assert out.returncode == 2


def test_logs_follow_prints_new_lines(server: Proc) -> None:
    argv = [sys.executable, "-m", "clearsight", "logs", '{app="tailed"}', "--follow", "--output", "raw",
            "--url", server.url]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            got = ""
            while time.monotonic() < deadline and not got:
                push = {"streams": [{"stream": {"app": "tailed"}, "values": [[str(time.time_ns()), "live line"]]}]}
                assert httpx.post(f"{server.url}/loki/api/v1/push", json=push, timeout=10).status_code == 204
                ready, _, _ = select.select([proc.stdout], [], [], 2.0)
                if ready:
                    got = proc.stdout.readline().strip()
            assert got == "live line"
        finally:
            proc.terminate()
            proc.wait(20)


def test_events_filters_and_output(server: Proc) -> None:
    out = cli("events", "--type", "change", url=server.url)
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    assert "INFO change [ci/" in line and "#deploy" in line and line.endswith("deployed v2")
    out = cli("events", "--level", "warn", "--output", "json", url=server.url)
    (doc,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert (doc["message"], doc["origin"]) == ("sudo by bob", "falco")
