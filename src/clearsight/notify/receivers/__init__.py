"""Receiver integrations, by the config key that lists them (Alertmanager's names where it has one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clearsight.notify.receivers import alertmanager, email, pagerduty, script, slack, webhook
from clearsight.notify.receivers.base import GlobalDefaults, Integration

PARSERS: dict[str, Callable[[Any, str, GlobalDefaults], Integration]] = {
    "webhook_configs": webhook.parse,
    "slack_configs": slack.parse,
    "email_configs": email.parse,
    "pagerduty_configs": pagerduty.parse,
    "script_configs": script.parse,
    "alertmanager_configs": alertmanager.parse,
}
