"""What every receiver integration gets and returns, and the config helpers they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from clearsight.config import parse_duration_ms
from clearsight.notify.alert import Alert, format_time


class ReceiverConfigError(ValueError):
    """A receiver field that cannot be used; the message starts with the field's path."""


class DeliveryError(Exception):
    """A failed delivery; ``retryable`` False stops the retries (e.g. HTTP 4xx but 429)."""

    def __init__(self, message: str, *, retryable: bool = True, reason: str = "other") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason


@dataclass(frozen=True)
class Notification:
    """One flush of one aggregation group to one receiver."""

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: Sequence[Alert]
    now: float
    external_url: str = ""
    truncated: int = 0

    @property
    def status(self) -> str:
        return "firing" if any(not a.resolved(self.now) for a in self.alerts) else "resolved"

    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    def title(self) -> str:
        firing = sum(1 for a in self.alerts if not a.resolved(self.now))
        name = self.group_labels.get("alertname") or self.common_labels().get("alertname", "")
        gl = " ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()) if k != "alertname")
        head = f"[{self.status.upper()}{':' + str(firing) if self.status == 'firing' else ''}]"
        return " ".join(x for x in (head, name, f"({gl})" if gl else "") if x)

    def text(self) -> str:
        lines = []
        for a in self.alerts:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
            summary = a.annotations.get("summary") or a.annotations.get("description") or ""
            lines.append(f"- [{a.status(self.now)}] {labels}" + (f": {summary}" if summary else "")
                         + f" (since {format_time(a.starts_at)})")
        return "\n".join(lines)


def _common(maps: list[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    out = dict(maps[0])
    for m in maps[1:]:
        out = {k: v for k, v in out.items() if m.get(k) == v}
    return out


class Integration(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def send_resolved(self) -> bool: ...

    async def send(self, n: Notification, http: httpx.AsyncClient) -> str:
        """Delivers ``n``; returns a short detail for the history, raises ``DeliveryError``."""
        ...


def check_fields(obj: Any, where: str, known: set[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ReceiverConfigError(f"{where}: expected a mapping")
    for key in obj:
        if key not in known:
            raise ReceiverConfigError(f"{where}.{key}: unknown field (known: {', '.join(sorted(known))})")
    return obj


def str_field(obj: Mapping[str, Any], key: str, where: str, default: str = "", *, required: bool = False) -> str:
    value = obj.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise ReceiverConfigError(f"{where}.{key}: expected a string, got {value!r}")
    if required and not value:
        raise ReceiverConfigError(f"{where}.{key}: required")
    return value


def bool_field(obj: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise ReceiverConfigError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def duration_field(obj: Mapping[str, Any], key: str, where: str, default: str) -> float:
    value = obj.get(key, default)
    try:
        return parse_duration_ms(str(value)) / 1000
    except ValueError as e:
        raise ReceiverConfigError(f"{where}.{key}: {e}") from None


def url_field(obj: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = str_field(obj, key, where, default)
    if not value:
        raise ReceiverConfigError(f"{where}.{key}: required")
    if not value.startswith(("http://", "https://")):
        raise ReceiverConfigError(f"{where}.{key}: expected an http(s) URL, got {value!r}")
    return value


def http_failure(kind: str, resp: httpx.Response) -> DeliveryError:
    """Alertmanager's rule: 5xx and 429 are retried, other 4xx are not."""
    retry = resp.status_code >= 500 or resp.status_code == 429
    body = resp.text[:200].strip()
    return DeliveryError(f"{kind}: unexpected status code {resp.status_code}" + (f": {body}" if body else ""),
                         retryable=retry, reason="serverError" if retry else "clientError")


async def post(kind: str, http: httpx.AsyncClient, url: str, *, timeout: float, ok: Sequence[int] = (),
               **kwargs: Any) -> httpx.Response:
    try:
        resp = await http.post(url, timeout=timeout, **kwargs)
    except httpx.HTTPError as e:
        raise DeliveryError(f"{kind}: {type(e).__name__}: {e}", reason="connection") from None
    if (ok and resp.status_code not in ok) or (not ok and not 200 <= resp.status_code < 300):
        raise http_failure(kind, resp)
    return resp


@dataclass
class GlobalDefaults:
    """The ``global`` section of the notification config (Alertmanager's names)."""

    resolve_timeout: float = 300.0
    smtp_from: str = ""
    smtp_smarthost: str = ""
    smtp_hello: str = "localhost"
    smtp_auth_username: str = ""
    smtp_auth_password: str = ""
    smtp_require_tls: bool = True
    slack_api_url: str = ""
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    http_timeout: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)
