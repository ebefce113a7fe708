"""A recording integration and a harness running the notifier on a virtual clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from clearsight.notify.alert import format_time
from clearsight.notify.clock import VirtualClock
from clearsight.notify.config import NotifyConfig, Receiver, parse_config
from clearsight.notify.notifier import Notifier
from clearsight.notify.receivers.base import DeliveryError, Notification

T0 = 1_700_000_000.0  # a Tuesday, 22:13:20 UTC


@dataclass
class Sent:
    at: float  # seconds since T0
    alerts: list[tuple[str, str]]  # (alertname/fingerprint label "a", status)


@dataclass
class Recorder:
    clock: VirtualClock
    send_resolved: bool = True
    fail_times: int = 0
    retryable: bool = True
    kind: str = "webhook"
    sent: list[Sent] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        self.attempts.append(self.clock.now() - T0)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise DeliveryError("recorder: failing on purpose", retryable=self.retryable, reason="serverError")
        self.sent.append(Sent(self.clock.now() - T0, sorted((a.labels.get("a", a.fingerprint), a.status(n.now))
                                                           for a in n.alerts)))
        return "ok"


def with_recorders(cfg: NotifyConfig, recorders: dict[str, list[Recorder]]) -> NotifyConfig:
    receivers = dict(cfg.receivers)
    for name, recs in recorders.items():
        receivers[name] = Receiver(name, tuple(recs))
    return replace(cfg, receivers=receivers)


class Harness:
    def __init__(self, yaml_text: str, receivers: list[str] | None = None, **kw: Any) -> None:
        self.clock = VirtualClock(T0)
        cfg = parse_config(yaml_text, "test.yml")
        self.rec: dict[str, Recorder] = {}
        recs: dict[str, list[Recorder]] = {}
        for name in receivers or list(cfg.receivers):
            r = Recorder(self.clock, **kw)
            self.rec[name] = r
            recs[name] = [r]
        self.notifier = Notifier(with_recorders(cfg, recs), clock=self.clock, maintenance_interval=3600)

    async def __aenter__(self) -> Harness:
        await self.notifier.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.notifier.stop()

    def t(self) -> float:
        return self.clock.now() - T0

    async def at(self, seconds: float) -> None:
        """Advances the virtual clock to T0 + seconds."""
        await self.clock.advance(T0 + seconds - self.clock.now())

    def push(self, *names: str, ends_in: float | None = None, resolved: bool = False, starts_ago: float = 0,
             annotations: dict[str, str] | None = None, **labels: str) -> None:
        now = self.clock.now()
        alerts = []
        for n in names:
            alert: dict[str, Any] = {"labels": {"alertname": "Test", "a": n, **labels},
                                     "annotations": dict(annotations or {}), "startsAt": format_time(now - starts_ago)}
            if resolved:
                alert["endsAt"] = format_time(now)
            elif ends_in is not None:
                alert["endsAt"] = format_time(now + ends_in)
            alerts.append(alert)
        self.notifier.put_alerts(alerts)


def sent(r: Recorder) -> list[tuple[float, list[tuple[str, str]]]]:
    return [(s.at, s.alerts) for s in r.sent]
