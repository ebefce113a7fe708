"""Alerting end to end in a real ``clearsight server``: a remote-written metric crosses a rule's
threshold, the notifier routes the alert to an email (aiosmtpd with STARTTLS), a webhook and Debian's
Alertmanager 0.25; then Debian's ``amtool`` and the ``clearsight alerts``/``silence`` commands work
against Clearsight's Alertmanager API, and a silence survives a restart."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.support.peers import free_port, require_binary, start_alertmanager, start_clearsight
from tests.unit.notify.fakes import FakeServer, statuses

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
RULES = """
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: TooHot
        expr: temperature > 50
        labels: {severity: critical}
        annotations: {summary: "room {{ $labels.room }} at {{ $value }} degrees"}
"""


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Any, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope, session.ssl is not None))
        return "250 OK"


def _wait(fn: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.2)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clearsight", *args, "--url", url], capture_output=True, text=True,
                          timeout=60)


def _amtool(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), f"--alertmanager.url={url}", *args], capture_output=True,
                          text=True, timeout=60)


def test_threshold_to_email_webhook_and_alertmanager_then_amtool(tmp_path: Path) -> None:
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(crt, key)
    mailbox = _Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port, tls_context=tls, require_starttls=True)
    smtp.start()
    am = start_alertmanager(tmp_path / "am")
    cs = None
    try:
        with FakeServer(statuses(500)) as hook:  # the webhook fails once: retried
            workdir = tmp_path / "cs"
            workdir.mkdir()
            (workdir / "rules.yml").write_text(RULES)
            (workdir / "alerting.yml").write_text(f"""
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
  group_interval: 2s
receivers:
- name: oncall
  email_configs:
  - to: oncall@example.org
    from: clearsight@example.org
    smarthost: 127.0.0.1:{smtp_port}
    tls_config: {{ca_file: {crt}}}
  webhook_configs:
  - url: {hook.url}/hook
    hmac_secret: s3cret
  alertmanager_configs:
  - url: {am.url}
""")
            config = ("rules:\n  files: rules.yml\n  evaluation_interval: 1s\n"
                      "alerting:\n  config_file: alerting.yml\n")
            cs = start_clearsight(workdir, config_yaml=config, data_dir=tmp_path / "data")
            now = int(time.time() * 1000)
            body = encode_snappy(WriteRequest([
                TimeSeries([("__name__", "temperature"), ("room", "a")], [(now - 1000, 20.0), (now, 71.0)]),
                TimeSeries([("__name__", "temperature"), ("room", "b")], [(now, 20.0)])], []))
            assert httpx.post(cs.url + "/api/v1/write", content=body, headers=RW_HEADERS,
                              timeout=10).status_code == 204

            assert _wait(lambda: mailbox.messages), cs.log()
            envelope, used_tls = mailbox.messages[0]
            msg = message_from_bytes(envelope.content, policy=default_policy)
            assert used_tls and envelope.rcpt_tos == ["oncall@example.org"]
            assert msg["Subject"] == "[FIRING:1] TooHot"
            assert "room=a" in msg.get_body().get_content()

            got = _wait(lambda: httpx.get(am.url + "/api/v2/alerts", timeout=10).json())
            assert [(a["labels"]["alertname"], a["labels"]["room"]) for a in got] == [("TooHot", "a")]

            assert _wait(lambda: len(hook.requests) >= 2), cs.log()
            payload = hook.requests[-1].json()
            assert payload["version"] == "4" and payload["alerts"][0]["labels"]["room"] == "a"
            assert hook.requests[-1].headers["x-clearsight-signature"].startswith("sha256=")

            history = httpx.get(cs.url + "/api/v1/notifications", timeout=10).json()["data"]
            assert {"retrying", "success"} <= {h["result"] for h in history if h["integration"] == "webhook[0]"}
            metrics = httpx.get(cs.url + "/metrics", timeout=10).text
            assert 'clearsight_notification_requests_failed_total{integration="webhook"} 1.0' in metrics

            # amtool against Clearsight's Alertmanager API
            q = _amtool(cs.url, "alert", "query", "-o", "json")
            assert q.returncode == 0, q.stderr
            assert [a["labels"]["room"] for a in json.loads(q.stdout)] == ["a"]
            add = _amtool(cs.url, "silence", "add", "room=a", "--comment=maintenance", "--author=ops",
                          "--duration=1h")
            assert add.returncode == 0, add.stderr
            sid = add.stdout.strip()
            sq = _amtool(cs.url, "silence", "query", "-o", "json")
            assert [s["id"] for s in json.loads(sq.stdout)] == [sid]
            suppressed = _cli(cs.url, "alerts", "--state", "suppressed", "-o", "json")
            assert [a["status"]["silencedBy"] for a in json.loads(suppressed.stdout)] == [[sid]]
            bad = _amtool(cs.url, "silence", "add", 'room=~"("', "--comment=x", "--author=y")
            assert bad.returncode != 0

            # the clearsight CLI: add (until resolved), list, expire
            added = _cli(cs.url, "silence", "add", "room=b", "--until-resolved", "--comment", "x", "--author", "me")
            assert added.returncode == 0, added.stderr
            assert "matches no firing alert" in added.stderr
            listed = _cli(cs.url, "silence", "list")
            assert added.stdout.strip() in listed.stdout and "until resolved" in listed.stdout
            expired = _amtool(cs.url, "silence", "expire", sid)
            assert expired.returncode == 0, expired.stderr
            assert _cli(cs.url, "silence", "expire", sid).returncode == 1  # already expired
            state = httpx.get(f"{cs.url}/api/v2/silence/{sid}", timeout=10).json()["status"]["state"]
            assert state == "expired"
            cs.stop()
            cs = start_clearsight(workdir, config_yaml=config, data_dir=tmp_path / "data")
            after = httpx.get(cs.url + "/api/v2/silences", timeout=10).json()
            assert {s["id"] for s in after} == {sid, added.stdout.strip()}
    finally:
        if cs is not None:
            cs.stop()
        am.stop()
        smtp.stop()
