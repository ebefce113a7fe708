"""Debian's syslog-ng (``syslog-ng-core`` + ``syslog-ng-mod-http``) as a second real HTTP shipper into
a real ``clearsight server``: its ``http()`` destination sends batched Elasticsearch ``_bulk``
requests and batched event arrays to ``POST /api/v1/events``; ``logger`` writes RFC 5424 lines into
its network source. Debian cannot install syslog-ng beside rsyslog (both provide
system-log-daemon), so ``scripts/install-peers.sh`` unpacks the two packages into
``$SYSLOG_NG_ROOT`` (default ``/opt/clearsight-peers/syslog-ng``) and the test runs the binary from
there in the foreground with its own persist file, pid file and control socket."""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import PeerMissing, Proc, free_port, require_binary, start_clearsight

SYSLOG_NG_ROOT = Path(os.environ.get("SYSLOG_NG_ROOT", "/opt/clearsight-peers/syslog-ng"))

CONF = """@version: 3.35
options {{ keep-hostname(yes); stats-freq(0); }};
source s_bulk {{ network(ip("127.0.0.1") port({in_bulk}) transport("tcp") flags(syslog-protocol)); }};
source s_events {{ network(ip("127.0.0.1") port({in_events}) transport("tcp") flags(syslog-protocol)); }};
destination d_bulk {{
  http(url("{url}/syslogng/_bulk") method("POST") headers("Content-Type: application/x-ndjson")
       batch-lines(50) batch-timeout(200)
       body("{{\\"index\\":{{}}}}\\n$(format-json @timestamp=${{ISODATE}} message=${{MESSAGE}} \
log.level=${{LEVEL}} host.name=${{HOST}} app=${{PROGRAM}})")
       delimiter("\\n") body-suffix("\\n"));
}};
destination d_events {{
  http(url("{url}/api/v1/events") method("POST") headers("Content-Type: application/json")
       batch-lines(50) batch-timeout(200)
       body-prefix("[") delimiter(",") body-suffix("]")
       body("$(format-json message=${{MESSAGE}} type=syslog_ng origin=${{HOST}} source=${{PROGRAM}} \
timestamp=${{ISODATE}})"));
}};
log {{ source(s_bulk); destination(d_bulk); }};
log {{ source(s_events); destination(d_events); }};
"""


def _syslog_ng_binary() -> Path:
    binary = SYSLOG_NG_ROOT / "usr" / "sbin" / "syslog-ng"
    if not binary.is_file() or not glob.glob(str(SYSLOG_NG_ROOT / "usr/lib/syslog-ng/*/libhttp.so")):
        raise PeerMissing(
            f"syslog-ng is not unpacked in {SYSLOG_NG_ROOT}: run `make peers` (scripts/install-peers.sh)"
        )
    return binary


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Proc, dict[str, int]]]:
    binary = _syslog_ng_binary()
    module_dir = glob.glob(str(SYSLOG_NG_ROOT / "usr/lib/syslog-ng/*/libhttp.so"))[0].rsplit("/", 1)[0]
    cs = start_clearsight(tmp_path / "cs")
    ports = {"in_bulk": free_port(), "in_events": free_port()}
    work = tmp_path / "syslog-ng"
    work.mkdir()
    conf = work / "syslog-ng.conf"
    conf.write_text(CONF.format(url=cs.url, **ports))
    env = {**os.environ, "LD_LIBRARY_PATH": str(SYSLOG_NG_ROOT / "usr/lib/syslog-ng")}
    log = open(work / "syslog-ng.log", "wb")
    proc = subprocess.Popen(
        [
            str(binary),
            "-F",
            "-e",
            f"--cfgfile={conf}",
            f"--module-path={module_dir}",
            f"--persist-file={work / 'syslog-ng.persist'}",
            f"--pidfile={work / 'syslog-ng.pid'}",
            f"--control={work / 'syslog-ng.ctl'}",
            "--no-caps",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    log.close()
    try:
        deadline = time.monotonic() + 30
        while not all(_listening(p) for p in ports.values()):
            assert proc.poll() is None, (work / "syslog-ng.log").read_text()
            assert time.monotonic() < deadline, "syslog-ng did not open its sources"
            time.sleep(0.1)
        yield cs, ports
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        cs.stop()


def _logger(port: int, tag: str, priority: str, message: str) -> None:
    subprocess.run(
        [
            require_binary("logger"),
            "--tcp",
            "-n",
            "127.0.0.1",
            "-P",
            str(port),
            "--rfc5424",
            "-t",
            tag,
            "-p",
            priority,
            message,
        ],
        check=True,
        timeout=10,
    )


def _wait(fetch: Any, want: int) -> list[Any]:
    deadline = time.monotonic() + 30
    got: list[Any] = []
    while time.monotonic() < deadline:
        got = fetch()
        if len(got) >= want:
            return got
        time.sleep(0.2)
    return got


def test_syslog_ng_http_destination_ships_bulk_and_events(stack: tuple[Proc, dict[str, int]]) -> None:
    cs, ports = stack
    _logger(ports["in_bulk"], "ng-app", "local4.warning", 'cache miss rate 31% "hot" keys')
    _logger(ports["in_bulk"], "ng-app", "local4.err", "cache node 2 unreachable")
    _logger(ports["in_events"], "deployer", "user.notice", "deployed web 1.4.2 to prod")

    def lines() -> list[tuple[str, dict[str, str]]]:
        r = httpx.get(
            f"{cs.url}/loki/api/v1/query_range",
            timeout=10,
            params={"query": '{index="syslogng"}', "direction": "forward", "since": "1h"},
        )
        assert r.status_code == 200, r.text
        return [(v[1], s["stream"]) for s in r.json()["data"]["result"] for v in s["values"]]

    got = _wait(lines, 2)
    assert [line for line, _ in got] == ['cache miss rate 31% "hot" keys', "cache node 2 unreachable"]
    r = httpx.get(f"{cs.url}/api/v1/logs", params={"label": "index=syslogng", "since": "1h"}, timeout=10)
    assert r.status_code == 200, r.text
    entries = r.json()["data"]["entries"]
    assert sorted((e["severity_text"], e["severity_number"]) for e in entries) == [
        ("err", 17),
        ("warning", 13),
    ]

    def events() -> list[dict[str, Any]]:
        r = httpx.get(f"{cs.url}/api/v1/events", params={"type": "syslog_ng", "since": "1h"}, timeout=10)
        assert r.status_code == 200, r.text
        out: list[dict[str, Any]] = r.json()["data"]["events"]
        return out

    (ev,) = _wait(events, 1)
    assert ev["message"] == "deployed web 1.4.2 to prod" and ev["source"] == "deployer" and ev["origin"]
    metrics = httpx.get(f"{cs.url}/metrics", timeout=10).text
    assert 'clearsight_ingested_log_lines_total{protocol="es_bulk"} 2.0' in metrics
    assert 'clearsight_ingested_log_lines_total{protocol="events"} 1.0' in metrics
    # per-tenant stream counts: {index="syslogng"} and the event stream {event_type, level, origin}
    assert 'clearsight_log_streams{tenant="default"} 2.0' in metrics
    assert "clearsight_log_store_entries_written_total 3.0" in metrics
