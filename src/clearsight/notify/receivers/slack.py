"""Slack incoming webhook: ``{"channel", "username", "text", "attachments": [...]}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from clearsight.notify.receivers.base import (
    GlobalDefaults,
    Notification,
    bool_field,
    check_fields,
    duration_field,
    post,
    str_field,
    url_field,
)


def payload(n: Notification, channel: str, username: str, title: str, text: str) -> dict[str, Any]:
    color = "danger" if n.status == "firing" else "good"
    body: dict[str, Any] = {
        "text": title or n.title(),
        "attachments": [{"color": color, "title": title or n.title(), "text": text or n.text(),
                         "fallback": title or n.title()}],
    }
    if channel:
        body["channel"] = channel
    if username:
        body["username"] = username
    return body


@dataclass(frozen=True)
class Slack:
    api_url: str
    channel: str = ""
    username: str = ""
    title: str = ""
    text: str = ""
    send_resolved: bool = False
    timeout: float = 10.0
    kind: str = "slack"

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        resp = await post(self.kind, http, self.api_url, timeout=self.timeout,
                          json=payload(n, self.channel, self.username, self.title, self.text))
        return f"HTTP {resp.status_code}"


def parse(obj: Any, where: str, g: GlobalDefaults) -> Slack:
    o = check_fields(obj, where, {"api_url", "channel", "username", "title", "text", "send_resolved", "timeout"})
    return Slack(api_url=url_field(o, "api_url", where, g.slack_api_url), channel=str_field(o, "channel", where),
                 username=str_field(o, "username", where), title=str_field(o, "title", where),
                 text=str_field(o, "text", where), send_resolved=bool_field(o, "send_resolved", where, False),
                 timeout=duration_field(o, "timeout", where, f"{int(g.http_timeout)}s"))
