"""Forwarding to an external Alertmanager: ``POST <url>/api/v2/alerts`` with postable alerts.

Resolved alerts are forwarded with their ``endsAt`` so the external Alertmanager resolves them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from clearsight.notify.alert import to_postable
from clearsight.notify.receivers.base import (
    GlobalDefaults,
    Notification,
    bool_field,
    check_fields,
    duration_field,
    post,
    url_field,
)


@dataclass(frozen=True)
class AlertmanagerForward:
    url: str
    send_resolved: bool = True
    timeout: float = 10.0
    kind: str = "alertmanager"

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        body = orjson.dumps([to_postable(a) for a in n.alerts])
        target = self.url.rstrip("/") + "/api/v2/alerts"
        resp = await post(self.kind, http, target, timeout=self.timeout, content=body,
                          headers={"Content-Type": "application/json"})
        return f"HTTP {resp.status_code} ({len(n.alerts)} alerts)"


def parse(obj: Any, where: str, g: GlobalDefaults) -> AlertmanagerForward:
    o = check_fields(obj, where, {"url", "send_resolved", "timeout"})
    return AlertmanagerForward(url=url_field(o, "url", where), send_resolved=bool_field(o, "send_resolved", where, True),
                               timeout=duration_field(o, "timeout", where, f"{int(g.http_timeout)}s"))
