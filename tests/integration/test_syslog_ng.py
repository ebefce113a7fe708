"""Debian's syslog-ng (``syslog-ng-core`` + ``syslog-ng-mod-http``) as a second real HTTP shipper into
a real ``clearsight server``: its ``http()`` destination sends batched Elasticsearch ``_bulk``
requests and batched event arrays to ``POST /api/v1/events``; ``logger`` writes RFC 5424 lines into
its network source. Debian cannot install syslog-ng beside rsyslog (both provide
system-log-daemon), so ``scripts/install-peers.sh`` unpacks the two packages into
``$SYSLOG_NG_ROOT`` (default ``/opt/clearsight-peers/syslog-ng``) and the test runs the binary from
there in the foreground with its own persist file, pid file and control socket."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import socket
import ssl
import subprocess
import sys
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


@contextlib.contextmanager
def _syslog_ng(work: Path, conf_text: str, ports: list[int]) -> Iterator[None]:
    """syslog-ng in the foreground on ``conf_text`` until its network sources on ``ports`` listen."""
    binary = _syslog_ng_binary()
    module_dir = glob.glob(str(SYSLOG_NG_ROOT / "usr/lib/syslog-ng/*/libhttp.so"))[0].rsplit("/", 1)[0]
    work.mkdir()
    conf = work / "syslog-ng.conf"
    conf.write_text(conf_text)
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
        while not all(_listening(p) for p in ports):
            assert proc.poll() is None, (work / "syslog-ng.log").read_text()
            assert time.monotonic() < deadline, "syslog-ng did not open its sources"
            time.sleep(0.1)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Proc, dict[str, int]]]:
    cs = start_clearsight(tmp_path / "cs")
    ports = {"in_bulk": free_port(), "in_events": free_port()}
    try:
        with _syslog_ng(tmp_path / "syslog-ng", CONF.format(url=cs.url, **ports), list(ports.values())):
            yield cs, ports
    finally:
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


TLS_CONF = """@version: 3.35
options {{ keep-hostname(yes); stats-freq(0); }};
source s_in {{ network(ip("127.0.0.1") port({inp}) transport("tcp") flags(syslog-protocol)); }};
destination d_tls {{
  syslog("127.0.0.1" port({tls}) transport("tls") tls(ca-file("{ca}") peer-verify(required-trusted)));
}};
log {{ source(s_in); destination(d_tls); }};
"""


def test_syslog_ng_forwards_over_tls_to_the_syslog_tls_listener(tmp_path: Path) -> None:
    """syslog-ng's syslog() destination over TLS (RFC 5425 octet counting), verifying the server's
    certificate against the CA ``clearsight certs init`` made, into ``server.syslog_tls_listen``."""
    from clearsight.cli.certs import init

    certs = tmp_path / "certs"
    init(certs, ["127.0.0.1"])
    port, tls_port, inp = free_port(), free_port(), free_port()
    (tmp_path / "server.yaml").write_text(
        f"server:\n  tls_cert_file: {certs / 'server.crt'}\n  tls_key_file: {certs / 'server.key'}\n"
        f"  syslog_tls_listen: 127.0.0.1:{tls_port}\n"
    )
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as fh:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clearsight",
                "server",
                "--config",
                str(tmp_path / "server.yaml"),
                "--data-dir",
                str(tmp_path / "data"),
                "--listen",
                f"127.0.0.1:{port}",
                "--otlp-http-listen",
                "",
                "--otlp-grpc-listen",
                "",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"https://127.0.0.1:{port}"
    client = httpx.Client(verify=ssl.create_default_context(cafile=str(certs / "ca.crt")), timeout=10)
    try:
        deadline = time.monotonic() + 60  # a guard against hanging, not a timing assertion
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if client.get(url + "/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.1)
        conf = TLS_CONF.format(inp=inp, tls=tls_port, ca=certs / "ca.crt")
        with _syslog_ng(tmp_path / "syslog-ng", conf, [inp]):
            _logger(inp, "ng-tls", "auth.warning", "sshd: 3 failed logins for root")

            def lines() -> list[tuple[str, dict[str, str]]]:
                r = client.get(
                    f"{url}/loki/api/v1/query_range",
                    params={"query": '{app="ng-tls"}', "direction": "forward", "since": "1h"},
                )
                assert r.status_code == 200, r.text
                return [(v[1], st["stream"]) for st in r.json()["data"]["result"] for v in st["values"]]

            got = _wait(lines, 1)
        assert [line for line, _ in got] == ["sshd: 3 failed logins for root"], log_path.read_text()[-3000:]
        assert got[0][1]["facility"] == "auth"
        metrics = client.get(f"{url}/metrics").text
        assert 'clearsight_ingested_log_lines_total{protocol="syslog_tls"} 1.0' in metrics
    finally:
        client.close()
        server.terminate()
        server.wait(60)
