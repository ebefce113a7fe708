"""One health evaluation of a tenant's resources: metric thresholds, firing alerts, recent security
events and liveness give each resource ``healthy``, ``warning`` or ``critical``, a human-readable
reason and the signals that contributed. Reads only through a query function and an event reader.

Signals:

- ``metric``: every health rule of the resource's type (``health/rules.py``); the worst series the
  rule attributes to the resource counts;
- ``alert``: ``ALERTS{alertstate="firing"}`` series whose labels name the resource
  (``resources/matching.py``); ``severity`` ``critical``/``page``/``error``/``fatal`` is critical,
  any other (or none) warning;
- ``security_event``: Falco alerts and ``type: security`` events on the resource within the
  security window: severity ``critical`` is critical, ``high`` and ``medium`` warning, ``low`` is
  listed without changing the status;
- ``liveness``: a ``stale`` resource is warning, a ``down`` one critical.

The status is the worst signal; the reason lists the signals at that level (worst first) or says
that all are healthy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clearsight.health.rules import HealthRule
from clearsight.model.logs import Event
from clearsight.resources.events import SECURITY_TYPES, EventReader
from clearsight.resources.matching import ResourceIndex
from clearsight.resources.model import Liveness, Resource
from clearsight.rules.types import QueryFunc

log = logging.getLogger("clearsight.health")

LEVELS = ("healthy", "warning", "critical")
_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
CRITICAL_ALERT_SEVERITIES = frozenset({"critical", "page", "error", "fatal", "emergency"})
MAX_SECURITY_EVENTS = 1000
ALERTS_QUERY = 'ALERTS{alertstate="firing"}'


def worst(levels: Sequence[str]) -> str:
    return max(levels, key=lambda lvl: _RANK[lvl], default="healthy")


def fmt_value(v: float, unit: str = "") -> str:
    if v != v:
        return "NaN"
    text = f"{v:.1f}" if abs(v) < 1e6 else f"{v:.3g}"
    text = text[:-2] if text.endswith(".0") else text
    return f"{text}{unit}"


@dataclass(frozen=True)
class Signal:
    kind: str  # metric | alert | security_event | liveness
    name: str
    status: str
    detail: str
    value: float | None = None
    threshold: float | None = None
    at_ms: int | None = None
    ref: str = ""  # the event id of a security event

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "status": self.status, "detail": self.detail}
        if self.value is not None:
            out["value"] = self.value if self.value == self.value else None
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.at_ms is not None:
            out["time"] = self.at_ms / 1000
        if self.ref:
            out["event_id"] = self.ref
        return out


@dataclass(frozen=True)
class Health:
    resource: str
    status: str
    reason: str
    evaluated_at_ms: int
    signals: tuple[Signal, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "status": self.status, "reason": self.reason,
                "evaluated_at": self.evaluated_at_ms / 1000, "signals": [s.to_json() for s in self.signals]}


@dataclass
class Evaluation:
    """The result of one pass: health per resource id, and the rules that failed (rule -> error)."""

    health: dict[str, Health] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _metric_signals(rules: Sequence[HealthRule], query: QueryFunc, index: ResourceIndex, now_ms: int,
                    errors: dict[str, str]) -> dict[str, list[Signal]]:
    out: dict[str, list[Signal]] = {}
    for rule in rules:
        try:
            vector = query(rule.expr, now_ms)
        except Exception as e:
            errors[f"{rule.resource_type}/{rule.metric}"] = str(e)
            continue
        sign = 1.0 if rule.direction == "above" else -1.0
        best: dict[str, float] = {}  # the worst value per resource (highest, or lowest for "below")
        for s in vector:
            rid = index.match(dict(s.labels), rule.resource_type)
            if rid is None or s.value != s.value:
                continue
            if rid not in best or sign * s.value > sign * best[rid]:
                best[rid] = s.value
        for rid, value in best.items():
            level = rule.level(value)
            th = rule.threshold(level)
            if level == "healthy":
                nxt = rule.warning if rule.warning is not None else rule.critical
                detail = (f"{rule.metric} is {fmt_value(value, rule.unit)}"
                          + (f" (warning at {fmt_value(nxt, rule.unit)})" if nxt is not None else ""))
            else:
                detail = f"{rule.metric} is {fmt_value(value, rule.unit)} ({level} at {fmt_value(th or 0, rule.unit)})"
            out.setdefault(rid, []).append(Signal("metric", rule.metric, level, detail, value=value,
                                                  threshold=th if level != "healthy" else None, at_ms=now_ms))
    return out


def _alert_signals(query: QueryFunc, index: ResourceIndex, now_ms: int,
                   errors: dict[str, str]) -> dict[str, list[Signal]]:
    out: dict[str, list[Signal]] = {}
    try:
        vector = query(ALERTS_QUERY, now_ms)
    except Exception as e:
        errors["alerts"] = str(e)
        return out
    for s in vector:
        lb = {k: v for k, v in s.labels if k not in ("__name__", "alertstate")}
        name = lb.get("alertname", "alert")
        severity = lb.get("severity", "")
        level = "critical" if severity.lower() in CRITICAL_ALERT_SEVERITIES else "warning"
        detail = f"alert {name} is firing" + (f" (severity {severity})" if severity else "")
        for rid in index.match_all(lb):
            out.setdefault(rid, []).append(Signal("alert", name, level, detail, at_ms=now_ms))
    return out


def security_level(ev: Event) -> str:
    sev = ev.severity.lower()
    if sev == "critical":
        return "critical"
    if sev in ("high", "medium"):
        return "warning"
    return "healthy"


def _security_signals(events: list[Event], index: ResourceIndex, now_ms: int) -> dict[str, list[Signal]]:
    out: dict[str, list[Signal]] = {}
    for ev in events:
        rids = index.match_all(dict(ev.resource))
        if not rids:
            continue
        level = security_level(ev)
        ago = max(0, (now_ms - ev.timestamp // 1_000_000) // 1000)
        what = ev.group or ev.type or "security event"
        detail = f"{what} ({ev.severity or 'unknown severity'}) {_ago(ago)}: {ev.message[:200]}"
        for rid in rids:
            out.setdefault(rid, []).append(Signal("security_event", what, level, detail,
                                                  at_ms=ev.timestamp // 1_000_000, ref=ev.id))
    return out


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _liveness_signal(r: Resource, now_ms: int, liveness: Liveness) -> Signal:
    status = r.status(now_ms, liveness)
    silent = max(0, (now_ms - r.last_seen_ms) // 1000)
    if status == "up":
        return Signal("liveness", "liveness", "healthy", f"seen {_ago(int(silent))}", at_ms=r.last_seen_ms)
    level = "critical" if status == "down" else "warning"
    return Signal("liveness", "liveness", level, f"{status}: not seen for {_ago(int(silent)).removesuffix(' ago')}",
                  at_ms=r.last_seen_ms)


def evaluate(resources: Sequence[Resource], rules: Sequence[HealthRule], query: QueryFunc, events: EventReader,
             tenant: str, now_ms: int, *, liveness: Liveness, security_window_ms: int) -> Evaluation:
    """Health of every resource in ``resources`` at ``now_ms``."""
    ev = Evaluation()
    index = ResourceIndex(resources)
    kinds = {r.kind for r in resources}
    per: dict[str, list[Signal]] = {}
    sources = [
        _metric_signals([r for r in rules if r.resource_type in kinds], query, index, now_ms, ev.errors),
        _alert_signals(query, index, now_ms, ev.errors),
    ]
    try:
        recent = events.events(tenant, SECURITY_TYPES, (now_ms - security_window_ms) * 1_000_000,
                               now_ms * 1_000_000, MAX_SECURITY_EVENTS)
        sources.append(_security_signals(recent, index, now_ms))
    except Exception as e:
        ev.errors["security_events"] = str(e)
    for src in sources:
        for rid, sigs in src.items():
            per.setdefault(rid, []).extend(sigs)
    for r in resources:
        sigs = [_liveness_signal(r, now_ms, liveness), *per.get(r.id, [])]
        sigs.sort(key=lambda s: (-_RANK[s.status], s.kind, s.name))
        status = sigs[0].status
        if status == "healthy":
            reason = f"all {len(sigs)} signals healthy"
        else:
            reason = "; ".join(s.detail for s in sigs if s.status == status)
        ev.health[r.id] = Health(r.id, status, reason, now_ms, tuple(sigs))
    return ev
