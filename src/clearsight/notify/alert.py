"""The alert the notifier handles: Alertmanager's model (labels, annotations, start/end, generator).

Alerts arrive as Alertmanager API v2 *postable alerts* (``parse_postable``). An alert whose
``endsAt`` is in the past is resolved; one without ``endsAt`` stays firing for ``resolve_timeout``
after its last update, as in Alertmanager.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class AlertError(ValueError):
    """A postable alert that cannot be accepted; the message names the field."""


@dataclass(frozen=True)
class Alert:
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: float = 0.0
    ends_at: float = 0.0  # 0: not set by the sender (resolve_timeout applies)
    generator_url: str = ""
    updated_at: float = 0.0
    timeout: bool = False  # ends_at was derived from resolve_timeout

    @cached_property
    def fingerprint(self) -> str:
        # Computed once per alert (labels never change): routing, grouping, dedup and the
        # notification log each ask for it (it was a third of the CPU of a 10k-alert fan-out).
        return fingerprint(self.labels)

    def resolved(self, now: float) -> bool:
        return self.ends_at != 0.0 and self.ends_at <= now

    def status(self, now: float) -> str:
        return "resolved" if self.resolved(now) else "firing"

    def merge(self, newer: Alert) -> Alert:
        """Alertmanager's merge of a re-sent alert into the one held (same labels)."""
        out = newer
        if self.starts_at and (not newer.starts_at or self.starts_at < newer.starts_at):
            out = replace(out, starts_at=self.starts_at)
        # A timeout-derived end never replaces an explicit one that is later.
        if newer.timeout and not self.timeout and self.ends_at > newer.ends_at:
            out = replace(out, ends_at=self.ends_at, timeout=False)
        return out


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id of a label set (sorted name/value pairs)."""
    h = hashlib.sha256()
    for k in sorted(labels):
        h.update(k.encode())
        h.update(b"\xff")
        h.update(labels[k].encode())
        h.update(b"\xff")
    return h.hexdigest()[:16]


def parse_time(value: Any, where: str) -> float:
    """RFC 3339 (as Alertmanager accepts) to unix seconds; empty/None is 0."""
    if value is None or value == "":
        return 0.0
    if not isinstance(value, str):
        raise AlertError(f"{where}: expected an RFC 3339 time string, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Go prints up to nanoseconds; Python parses up to microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise AlertError(f"{where}: invalid RFC 3339 time {value!r}") from None
    if dt.tzinfo is None:
        raise AlertError(f"{where}: time {value!r} has no time zone")
    if dt.year <= 1:  # Go's zero time
        return 0.0
    return dt.timestamp()


def format_time(ts: float) -> str:
    """Unix seconds to RFC 3339 with milliseconds, UTC (``0001-01-01T00:00:00Z`` for unset)."""
    if ts <= 0 or not math.isfinite(ts):
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _str_map(value: Any, where: str, *, label_names: bool) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AlertError(f"{where}: expected an object of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise AlertError(f"{where}.{k}: expected a string value, got {v!r}")
        if label_names and not _LABEL_NAME.match(k):
            raise AlertError(f"{where}: invalid label name {k!r}")
        out[k] = v
    return out


def parse_postable(obj: Any, where: str, now: float, resolve_timeout: float) -> Alert:
    """One Alertmanager API v2 postable alert, validated as Alertmanager does."""
    if not isinstance(obj, Mapping):
        raise AlertError(f"{where}: expected an alert object")
    unknown = set(obj) - {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    if unknown:
        raise AlertError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    labels = {k: v for k, v in _str_map(obj.get("labels"), f"{where}.labels", label_names=True).items() if v}
    if not labels:
        raise AlertError(f"{where}.labels: at least one label pair required")
    annotations = _str_map(obj.get("annotations"), f"{where}.annotations", label_names=False)
    starts = parse_time(obj.get("startsAt"), f"{where}.startsAt")
    ends = parse_time(obj.get("endsAt"), f"{where}.endsAt")
    gen = obj.get("generatorURL") or ""
    if not isinstance(gen, str):
        raise AlertError(f"{where}.generatorURL: expected a string")
    if starts and ends and ends < starts:
        raise AlertError(f"{where}: endsAt is before startsAt")
    timeout = False
    if not starts:
        starts = ends if ends and ends < now else now
    if not ends:
        ends = now + resolve_timeout
        timeout = True
    return Alert(labels=labels, annotations=annotations, starts_at=starts, ends_at=ends, generator_url=gen,
                 updated_at=now, timeout=timeout)


def to_postable(alert: Alert) -> dict[str, Any]:
    return {"labels": dict(alert.labels), "annotations": dict(alert.annotations),
            "startsAt": format_time(alert.starts_at), "endsAt": format_time(alert.ends_at),
            "generatorURL": alert.generator_url}
