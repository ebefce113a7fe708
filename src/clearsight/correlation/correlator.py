"""Change-to-spike correlation: change events (``type: change``) and security events (Falco alerts,
``type: security``) are matched with anomalies of the same resource's health metrics.

For an event at ``te`` on resource R (the event's resource labels, ``resources/matching.py``):

- change events look for an anomaly in ``(te, te + window]`` against the baseline of
  ``[te - baseline, te)``: what changed after the change;
- security events look in ``[te - window, te + window]`` against the baseline before
  ``te - window``: an attack may show in the metrics before the detector fires.

The metrics are the health rules of R's type (``health/rules.py``: cpu_usage, memory_usage,
disk_usage of hosts by default), read by one range query per rule (``correlation.step``).
Seasonality (``correlation.seasonality``, one day by default): when the metric was just as far out
of today's baseline, the same way, in the same window one period earlier, the anomaly is a
recurring pattern (a nightly job) and is not correlated; without data from then there is no check. An event
is examined once its window is complete (``te + window <= now``), at most ``correlation.lookback``
after it; each (event, resource, metric) yields at most one correlation, stored as an event of
type ``correlation`` (through the event writer) whose message explains it and whose ``data`` links
both sides: ``cause`` (the event's id, type, message, time) and ``anomaly`` (resource, metric, its
query, baseline median and MAD, first anomalous time, peak value and time, robust z-score).
Examined event ids are remembered, and re-read from the stored correlations after a restart, so a
correlation is never written twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from clearsight.correlation.baseline import F64, I64, Anomaly, find_anomaly
from clearsight.health.evaluator import fmt_value
from clearsight.health.rules import HealthRule
from clearsight.model.labels import Labels, make_labels
from clearsight.model.logs import Event
from clearsight.resources.events import CHANGE, CORRELATION, SECURITY_TYPES, EventReader, EventWriter
from clearsight.resources.matching import ResourceIndex, claimed_ids
from clearsight.resources.model import Resource
from clearsight.resources.registry import ResourceRegistry

log = logging.getLogger("clearsight.correlation")

# Evaluates a PromQL expression over [start_ms, end_ms] every step_ms: per series its labels, the
# timestamps (int64 ms, ascending) and the values (float64).
RangeQueryFunc = Callable[[str, int, int, int], list[tuple[Labels, I64, F64]]]
MAX_EVENTS_PER_PASS = 200
MS_NS = 1_000_000


@dataclass(frozen=True)
class CorrelationSettings:
    window_ms: int = 300_000
    baseline_ms: int = 3600_000
    step_ms: int = 15_000
    threshold: float = 4.0
    lookback_ms: int = 3600_000
    season_ms: int = 86400_000  # 0 = no seasonality check


@dataclass(frozen=True)
class Finding:
    rule: HealthRule
    anomaly: Anomaly


def delay_text(ms: int) -> str:
    s = abs(ms) // 1000
    when = "after" if ms >= 0 else "before"
    return f"{s} s {when}" if s < 120 else f"{s // 60} min {when}"


def explain(metric: str, rid: str, unit: str, a: Anomaly, cause: Event, te_ms: int) -> str:
    what = "change" if cause.type == CHANGE else "security event"
    return (f"{metric} on {rid} {a.direction} from {fmt_value(a.baseline.median, unit)} to "
            f"{fmt_value(a.peak_value, unit)} {delay_text(a.start_ms - te_ms)} {what} '{cause.message[:200]}'")


def _synthetic(rid: str, now_ms: int) -> Resource:
    kind, _, name = rid.partition(":")
    return Resource(id=rid, kind=kind, name=name, first_seen_ms=now_ms, last_seen_ms=now_ms, interval_ms=1,
                    hostname=name if kind == "host" else "", instances=(name,) if kind == "host" else ())


class Correlator:
    def __init__(self, registry: ResourceRegistry, rules: Sequence[HealthRule], range_query_for: Callable[[str], RangeQueryFunc],
                 events: EventReader, write: EventWriter, settings: CorrelationSettings = CorrelationSettings()) -> None:
        self.registry = registry
        self.rules = list(rules)
        self.range_query_for = range_query_for
        self.events = events
        self.write = write
        self.s = settings
        self._done: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.events_examined = 0
        self.correlations_written = 0

    def _done_for(self, tenant: str, now_ms: int) -> set[str]:
        done = self._done.get(tenant)
        if done is None:
            start = now_ms - self.s.lookback_ms - 3 * self.s.window_ms
            stored = self.events.events(tenant, (CORRELATION,), start * MS_NS, now_ms * MS_NS, 100_000)
            done = self._done[tenant] = {str(ev.data.get("cause", {}).get("id", "")) for ev in stored}
        return done

    def run_once(self, now_ms: int) -> None:
        for tenant in self.registry.tenants():
            try:
                self.correlate_tenant(tenant, now_ms)
            except Exception:
                log.exception("correlation pass failed", extra={"tenant": tenant})

    def correlate_tenant(self, tenant: str, now_ms: int) -> list[Event]:
        """Examines the events whose window completed; writes and returns the correlations found."""
        with self._lock:
            done = self._done_for(tenant, now_ms)
            end = now_ms - self.s.window_ms
            evs = self.events.events(tenant, (CHANGE, *SECURITY_TYPES), (end - self.s.lookback_ms) * MS_NS,
                                     end * MS_NS, MAX_EVENTS_PER_PASS)
            todo = sorted((e for e in evs if e.id not in done), key=lambda e: e.timestamp)
            if not todo:
                return []
            resources = self.registry.all(tenant)
            known = {r.id for r in resources}
            index = ResourceIndex(resources)
            out: list[Event] = []
            query = self.range_query_for(tenant)
            for ev in todo:
                labels = dict(ev.resource)
                rids = index.match_all(labels)
                extra = [_synthetic(rid, now_ms) for rid in claimed_ids(labels) if rid not in known]
                if not rids and extra:  # about a resource the registry has not seen: use the event's names
                    index_ev = ResourceIndex([*resources, *extra])
                    rids = [r.id for r in extra]
                else:
                    index_ev = index
                for rid in rids:
                    out += self._correlate(query, ev, rid, index_ev, now_ms)
            if out:
                self.write(tenant, out)
                self.correlations_written += len(out)
            done.update(e.id for e in todo)  # only once written: a failed write is retried next pass
            self.events_examined += len(todo)
            return out

    def _findings(self, query: RangeQueryFunc, ev: Event, rid: str, index: ResourceIndex) -> list[Finding]:
        te = ev.timestamp // MS_NS
        w = self.s.window_ms
        change = ev.type == CHANGE
        lo, hi = (te + 1, te + w) if change else (te - w, te + w)
        base_end = te if change else te - w
        step = self.s.step_ms
        qstart = (base_end - self.s.baseline_ms) // step * step
        kind = rid.partition(":")[0]
        found: list[Finding] = []
        for rule in self.rules:
            if rule.resource_type != kind:
                continue
            try:
                series = query(rule.expr, qstart, hi, step)
            except Exception as e:
                log.warning("correlation query failed", extra={"metric": rule.metric, "error": str(e)})
                continue
            best: Anomaly | None = None
            for labels, ts, vs in series:
                if index.match(dict(labels), kind) != rid or ts.size == 0:
                    continue
                a = find_anomaly(ts, vs, base_end, self.s.baseline_ms, lo, hi, self.s.threshold)
                if a is not None and (best is None or a.score > best.score):
                    best = a
            if best is None:
                continue
            if self.s.season_ms and self._recurring(query, rule, rid, index, lo, hi, best):
                log.debug("anomaly recurs one period earlier: not correlated",
                          extra={"metric": rule.metric, "resource": rid, "event": ev.id})
                continue
            found.append(Finding(rule, best))
        return found

    def _recurring(self, query: RangeQueryFunc, rule: HealthRule, rid: str, index: ResourceIndex, lo: int, hi: int,
                   a: Anomaly) -> bool:
        """Whether the metric was as far out of today's baseline, the same way, in the same window one
        season earlier (a daily batch job, not the change). No data then: no verdict (False)."""
        season = self.s.season_ms
        step = self.s.step_ms
        try:
            series = query(rule.expr, (lo - season) // step * step, hi - season, step)
        except Exception:
            return False
        sign = 1.0 if a.direction == "rose" else -1.0
        b = a.baseline
        for labels, _ts, vs in series:
            if index.match(dict(labels), rule.resource_type) != rid:
                continue
            v = vs[~np.isnan(vs)]
            if v.size and float(np.max(sign * (v - b.median))) / b.scale >= self.s.threshold:
                return True
        return False

    def _correlate(self, query: RangeQueryFunc, ev: Event, rid: str, index: ResourceIndex, now_ms: int) -> list[Event]:
        te = ev.timestamp // MS_NS
        out = []
        for f in self._findings(query, ev, rid, index):
            a, rule = f.anomaly, f.rule
            key = hashlib.sha1(f"{ev.id}|{rid}|{rule.metric}".encode()).hexdigest()[:24]
            severity = "high" if ev.type != CHANGE and ev.severity in ("critical", "high") else "medium"
            data = {
                "cause": {"id": ev.id, "type": ev.type, "message": ev.message, "time_ns": str(ev.timestamp),
                          "severity": ev.severity},
                "anomaly": {"resource": rid, "metric": rule.metric, "query": rule.expr, "unit": rule.unit,
                            "baseline_median": a.baseline.median, "baseline_mad": a.baseline.mad,
                            "baseline_points": a.baseline.points, "start_ms": a.start_ms, "peak_ms": a.peak_ms,
                            "peak_value": a.peak_value, "score": round(a.score, 3), "direction": a.direction},
                "delay_seconds": (a.start_ms - te) / 1000,
                "window_seconds": self.s.window_ms / 1000,
            }
            res = {"resource.id": rid}
            r = index.ids.get(rid)
            if r is not None and r.kind == "host":
                res["host.name"] = r.hostname or r.name
            out.append(Event(id=f"corr-{key}", message=explain(rule.metric, rid, rule.unit, a, ev, te), level="WARN",
                             severity=severity, timestamp=a.start_ms * MS_NS, type=CORRELATION, origin="clearsight",
                             source="correlator", group=rule.metric, data=data, resource=make_labels(res)))
        return out
