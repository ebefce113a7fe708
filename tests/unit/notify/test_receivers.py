"""Each receiver against a real server: local HTTP fakes, PagerDuty's documented API, a real SMTP
server with STARTTLS (aiosmtpd), a real subprocess, and Debian's Alertmanager 0.25."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import subprocess
import sys
import time
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from clearsight.notify.alert import Alert, format_time
from clearsight.notify.config import NotifyConfigError, parse_config
from clearsight.notify.receivers import alertmanager, email, pagerduty, script, slack, webhook
from clearsight.notify.receivers.base import DeliveryError, GlobalDefaults, Notification
from tests.support.peers import free_port, start_alertmanager

from .fakes import FakeServer, statuses
from .fakes import pagerduty as pd_api
from .support import T0

pytestmark = pytest.mark.anyio
G = GlobalDefaults()


def _notification(*, resolved: bool = False, n: int = 2, now: float = T0) -> Notification:
    alerts = [Alert(labels={"alertname": "HighCPU", "instance": f"web-{i}", "severity": "critical"},
                    annotations={"summary": f"CPU on web-{i} above 90%"}, starts_at=now - 60,
                    ends_at=now - 1 if resolved else now + 600, generator_url="http://cs/graph") for i in range(n)]
    return Notification(receiver="team", group_key='{}:{alertname="HighCPU"}', group_labels={"alertname": "HighCPU"},
                        alerts=alerts, now=now, external_url="http://clearsight:9800")


async def test_webhook_v4_payload_and_hmac_signature() -> None:
    with FakeServer(statuses()) as srv:
        hook = webhook.parse({"url": srv.url + "/hook", "hmac_secret": "s3cret", "max_alerts": 1}, "w", G)
        async with httpx.AsyncClient() as http:
            await hook.send(_notification(), http)
    req = srv.requests[0]
    body = req.json()
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "team"
    assert body["groupLabels"] == {"alertname": "HighCPU"}
    assert body["commonLabels"] == {"alertname": "HighCPU", "severity": "critical"}
    assert body["truncatedAlerts"] == 1 and len(body["alerts"]) == 1
    a = body["alerts"][0]
    assert a["startsAt"] == format_time(T0 - 60) and a["endsAt"] == "0001-01-01T00:00:00Z"
    assert a["fingerprint"] == Alert(labels=a["labels"]).fingerprint
    ts = req.headers["x-clearsight-timestamp"]
    expected = hmac.new(b"s3cret", ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-clearsight-signature"] == "sha256=" + expected


async def test_webhook_status_codes_decide_retry() -> None:
    with FakeServer(statuses(503, 400)) as srv:
        hook = webhook.parse({"url": srv.url}, "w", G)
        async with httpx.AsyncClient() as http:
            with pytest.raises(DeliveryError) as e1:
                await hook.send(_notification(), http)
            with pytest.raises(DeliveryError) as e2:
                await hook.send(_notification(), http)
            assert (await hook.send(_notification(), http)) == "HTTP 200"
    assert e1.value.retryable and not e2.value.retryable


async def test_webhook_connection_refused_is_a_retryable_failure() -> None:
    with FakeServer(statuses()) as srv:
        url = srv.url
    hook = webhook.parse({"url": url}, "w", G)
    async with httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError) as e:
            await hook.send(_notification(), http)
    assert e.value.retryable and e.value.reason == "connection"


async def test_slack_incoming_webhook() -> None:
    with FakeServer(statuses()) as srv:
        s = slack.parse({"api_url": srv.url + "/services/T/B/X", "channel": "#ops", "send_resolved": True}, "s", G)
        async with httpx.AsyncClient() as http:
            await s.send(_notification(resolved=True), http)
    body = srv.requests[0].json()
    assert body["channel"] == "#ops"
    assert body["text"].startswith("[RESOLVED] HighCPU")
    assert body["attachments"][0]["color"] == "good"
    assert "instance=web-1" in body["attachments"][0]["text"]


async def test_pagerduty_events_v2_trigger_then_resolve() -> None:
    with FakeServer(pd_api) as srv:
        pd = pagerduty.parse({"routing_key": "R" * 32, "url": srv.url + "/v2/enqueue"}, "p", G)
        async with httpx.AsyncClient() as http:
            assert (await pd.send(_notification(), http)).endswith("trigger")
            assert (await pd.send(_notification(resolved=True), http)).endswith("resolve")
            bad = pagerduty.parse({"routing_key": "short", "url": srv.url + "/v2/enqueue"}, "p", G)
            with pytest.raises(DeliveryError) as e:
                await bad.send(_notification(), http)
    trig, res = srv.requests[0].json(), srv.requests[1].json()
    assert trig["payload"]["severity"] == "critical" and trig["payload"]["source"] == "Clearsight"
    assert trig["dedup_key"] == res["dedup_key"] and "payload" not in res
    assert not e.value.retryable and "routing_key" in str(e.value)


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope, session.ssl is not None))
        return "250 OK"


def _cert(tmp: Path) -> tuple[Path, Path]:
    key, crt = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, crt


async def test_email_over_smtp_with_starttls(tmp_path: Path) -> None:
    key, crt = _cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)
    handler = _Collect()
    port = free_port()
    ctrl = Controller(handler, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True)
    ctrl.start()
    try:
        mail = email.parse({"to": "oncall@example.org", "from": "cs@example.org", "smarthost": f"127.0.0.1:{port}",
                            "tls_config": {"ca_file": str(crt)}}, "e", G)
        async with httpx.AsyncClient() as http:
            await mail.send(_notification(), http)
        # a server without STARTTLS is refused when require_tls is true (the default)
        pport = free_port()
        plain = Controller(_Collect(), hostname="127.0.0.1", port=pport)
        plain.start()
        try:
            strict = email.parse({"to": "a@b.c", "from": "c@b.a", "smarthost": f"127.0.0.1:{pport}"}, "e", G)
            async with httpx.AsyncClient() as http:
                with pytest.raises(DeliveryError, match="STARTTLS"):
                    await strict.send(_notification(), http)
        finally:
            plain.stop()
    finally:
        ctrl.stop()
    envelope, tls = handler.messages[0]
    assert tls
    assert envelope.rcpt_tos == ["oncall@example.org"] and envelope.mail_from == "cs@example.org"
    msg = message_from_bytes(envelope.content, policy=default_policy)
    assert msg["Subject"] == "[FIRING:2] HighCPU"
    assert "instance=web-0" in msg.get_body().get_content()


async def test_script_gets_json_on_stdin_and_output_is_recorded(tmp_path: Path) -> None:
    prog = "import json,sys,os; d=json.load(sys.stdin); print(os.environ['CLEARSIGHT_ALERT_STATUS'], len(d['alerts']))"
    s = script.parse({"command": [sys.executable, "-c", prog], "timeout": "20s"}, "x", G)
    async with httpx.AsyncClient() as http:
        assert (await s.send(_notification(), http)).strip() == "firing 2"
        failing = script.parse({"command": [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]}, "x", G)
        with pytest.raises(DeliveryError, match="exited with 3: boom"):
            await failing.send(_notification(), http)
        slow = script.parse({"command": [sys.executable, "-c", "import time; time.sleep(60)"], "timeout": "1s"},
                            "x", G)
        with pytest.raises(DeliveryError, match="timed out"):
            await slow.send(_notification(), http)


@pytest.mark.peer
async def test_forward_to_debian_alertmanager(tmp_path: Path) -> None:
    am = start_alertmanager(tmp_path)
    try:
        fwd = alertmanager.parse({"url": am.url}, "a", G)
        async with httpx.AsyncClient() as http:
            await fwd.send(_notification(now=time.time()), http)
            got = (await http.get(am.url + "/api/v2/alerts")).json()
    finally:
        am.stop()
    assert sorted(a["labels"]["instance"] for a in got) == ["web-0", "web-1"]
    assert all(a["annotations"]["summary"].startswith("CPU on") for a in got)


def test_receiver_config_errors_name_file_line_and_field() -> None:
    text = """route:
  receiver: r
receivers:
- name: r
  webhook_configs:
  - url: ftp://x
"""
    with pytest.raises(NotifyConfigError) as e:
        parse_config(text, "am.yml")
    assert str(e.value).startswith("am.yml:6: receivers[0].webhook_configs[0].url: expected an http(s) URL")
