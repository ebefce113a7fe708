"""The /metrics figures of the registry, health and correlation."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from clearsight.correlation.correlator import Correlator
from clearsight.health.history import HealthHistory
from clearsight.health.metrics import HealthCollector
from clearsight.health.monitor import HealthMonitor
from clearsight.health.rules import HealthRule
from clearsight.model.labels import make_labels
from clearsight.model.logs import Event
from clearsight.resources.model import Resource
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.state import MemoryStateFile
from clearsight.rules.types import Sample, Vector


class NoEvents:
    def events(self, tenant: str, types: object, start_ns: int, end_ns: int, limit: int) -> list[Event]:
        return []


def _query(expr: str, t: int) -> Vector:
    if expr == "broken":
        raise RuntimeError("nope")
    return [Sample(make_labels({"instance": "a"}), 99.0)] if expr == "cpu" else []


def test_collector_exposes_counts() -> None:
    reg = ResourceRegistry(MemoryStateFile())
    for name, seen in (("a", 100_000), ("b", 0)):
        reg.observe("t", [Resource(id=f"host:{name}", kind="host", name=name, first_seen_ms=0, last_seen_ms=seen,
                                   interval_ms=10_000, hostname=name, instances=(name,))])
    rules = [HealthRule("host", "cpu_usage", "cpu", 70, 90), HealthRule("host", "x", "broken", 1, 2)]
    mon = HealthMonitor(reg, rules, lambda t: _query, NoEvents(), HealthHistory(MemoryStateFile()),
                        security_window_ms=1)
    mon.run_once(100_000)
    corr = Correlator(reg, rules, lambda t: lambda *a: [], NoEvents(), lambda t, e: None)
    registry = CollectorRegistry()
    registry.register(HealthCollector(reg, mon, corr, clock=lambda: 100.0))
    text = generate_latest(registry).decode()
    for line in ('clearsight_resources{kind="host",status="up",tenant="t"} 1.0',
                 'clearsight_resources{kind="host",status="down",tenant="t"} 1.0',
                 'clearsight_resource_health{kind="host",status="critical",tenant="t"} 2.0',
                 'clearsight_health_signal_errors{signal="host/x",tenant="t"} 1.0',
                 "clearsight_health_evaluations_total 1.0", "clearsight_correlations_written_total 0.0"):
        assert line in text, text
