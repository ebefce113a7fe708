"""Debian's rsyslog as a real shipper into a real ``clearsight server``: ``omfwd`` over UDP (RFC 5424),
TCP with octet counting (RFC 5424) and TCP with newline framing (RFC 3164), and ``omelasticsearch``
sending real ``_bulk`` requests; ``logger`` (bsdutils) writes the lines into rsyslog. Every line
arrives once, with its app, host and facility, and is found through the Loki query API."""

from __future__ import annotations

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

from tests.support.peers import Proc, free_port, require_binary, start_clearsight

RSYSLOG_CONF = """
global(workDirectory="{work}")
module(load="imtcp")
module(load="omelasticsearch")
template(name="es" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
  property(outname="app" name="programname" format="jsonf")
  property(outname="level" name="syslogseverity-text" format="jsonf")
}}
ruleset(name="udp") {{
  action(type="omfwd" target="127.0.0.1" port="{udp}" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
}}
ruleset(name="octet") {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" tcp_framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}}
ruleset(name="legacy") {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" template="RSYSLOG_ForwardFormat")
}}
ruleset(name="es") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{http}" searchIndex="rsyslog-es"
         template="es" bulkmode="on" errorFile="{work}/es-errors.json")
}}
input(type="imtcp" port="{in_udp}" address="127.0.0.1" ruleset="udp")
input(type="imtcp" port="{in_octet}" address="127.0.0.1" ruleset="octet")
input(type="imtcp" port="{in_legacy}" address="127.0.0.1" ruleset="legacy")
input(type="imtcp" port="{in_es}" address="127.0.0.1" ruleset="es")
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Proc, dict[str, int]]]:
    rsyslogd = require_binary("rsyslogd")
    udp, tcp = free_port(), free_port()
    cs = start_clearsight(tmp_path / "cs", config_yaml=(
        f"server:\n  syslog_udp_listen: 127.0.0.1:{udp}\n  syslog_tcp_listen: 127.0.0.1:{tcp}\n"))
    ports = {"in_udp": free_port(), "in_octet": free_port(), "in_legacy": free_port(), "in_es": free_port()}
    work = tmp_path / "rsyslog"
    work.mkdir()
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, udp=udp, tcp=tcp, http=cs.url.rsplit(":", 1)[1], **ports))
    log = open(work / "rsyslogd.log", "wb")
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while not all(_listening(p) for p in ports.values()):
            assert proc.poll() is None, (work / "rsyslogd.log").read_text()
            assert time.monotonic() < deadline, "rsyslogd did not open its inputs"
            time.sleep(0.1)
        yield cs, ports
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        cs.stop()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _logger(port: int, tag: str, priority: str, message: str, rfc: str = "--rfc5424") -> None:
    subprocess.run([require_binary("logger"), "--tcp", "-n", "127.0.0.1", "-P", str(port), rfc, "-t", tag,
                    "-p", priority, message], check=True, timeout=10)


def _streams(url: str, query: str, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/loki/api/v1/query_range",
                      params={"query": query, "direction": "forward", "since": "1h"}, timeout=10)
        assert r.status_code == 200, r.text
        result = r.json()["data"]["result"]
        if sum(len(s["values"]) for s in result) >= want:
            return result
        time.sleep(0.2)
    return result


def test_rsyslog_forwards_over_udp_and_tcp_and_elasticsearch_bulk(stack: tuple[Proc, dict[str, int]]) -> None:
    cs, ports = stack
    _logger(ports["in_udp"], "via-udp", "local3.warning", "disk /var at 91%")
    _logger(ports["in_udp"], "via-udp", "local3.err", "disk /var at 99%")
    _logger(ports["in_octet"], "via-octet", "auth.notice", "user alice logged in")
    _logger(ports["in_legacy"], "via-legacy", "daemon.info", "worker 3 restarted", rfc="--rfc3164")
    _logger(ports["in_es"], "via-es", "user.err", "payment failed for order 42")

    udp = _streams(cs.url, '{app="via-udp"}', 2)
    assert [v[1] for s in udp for v in s["values"]] == ["disk /var at 91%", "disk /var at 99%"]
    assert {s["stream"]["facility"] for s in udp} == {"local3"}
    assert all(s["stream"]["host"] for s in udp)  # rsyslog's hostname for the message

    octet = _streams(cs.url, '{app="via-octet"}', 1)
    assert [v[1] for s in octet for v in s["values"]] == ["user alice logged in"]
    assert octet[0]["stream"]["facility"] == "auth"

    legacy = _streams(cs.url, '{app="via-legacy"}', 1)
    assert [v[1] for s in legacy for v in s["values"]] == ["worker 3 restarted"]
    assert legacy[0]["stream"]["facility"] == "daemon"

    es = _streams(cs.url, '{index="rsyslog-es"}', 1)
    assert [v[1] for s in es for v in s["values"]] == ["payment failed for order 42"]

    metrics = httpx.get(f"{cs.url}/metrics", timeout=10).text
    assert 'clearsight_ingested_log_lines_total{protocol="syslog_udp"} 2.0' in metrics
    assert 'clearsight_ingested_log_lines_total{protocol="syslog_tcp"} 2.0' in metrics


def test_bad_tcp_framing_closes_only_that_connection(tmp_path: Path) -> None:
    tcp = free_port()
    cs = start_clearsight(tmp_path / "cs", config_yaml=f"server:\n  syslog_tcp_listen: 127.0.0.1:{tcp}\n")
    try:
        with socket.create_connection(("127.0.0.1", tcp), timeout=10) as bad:
            bad.sendall(b"9999999999 <13>1 - - app - - - x\n")  # an octet count over the limit
            assert bad.recv(10) == b""  # closed by the server
        with socket.create_connection(("127.0.0.1", tcp), timeout=10) as good:
            msg = b"<14>1 - web1 ok-app - - - two lines\nin one octet-counted frame"  # "-": the receive time
            good.sendall(b"%d %s" % (len(msg), msg) + b"<14>1 - web1 ok-app - - - newline framed\n")
        result = _streams(cs.url, '{app="ok-app"}', 2)
        assert [v[1] for s in result for v in s["values"]] == ["two lines\nin one octet-counted frame",
                                                                "newline framed"]
        metrics = httpx.get(f"{cs.url}/metrics", timeout=10).text
        assert 'clearsight_rejected_requests_total{protocol="syslog_tcp",reason="frame_too_large"} 1.0' in metrics
    finally:
        cs.stop()
