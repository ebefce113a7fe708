"""The notification pipeline, as stages (Alertmanager's notify/notify.go).

One flush of an aggregation group runs, in order: inhibit (drop inhibited alerts), time-interval
mute (``mute_time_intervals`` now active, or ``active_time_intervals`` not active: stop), silence
(drop silenced alerts), then fans out to every integration of the receiver concurrently, each
running dedup (against the notification log), retry with exponential backoff until the flush's
deadline, and set-notifies (log what was sent). One integration failing never stops the others.

Beyond Alertmanager: the silence stage drops the alerts it mutes from the notification log's firing
sets, so when the silence expires while the alert still fires, the next flush notifies about it
(Alertmanager waits for repeat_interval: its issues #730, #2896). An alert may carry its own
repeat interval and resolve notification (``model/alert_hints.py``, set by simple rules): a group
repeats at the shortest repeat interval of its firing alerts (the route's for alerts without one),
and a resolved alert's own setting replaces the receiver's ``send_resolved`` for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from clearsight.config import parse_duration_ms
from clearsight.model.alert_hints import NOTIFY_ON_RESOLVE, REPEAT_INTERVAL
from clearsight.notify.alert import Alert, format_time
from clearsight.notify.clock import Clock
from clearsight.notify.config import Receiver, Route
from clearsight.notify.inhibit import Inhibitor
from clearsight.notify.metrics import NotifyMetrics
from clearsight.notify.nflog import Entry, NotificationLog
from clearsight.notify.receivers.base import DeliveryError, Integration, Notification
from clearsight.notify.silences import Silences
from clearsight.notify.timeinterval import TimeInterval, any_contains

log = logging.getLogger("clearsight.notify")

HISTORY = 1000


@dataclass
class Deps:
    """What the stages share (built once per notifier)."""

    clock: Clock
    silences: Silences
    nflog: NotificationLog
    metrics: NotifyMetrics
    inhibitor: Callable[[], Inhibitor]
    time_intervals: Callable[[], dict[str, list[TimeInterval]]]
    http: Callable[[], httpx.AsyncClient]
    external_url: str = ""
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))


@dataclass(frozen=True)
class Flush:
    route: Route
    receiver: Receiver
    group_key: str
    group_labels: dict[str, str]
    deadline: float


def needs_update(entry: Entry | None, firing: frozenset[str], resolved: frozenset[str], send_resolved: bool,
                 repeat: float, now: float) -> bool:
    """Alertmanager's dedup decision for one integration."""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        # All resolved: tell the receiver only if it knew about some of them.
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.timestamp <= now - repeat


def repeat_interval(route_repeat: float, firing: Sequence[Alert]) -> float:
    """The shortest repeat interval wanted by the firing alerts (the route's for those without
    their own ``clearsight_repeat_interval``; an unparsable one counts as absent)."""
    out: float | None = None
    for a in firing:
        own = a.annotations.get(REPEAT_INTERVAL)
        try:
            want = parse_duration_ms(own) / 1000 if own else route_repeat
        except ValueError:
            want = route_repeat
        out = want if out is None else min(out, want)
    return route_repeat if out is None else out


def tells_resolved(a: Alert, send_resolved: bool) -> bool:
    """Whether a resolved alert is notified: its own ``clearsight_notify_on_resolve``, else the
    integration's ``send_resolved``."""
    own = a.annotations.get(NOTIFY_ON_RESOLVE)
    return send_resolved if own not in ("true", "false") else own == "true"


async def run_pipeline(deps: Deps, f: Flush, alerts: Sequence[Alert]) -> bool:
    """Runs one flush; True when every integration succeeded (or had nothing to do)."""
    now = deps.clock.now()
    inhibitor = deps.inhibitor()
    alerts = [a for a in alerts if not inhibitor.inhibited_by(a)]
    if not alerts:
        return True
    intervals = deps.time_intervals()
    if any(any_contains(intervals.get(n, []), now) for n in f.route.mute_time_intervals):
        return True
    if f.route.active_time_intervals and not any(any_contains(intervals.get(n, []), now)
                                                 for n in f.route.active_time_intervals):
        return True
    kept: list[Alert] = []
    muted: set[str] = set()
    for a in alerts:
        sids = deps.silences.mutes(a.labels)
        if sids:
            muted.add(a.fingerprint)
            for sid in sids:
                deps.silences.record_muted(sid, a.fingerprint)
        else:
            kept.append(a)
    if muted:
        deps.nflog.forget_firing(f.group_key + "|", muted)
    if not kept or not f.receiver.integrations:
        return True
    results = await asyncio.gather(*(_integration(deps, f, i, integ, kept, now)
                                     for i, integ in enumerate(f.receiver.integrations)),
                                   return_exceptions=True)
    ok = True
    for r in results:
        if isinstance(r, BaseException):
            log.error("notification pipeline error", exc_info=r, extra={"group_key": f.group_key})
            ok = False
        elif not r:
            ok = False
    return ok


async def _integration(deps: Deps, f: Flush, index: int, integ: Integration, alerts: list[Alert],
                       now: float) -> bool:
    key = f"{f.group_key}|{f.receiver.name}|{integ.kind}[{index}]"
    firing_alerts = [a for a in alerts if not a.resolved(now)]
    told = {id(a) for a in alerts if a.resolved(now) and tells_resolved(a, integ.send_resolved)}
    firing = frozenset(a.fingerprint for a in firing_alerts)
    resolved = frozenset(a.fingerprint for a in alerts if a.resolved(now))
    # The resolved alerts to tell about stand for ``resolved`` with send_resolved in the dedup.
    told_fps = frozenset(a.fingerprint for a in alerts if id(a) in told)
    if not needs_update(deps.nflog.get(key), firing, told_fps, True,
                        repeat_interval(f.route.repeat_interval, firing_alerts), now):
        return True
    to_send = [a for a in alerts if not a.resolved(now) or id(a) in told]
    if to_send:
        n = Notification(receiver=f.receiver.name, group_key=f.group_key, group_labels=f.group_labels,
                         alerts=to_send, now=now, external_url=deps.external_url)
        if not await _retry(deps, f, index, integ, n):
            return False
    deps.nflog.log(key, firing, resolved, now)
    return True


async def _retry(deps: Deps, f: Flush, index: int, integ: Integration, n: Notification) -> bool:
    m = deps.metrics
    kind = integ.kind
    delay = deps.backoff_initial
    attempt = 0
    m.notifications.labels(kind).inc()
    while True:
        attempt += 1
        m.requests.labels(kind).inc()
        t0 = time.perf_counter()
        error: DeliveryError | None = None
        try:
            detail = await integ.send(n, deps.http())
        except DeliveryError as e:
            error = e
        except Exception as e:  # a bug in an integration must not take the pipeline down
            error = DeliveryError(f"{kind}: {type(e).__name__}: {e}", reason="other")
        m.latency.labels(kind).observe(time.perf_counter() - t0)
        now = deps.clock.now()
        entry = {"time": format_time(now), "receiver": f.receiver.name, "integration": f"{kind}[{index}]",
                 "groupKey": f.group_key, "status": n.status, "alerts": len(n.alerts), "attempt": attempt}
        if error is None:
            deps.history.append({**entry, "result": "success", "detail": detail})
            log.info("notification sent", extra={"receiver": f.receiver.name, "integration": f"{kind}[{index}]",
                                                 "alerts": len(n.alerts), "attempt": attempt})
            return True
        m.requests_failed.labels(kind).inc()
        give_up = not error.retryable or now + delay >= f.deadline
        log.warning("notification failed: %s", error, extra={
            "receiver": f.receiver.name, "integration": f"{kind}[{index}]", "attempt": attempt,
            "retry": not give_up, "group_key": f.group_key})
        if give_up:
            m.notifications_failed.labels(kind, error.reason).inc()
            deps.history.append({**entry, "result": "failed", "detail": str(error)})
            log.error("notification given up after %d attempt(s): %s", attempt, error,
                      extra={"receiver": f.receiver.name, "integration": f"{kind}[{index}]"})
            return False
        deps.history.append({**entry, "result": "retrying", "detail": str(error)})
        await deps.clock.sleep(delay)
        delay = min(delay * 2, deps.backoff_max)
