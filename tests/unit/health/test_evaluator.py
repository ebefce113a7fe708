"""Health evaluation: thresholds, firing alerts, security events and liveness give the status, the
reason and the signals; the monitor keeps the latest and records transitions (virtual clock)."""

from __future__ import annotations

from collections.abc import Sequence

from clearsight.health.evaluator import evaluate
from clearsight.health.history import HealthHistory
from clearsight.health.monitor import HealthMonitor
from clearsight.health.rules import HealthRule
from clearsight.model.labels import make_labels
from clearsight.model.logs import Event
from clearsight.resources.model import Liveness, Resource
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.state import MemoryStateFile
from clearsight.rules.types import Sample, Vector

MIN = 60_000
RULES = [HealthRule("host", "cpu_usage", "cpu", 70, 90, unit="%"),
         HealthRule("host", "disk_usage", "disk", 80, 90, unit="%")]


class FakeWorld:
    def __init__(self) -> None:
        self.values: dict[str, list[Sample]] = {"cpu": [], "disk": [], 'ALERTS{alertstate="firing"}': []}
        self.events: list[Event] = []
        self.reads: list[tuple[Sequence[str], int, int]] = []

    def query(self, expr: str, t: int) -> Vector:
        return self.values[expr]

    def set(self, expr: str, **per_instance: float) -> None:
        self.values[expr] = [Sample(make_labels({"instance": k.replace("_", "-")}), v) for k, v in per_instance.items()]

    def read(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        self.reads.append((types, start_ns, end_ns))
        return [e for e in self.events if e.type in types and start_ns <= e.timestamp <= end_ns][:limit]


class Reader:
    def __init__(self, w: FakeWorld) -> None:
        self.w = w

    def events(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        return self.w.read(tenant, types, start_ns, end_ns, limit)


def _host(name: str, seen: int) -> Resource:
    return Resource(id=f"host:{name}", kind="host", name=name, first_seen_ms=0, last_seen_ms=seen,
                    interval_ms=MIN, hostname=name, instances=(name,))


def _eval(w: FakeWorld, resources: list[Resource], now: int) -> dict[str, object]:
    ev = evaluate(resources, RULES, w.query, Reader(w), "t", now, liveness=Liveness(3, 10),
                  security_window_ms=15 * MIN)
    return {rid: (h.status, h.reason) for rid, h in ev.health.items()}


def test_thresholds_alerts_events_and_liveness() -> None:
    w = FakeWorld()
    now = 100 * MIN
    w.set("cpu", web_1=95.25, web_2=72, db=10)
    w.set("disk", web_1=50, web_2=50, db=20)
    w.values['ALERTS{alertstate="firing"}'] = [
        Sample(make_labels({"__name__": "ALERTS", "alertname": "HighLoad", "alertstate": "firing",
                            "instance": "db:9100", "severity": "warning"}), 1)]
    w.events = [Event(id="f1", message="Terminal shell in container", level="ERROR", severity="critical",
                      timestamp=(now - 2 * MIN) * 1_000_000, type="falco_alert", group="Terminal shell",
                      resource=make_labels({"host.name": "web-2"})),
                Event(id="f0", message="too old", level="ERROR", severity="critical",
                      timestamp=(now - 20 * MIN) * 1_000_000, type="falco_alert", resource=make_labels({"host.name": "db"}))]
    res = [_host("web-1", now), _host("web-2", now), _host("db", now), _host("gone", now - 11 * MIN),
           _host("late", now - 4 * MIN)]
    out = _eval(w, res, now)
    assert out["host:web-1"] == ("critical", "cpu_usage is 95.2% (critical at 90%)")
    assert out["host:web-2"] == ("critical", "Terminal shell (critical) 2m ago: Terminal shell in container")
    assert out["host:db"] == ("warning", "alert HighLoad is firing (severity warning)")
    assert out["host:gone"] == ("critical", "down: not seen for 11m")
    assert out["host:late"] == ("warning", "stale: not seen for 4m")
    # the security window bounds the event read
    assert w.reads[-1][1:] == ((now - 15 * MIN) * 1_000_000, now * 1_000_000)


def test_healthy_has_all_signals() -> None:
    w = FakeWorld()
    w.set("cpu", web_1=10)
    w.set("disk", web_1=20)
    ev = evaluate([_host("web-1", 0)], RULES, w.query, Reader(w), "t", 0, liveness=Liveness(), security_window_ms=1)
    h = ev.health["host:web-1"]
    assert (h.status, h.reason) == ("healthy", "all 3 signals healthy")
    assert [(s.kind, s.name, s.value) for s in h.signals] == [("liveness", "liveness", None),
                                                               ("metric", "cpu_usage", 10), ("metric", "disk_usage", 20)]
    assert h.to_json()["signals"][1] == {"kind": "metric", "name": "cpu_usage", "status": "healthy",
                                         "detail": "cpu_usage is 10% (warning at 70%)", "value": 10, "time": 0.0}


def test_failing_query_is_reported_not_fatal() -> None:
    w = FakeWorld()

    def query(expr: str, t: int) -> Vector:
        if expr == "cpu":
            raise RuntimeError("engine says no")
        return w.query(expr, t)

    ev = evaluate([_host("a", 0)], RULES, query, Reader(w), "t", 0, liveness=Liveness(), security_window_ms=1)
    assert ev.errors == {"host/cpu_usage": "engine says no"} and ev.health["host:a"].status == "healthy"


def test_monitor_history_and_uptime_on_a_virtual_clock() -> None:
    w = FakeWorld()
    reg = ResourceRegistry(MemoryStateFile(), liveness=Liveness(3, 10))
    hist = HealthHistory(MemoryStateFile())
    mon = HealthMonitor(reg, RULES, lambda t: w.query, Reader(w), hist, security_window_ms=MIN)
    reg.observe("t", [_host("web-1", 0)])
    timeline = [(0, 10), (MIN, 50), (2 * MIN, 95), (3 * MIN, 96), (4 * MIN, 10)]
    for t, cpu in timeline:
        reg.observe("t", [_host("web-1", t)])
        w.set("cpu", web_1=cpu)
        mon.run_once(t)
    assert [(x.time_ms, x.status) for x in hist.transitions("t", "host:web-1", 0, 10 * MIN, 10)] == [
        (4 * MIN, "healthy"), (2 * MIN, "critical"), (0, "healthy")]
    assert hist.uptime("t", "host:web-1", 0, 5 * MIN) == 3 / 5
    assert hist.uptime("t", "host:web-1", 5 * MIN, 6 * MIN) == 1.0
    assert hist.uptime("t", "host:nothing", 0, MIN) is None
    latest = mon.latest("t", "host:web-1")
    assert latest is not None and latest.status == "healthy"
    assert hist.state.load() is not None
    # a resource registered after the pass is evaluated on demand
    reg.observe("t", [_host("new", 4 * MIN)])
    w.set("cpu", new=75)
    h = mon.health("t", "host:new", 4 * MIN)
    assert h is not None and h.status == "warning"
    assert mon.health("t", "host:unknown", 0) is None
