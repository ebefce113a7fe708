"""PagerDuty Events API v2: one ``trigger`` (or ``resolve``) event per group, deduplicated by group key.

The documented format: ``POST /v2/enqueue`` with ``routing_key``, ``event_action``
(trigger|resolve), ``dedup_key`` and, for trigger, ``payload`` {summary (<= 1024 chars), source,
severity (critical|error|warning|info), custom_details}; PagerDuty answers 202.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

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

SEVERITIES = ("critical", "error", "warning", "info")


def payload(n: Notification, routing_key: str, severity: str, source: str, client: str,
            client_url: str) -> dict[str, Any]:
    dedup = hashlib.sha256(n.group_key.encode()).hexdigest()
    action = "trigger" if n.status == "firing" else "resolve"
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup}
    if action == "trigger":
        sev = severity or n.common_labels().get("severity", "")
        body["payload"] = {
            "summary": n.title()[:1024],
            "source": source or client or "clearsight",
            "severity": sev if sev in SEVERITIES else "error",
            "custom_details": {"firing": n.text(), "num_firing": sum(1 for a in n.alerts if not a.resolved(n.now))},
        }
        if client:
            body["client"] = client
        if client_url:
            body["client_url"] = client_url
    return body


@dataclass(frozen=True)
class PagerDuty:
    routing_key: str
    url: str
    severity: str = ""
    source: str = ""
    client: str = "Clearsight"
    client_url: str = ""
    send_resolved: bool = True
    timeout: float = 10.0
    kind: str = "pagerduty"

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        body = payload(n, self.routing_key, self.severity, self.source, self.client, self.client_url)
        resp = await post(self.kind, http, self.url, timeout=self.timeout, json=body, ok=(200, 202))
        return f"HTTP {resp.status_code} {body['event_action']}"


def parse(obj: Any, where: str, g: GlobalDefaults) -> PagerDuty:
    o = check_fields(obj, where, {"routing_key", "url", "severity", "source", "client", "client_url",
                                  "send_resolved", "timeout", "service_key"})
    if "service_key" in o:
        raise ReceiverConfigError(f"{where}.service_key: Events API v1 is not supported; use routing_key (v2)")
    severity = str_field(o, "severity", where)
    if severity and severity not in SEVERITIES:
        raise ReceiverConfigError(f"{where}.severity: must be one of {', '.join(SEVERITIES)}")
    return PagerDuty(routing_key=str_field(o, "routing_key", where, required=True),
                     url=url_field(o, "url", where, g.pagerduty_url), severity=severity,
                     source=str_field(o, "source", where), client=str_field(o, "client", where, "Clearsight"),
                     client_url=str_field(o, "client_url", where),
                     send_resolved=bool_field(o, "send_resolved", where, True),
                     timeout=duration_field(o, "timeout", where, f"{int(g.http_timeout)}s"))
