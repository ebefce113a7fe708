"""Registry, health and correlation figures at ``/metrics``: resources by kind and liveness, by
health status, signals that could not be read, evaluation passes and duration, events examined and
correlations written."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clearsight.correlation.correlator import Correlator
from clearsight.health.monitor import HealthMonitor
from clearsight.resources.registry import ResourceRegistry


class HealthCollector(Collector):
    def __init__(self, registry: ResourceRegistry, monitor: HealthMonitor, correlator: Correlator,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.monitor = monitor
        self.correlator = correlator
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = int(self.clock() * 1000)
        res = GaugeMetricFamily("clearsight_resources", "Registered resources by kind and liveness.",
                                labels=["tenant", "kind", "status"])
        health = GaugeMetricFamily("clearsight_resource_health", "Resources by their latest health status.",
                                   labels=["tenant", "kind", "status"])
        errors = GaugeMetricFamily("clearsight_health_signal_errors",
                                   "Health signals whose read failed in the last evaluation (1 each).",
                                   labels=["tenant", "signal"])
        for tenant in self.registry.tenants():
            counts: dict[tuple[str, str], int] = {}
            hcounts: dict[tuple[str, str], int] = {}
            latest = self.monitor.all_latest(tenant)
            for r in self.registry.all(tenant):
                key = (r.kind, r.status(now, self.registry.liveness))
                counts[key] = counts.get(key, 0) + 1
                h = latest.get(r.id)
                hkey = (r.kind, h.status if h is not None else "unknown")
                hcounts[hkey] = hcounts.get(hkey, 0) + 1
            for (kind, status), n in sorted(counts.items()):
                res.add_metric([tenant, kind, status], n)
            for (kind, status), n in sorted(hcounts.items()):
                health.add_metric([tenant, kind, status], n)
            for signal in sorted(self.monitor.last_errors.get(tenant, {})):
                errors.add_metric([tenant, signal], 1)
        yield from (res, health, errors)
        yield CounterMetricFamily("clearsight_health_evaluations", "Health evaluation passes.",
                                  value=self.monitor.passes)
        yield GaugeMetricFamily("clearsight_health_evaluation_last_duration_seconds",
                                "Duration of the last health evaluation pass.", value=self.monitor.last_duration_s)
        yield CounterMetricFamily("clearsight_correlation_events_examined",
                                  "Change and security events examined for correlations.",
                                  value=self.correlator.events_examined)
        yield CounterMetricFamily("clearsight_correlations_written", "Correlations stored as events.",
                                  value=self.correlator.correlations_written)
