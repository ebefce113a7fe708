"""The correlator on a virtual clock: a change followed by a CPU rise on the same host yields one
correlation event with an explanation and both sides; no rise, another host, or a second pass yields
none; a security event counts an anomaly before it; restarts do not write twice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clearsight.correlation.correlator import CorrelationSettings, Correlator
from clearsight.health.rules import HealthRule
from clearsight.model.labels import Labels, make_labels
from clearsight.model.logs import Event
from clearsight.resources.model import Resource
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.state import MemoryStateFile

MIN = 60_000
NS = 1_000_000
RULES = [HealthRule("host", "cpu_usage", "cpu", 80, 95, unit="%")]
T0 = 1_000 * MIN  # the change


class World:
    def __init__(self) -> None:
        self.cpu: dict[str, list[tuple[int, float]]] = {}
        self.events: list[Event] = []
        self.written: list[Event] = []
        self.queries: list[tuple[str, int, int, int]] = []

    def range_query(self, expr: str, start: int, end: int, step: int) -> list[tuple[Labels, np.ndarray, np.ndarray]]:  # type: ignore[type-arg]
        self.queries.append((expr, start, end, step))
        out = []
        for inst, pts in self.cpu.items():
            sel = [(t, v) for t, v in pts if start <= t <= end]
            out.append((make_labels({"instance": inst}), np.array([t for t, _ in sel], dtype=np.int64),
                        np.array([v for _, v in sel], dtype=np.float64)))
        return out

    def events_of(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        evs = [e for e in [*self.events, *self.written] if e.type in types and start_ns <= e.timestamp <= end_ns]
        return sorted(evs, key=lambda e: -e.timestamp)[:limit]

    def write(self, tenant: str, evs: list[Event]) -> None:
        self.written += evs


class Reader:
    def __init__(self, w: World) -> None:
        self.w = w

    def events(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        return self.w.events_of(tenant, types, start_ns, end_ns, limit)


def _setup() -> tuple[World, ResourceRegistry, Correlator]:
    w = World()
    reg = ResourceRegistry(MemoryStateFile())
    for name in ("i-123", "i-456"):
        reg.observe("t", [Resource(id=f"host:{name}", kind="host", name=name, first_seen_ms=0, last_seen_ms=T0,
                                   interval_ms=MIN, hostname=name, instances=(name,))])
    step = 15_000
    # an hour of ~12 % on both hosts, then i-123 rises to 95 % 4 minutes after the change
    for inst in ("i-123", "i-456"):
        w.cpu[inst] = [(t, 12.0 + (t // step) % 2) for t in range(T0 - 3600_000, T0 + 10 * MIN, step)]
    w.cpu["i-123"] = [(t, 95.0 if T0 + 4 * MIN <= t <= T0 + 6 * MIN else v) for t, v in w.cpu["i-123"]]
    c = Correlator(reg, RULES, lambda tenant: w.range_query, Reader(w), w.write, CorrelationSettings())
    return w, reg, c


def _change(host: str, t: int = T0, eid: str = "chg-1", typ: str = "change", severity: str = "low") -> Event:
    return Event(id=eid, message="sg-123 opened port 22", level="INFO", severity=severity, timestamp=t * NS, type=typ,
                 resource=make_labels({"host.name": host}))


def test_change_then_spike_is_correlated_once() -> None:
    w, _reg, c = _setup()
    w.events.append(_change("i-123"))
    assert c.correlate_tenant("t", T0 + 4 * MIN) == []  # its window is not complete yet
    assert w.queries == []
    [corr] = c.correlate_tenant("t", T0 + 5 * MIN)
    assert corr.message == ("cpu_usage on host:i-123 rose from 12.5% to 95% 4 min after change "
                            "'sg-123 opened port 22'")
    assert (corr.type, corr.group, corr.timestamp) == ("correlation", "cpu_usage", (T0 + 4 * MIN) * NS)
    assert corr.data["cause"]["id"] == "chg-1" and corr.data["anomaly"]["resource"] == "host:i-123"
    assert corr.data["anomaly"]["query"] == "cpu" and corr.data["delay_seconds"] == 240.0
    assert dict(corr.resource) == {"host.name": "i-123", "resource.id": "host:i-123"}
    # the read covered the baseline hour before the change up to the end of the window
    # ... and the same window a day earlier (no data then: no seasonality verdict)
    assert w.queries == [("cpu", T0 - 3600_000, T0 + 5 * MIN, 15_000),
                         ("cpu", T0 - 86400_000, T0 + 5 * MIN - 86400_000, 15_000)]
    assert w.written == [corr]
    assert c.correlate_tenant("t", T0 + 6 * MIN) == []  # examined once


def test_no_spike_or_other_host_gives_nothing() -> None:
    w, _reg, c = _setup()
    w.events.append(_change("i-456"))
    w.events.append(_change("unknown-host", eid="chg-2"))
    assert c.correlate_tenant("t", T0 + 5 * MIN) == []
    assert w.written == []


def test_security_event_after_the_spike() -> None:
    w, _reg, c = _setup()
    w.events.append(_change("i-123", t=T0 + 7 * MIN, eid="falco-1", typ="falco_alert", severity="critical"))
    [corr] = c.correlate_tenant("t", T0 + 12 * MIN)
    assert corr.message.startswith("cpu_usage on host:i-123 rose from 12.5% to 95% 3 min before security event")
    assert corr.severity == "high" and corr.data["delay_seconds"] == -180.0


def test_restart_does_not_write_twice() -> None:
    w, reg, c = _setup()
    w.events.append(_change("i-123"))
    assert len(c.correlate_tenant("t", T0 + 5 * MIN)) == 1
    again = Correlator(reg, RULES, lambda tenant: w.range_query, Reader(w), w.write, CorrelationSettings())
    assert again.correlate_tenant("t", T0 + 6 * MIN) == []
    assert len(w.written) == 1


def test_failed_write_is_retried() -> None:
    w, reg, _c = _setup()
    w.events.append(_change("i-123"))
    calls = []

    def failing(tenant: str, evs: list[Event]) -> None:
        calls.append(len(evs))
        if len(calls) == 1:
            raise RuntimeError("store overloaded")
        w.write(tenant, evs)

    c = Correlator(reg, RULES, lambda tenant: w.range_query, Reader(w), failing, CorrelationSettings())
    c.run_once(T0 + 5 * MIN)  # logged, not raised
    c.run_once(T0 + 6 * MIN)
    assert calls == [1, 1] and len(w.written) == 1


def test_a_rise_that_recurs_daily_is_not_correlated() -> None:
    w, reg, c = _setup()
    w.events.append(_change("i-123"))
    day = 86400_000
    w.cpu["i-123"] = [(t - day, 90.0 if T0 + 4 * MIN <= t <= T0 + 6 * MIN else 12.0)
                      for t, _ in w.cpu["i-123"]] + w.cpu["i-123"]
    assert c.correlate_tenant("t", T0 + 5 * MIN) == []
    off = Correlator(reg, RULES, lambda tenant: w.range_query, Reader(w), w.write, CorrelationSettings(season_ms=0))
    w.events.append(_change("i-123", eid="chg-2"))
    # a fresh correlator (as after a restart) examines both again: without the check both correlate
    assert [e.data["cause"]["id"] for e in off.correlate_tenant("t", T0 + 5 * MIN)] == ["chg-1", "chg-2"]
