"""Webhook receiver: Alertmanager's webhook payload (version 4), optionally HMAC-SHA256 signed.

With ``hmac_secret`` set, the request carries ``X-Clearsight-Signature: sha256=<hex>``, the
HMAC-SHA256 of the exact body bytes with the secret, and ``X-Clearsight-Timestamp`` (unix seconds,
also covered: the signed message is ``<timestamp>.<body>``) so a receiver can reject replays.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from clearsight.notify.alert import format_time
from clearsight.notify.receivers.base import (
    GlobalDefaults,
    Notification,
    ReceiverConfigError,
    bool_field,
    check_fields,
    duration_field,
    post,
    str_field,
    url_field,
)

SIGNATURE_HEADER = "X-Clearsight-Signature"
TIMESTAMP_HEADER = "X-Clearsight-Timestamp"


def payload(n: Notification, max_alerts: int = 0) -> dict[str, Any]:
    alerts = list(n.alerts)
    truncated = n.truncated
    if max_alerts and len(alerts) > max_alerts:
        truncated += len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": truncated,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": dict(n.group_labels),
        "commonLabels": n.common_labels(),
        "commonAnnotations": n.common_annotations(),
        "externalURL": n.external_url,
        "alerts": [{
            "status": a.status(n.now),
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "startsAt": format_time(a.starts_at),
            "endsAt": format_time(a.ends_at) if a.resolved(n.now) else "0001-01-01T00:00:00Z",
            "generatorURL": a.generator_url,
            "fingerprint": a.fingerprint,
        } for a in alerts],
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class Webhook:
    url: str
    send_resolved: bool = True
    max_alerts: int = 0
    hmac_secret: str = ""
    timeout: float = 10.0
    kind: str = "webhook"

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        body = orjson.dumps(payload(n, self.max_alerts))
        headers = {"Content-Type": "application/json", "User-Agent": "Clearsight"}
        if self.hmac_secret:
            ts = str(int(n.now))
            headers[TIMESTAMP_HEADER] = ts
            headers[SIGNATURE_HEADER] = sign(self.hmac_secret, ts, body)
        resp = await post(self.kind, http, self.url, timeout=self.timeout, content=body, headers=headers)
        return f"HTTP {resp.status_code}"


def parse(obj: Any, where: str, g: GlobalDefaults) -> Webhook:
    o = check_fields(obj, where, {"url", "send_resolved", "max_alerts", "hmac_secret", "timeout", "http_config"})
    max_alerts = o.get("max_alerts", 0)
    if not isinstance(max_alerts, int) or isinstance(max_alerts, bool) or max_alerts < 0:
        raise ReceiverConfigError(f"{where}.max_alerts: expected a non-negative integer")
    if o.get("http_config"):
        raise ReceiverConfigError(f"{where}.http_config: not supported (use hmac_secret to authenticate)")
    return Webhook(url=url_field(o, "url", where), send_resolved=bool_field(o, "send_resolved", where, True),
                   max_alerts=max_alerts, hmac_secret=str_field(o, "hmac_secret", where),
                   timeout=duration_field(o, "timeout", where, f"{int(g.http_timeout)}s"))
