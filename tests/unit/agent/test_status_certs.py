"""``clearsight agent status`` rendering, the log path of the runner (read -> tidy -> buffer -> commit,
drops counted), new config keys' errors, and ``clearsight certs`` files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509

from clearsight.agent.buffer import MemoryBuffer
from clearsight.agent.config import load_agent_config
from clearsight.agent.logrecord import LogRecord
from clearsight.agent.otlp_logs import LogEncoder
from clearsight.agent.runner import Agent, LogShipping, SelfCollector
from clearsight.agent.shipper import Encoder, Response, Shipper
from clearsight.agent.status import StatusError, read_status, render
from clearsight.agent.tidy import Tidy
from clearsight.cli.certs import CertError, init, issue, revoke
from clearsight.config import ConfigError


class NullTransport:
    def post(self, body: bytes, headers: object) -> Response:
        return Response(200, {}, "")

    def close(self) -> None:
        pass


class Source:
    name = "files-0"
    service = "shop"

    def __init__(self) -> None:
        self.errors: dict[str, int] = {}
        self.batches = [[LogRecord(0, "a"), LogRecord(0, "a"), LogRecord(0, "debug x")], [LogRecord(0, "b")]]
        self.commits = 0

    def read(self) -> list[LogRecord]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, staged: Sequence[str] = ()) -> None:
        self.commits += 1

    def staged(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def make_agent(tmp_path: Path, log_buffer_bytes: int = 1 << 20) -> tuple[Agent, Source]:
    buf = MemoryBuffer(1 << 20)
    lbuf = MemoryBuffer(log_buffer_bytes)
    src = Source()
    now = [0.0]
    agent = Agent([], Encoder({"instance": "h"}), buf, Shipper("http://x/api/v1/write", buf, transport=NullTransport()),
                  self_metrics_interval=10.0, monotonic=lambda: now[0], clock=lambda: 1_800_000_000.0,
                  logs=LogShipping(LogEncoder({"host.name": "h"}), lbuf,
                                   Shipper("http://x/v1/logs", lbuf, transport=NullTransport())),
                  log_sources=[(src, Tidy(exclude="^debug"), 1.0)], status_path=tmp_path / "status.json")
    return agent, src


def test_log_path_and_status(tmp_path: Path) -> None:
    agent, src = make_agent(tmp_path)
    agent.collect_due()  # the log source and the self-metrics (which write status.json)
    assert agent.logs is not None and len(agent.logs.buffer) == 1 and src.commits == 1
    ls = agent.stats.log_sources[0]
    assert (ls.records_read, ls.records_buffered, ls.tidy.filtered, ls.tidy.collapsed) == (3, 1, 1, 1)
    agent._final_self_metrics()  # self-metrics ran before the log source in that cycle: once more
    doc = read_status(tmp_path / "status.json")
    assert doc["pid"] == os.getpid()
    text = render(doc, now=doc["time"] + 5)
    assert f"pid {os.getpid()} (running)" in text and "written 5s ago" in text
    assert "logs:     sent 0" in text and "buffered 1" in text and "replayed 0 requests" in text
    assert "retries 0, replayed 0, buffered" in text
    assert any(line.startswith("files-0") for line in text.splitlines())
    vals = {(m["name"], tuple(sorted(m["labels"].items()))): m["value"] for m in doc["metrics"]}
    assert vals[("clearsight_agent_log_records_filtered_total", (("collector", "files-0"),))] == 1


def test_log_buffer_full_drops_oldest_and_counts(tmp_path: Path) -> None:
    agent, src = make_agent(tmp_path, log_buffer_bytes=1)  # every new request pushes the previous out
    src.batches = [[LogRecord(0, f"line {i}")] for i in range(3)]
    now = 0.0
    for _ in range(3):
        agent.monotonic = lambda now=now: now
        agent.collect_due()
        now += 1.0
    assert agent.logs is not None and agent.logs.buffer.dropped_samples == 2
    samples = SelfCollector(agent).collect()
    assert [s.value for s in samples if s.name == "clearsight_agent_log_dropped_records_total"] == [2]


def test_status_errors(tmp_path: Path) -> None:
    with pytest.raises(StatusError, match="does not exist"):
        read_status(tmp_path / "status.json")
    (tmp_path / "status.json").write_text("[]")
    with pytest.raises(StatusError, match="not an agent status file"):
        read_status(tmp_path / "status.json")


@pytest.mark.parametrize("text,message", [
    ("collectors: {files: {path: x}}\n", "collectors.files: expected a list"),
    ("collectors: {files: [{labels: {a: b}}]}\n", "collectors.files[0].path: at least one glob"),
    ("collectors: {files: [{path: x, multiline_start: '('}]}\n", "collectors.files[0].multiline_start: invalid"),
    ("collectors: {files: [{path: x, nope: 1}]}\n", "collectors.files[0].nope: unknown key"),
    ("collectors: {journald: {read_from: middle}}\n", "collectors.journald.read_from: expected end or beginning"),
    ("collectors: {journald: {units: [1]}}\n", "collectors.journald.units: expected a string or a list"),
    ("collectors: {auth: {exclude: '['}}\n", "collectors.auth.exclude: invalid regular expression"),
    ("collectors: {containers: {interval: 0s}}\n", "collectors.containers.interval"),
    ("server: {tls_cert_file: a.crt}\n", "server.tls_cert_file and server.tls_key_file go together"),
    ("heartbeat: {interval: never}\n", "heartbeat.interval"),
    ("shipper: {max_log_records_per_request: 0}\n", "shipper.max_log_records_per_request: must be at least 1"),
])
def test_new_keys_bad_values(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_agent_config(f)


def test_certs(tmp_path: Path) -> None:
    d = tmp_path / "ca"
    init(d, ["localhost", "127.0.0.1"])
    assert (d / "ca.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(CertError, match="a CA is already there"):
        init(d, ["localhost"])
    crt, key = issue(d, "web-1", org="acme", days=30)
    assert key.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    assert cert.subject.rfc4514_string() in ("CN=web-1,O=acme", "O=acme,CN=web-1")
    server = x509.load_pem_x509_certificate((d / "server.crt").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(v) for v in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    serial = revoke(d, "web-1")
    assert revoke(d, "web-1") == serial  # twice: listed once
    crl = x509.load_pem_x509_crl((d / "crl.pem").read_bytes())
    assert [r.serial_number for r in crl] == [serial]
    with pytest.raises(CertError, match="no such agent"):
        revoke(d, "nobody")
    with pytest.raises(CertError, match="plain name"):
        issue(d, "../x", org="acme")
    with pytest.raises(CertError, match="certs init"):
        issue(tmp_path / "empty", "a", org="acme")


def test_scrape_configs_checked_at_load(tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text("scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['http://x:1']}]\n")
    with pytest.raises(ConfigError, match=r"agent.yaml: .*scrape_configs\[0\]"):
        load_agent_config(f)
    f.write_text("scrape_configs: {job_name: a}\n")
    with pytest.raises(ConfigError, match="scrape_configs: expected a list"):
        load_agent_config(f)
    f.write_text("scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n  static_configs: [{targets: ['127.0.0.1:9100']}]\n")
    assert load_agent_config(f).scrape_configs[0]["job_name"] == "a"


def test_scraped_series_keep_their_job_and_instance() -> None:
    from clearsight.agent.sample import Sample
    from tests.unit.agent.test_shipper import decode

    enc = Encoder({"instance": "host-1", "job": "node", "dc": "par"})
    s = Sample("up", (("instance", "127.0.0.1:9100"), ("job", "ne")), 1.0)
    [(own, _, _)] = decode(enc.encode([s], 1000, own_labels_win=True)[0][0])
    [(host, _, _)] = decode(enc.encode([s], 1000)[0][0])
    assert dict(own) == {"__name__": "up", "instance": "127.0.0.1:9100", "job": "ne", "dc": "par"}
    assert dict(host) == {"__name__": "up", "instance": "host-1", "job": "node", "dc": "par"}
