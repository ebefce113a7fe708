"""The notifier's own metrics (Alertmanager's names with the ``clearsight_`` prefix)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

KINDS = ("webhook", "slack", "email", "pagerduty", "script", "alertmanager")


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.notifications = Counter("clearsight_notifications_total",
                                     "Notifications attempted (after retries), by integration.", ["integration"],
                                     registry=r)
        self.notifications_failed = Counter(
            "clearsight_notifications_failed_total",
            "Notifications that failed after all retries, by integration and reason.", ["integration", "reason"],
            registry=r)
        self.requests = Counter("clearsight_notification_requests_total",
                                "Delivery attempts (each retry counts), by integration.", ["integration"], registry=r)
        self.requests_failed = Counter("clearsight_notification_requests_failed_total",
                                       "Failed delivery attempts, by integration.", ["integration"], registry=r)
        self.latency = Histogram("clearsight_notification_latency_seconds", "Delivery attempt latency.",
                                 ["integration"], registry=r, buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30))
        self.alerts_received = Counter("clearsight_alerts_received_total", "Alerts received, by status.",
                                       ["status"], registry=r)
        self.alerts_invalid = Counter("clearsight_alerts_invalid_total", "Alerts rejected as invalid.", registry=r)
        for k in KINDS:  # present from the start, so a rate() sees the first failure
            self.notifications.labels(k)
            self.requests.labels(k)
            self.requests_failed.labels(k)

    def add_state(self, alerts: Callable[[], dict[str, int]], silences: Callable[[], dict[str, int]],
                  groups: Callable[[], int]) -> None:
        self.registry.register(_StateCollector(alerts, silences, groups))


class _StateCollector(Collector):
    def __init__(self, alerts: Callable[[], dict[str, int]], silences: Callable[[], dict[str, int]],
                 groups: Callable[[], int]) -> None:
        self._alerts, self._silences, self._groups = alerts, silences, groups

    def collect(self) -> Iterator[Metric]:
        a = GaugeMetricFamily("clearsight_notifier_alerts", "Alerts held by the notifier, by state.", labels=["state"])
        for state, n in sorted(self._alerts().items()):
            a.add_metric([state], n)
        yield a
        s = GaugeMetricFamily("clearsight_silences", "Silences by state.", labels=["state"])
        for state, n in sorted(self._silences().items()):
            s.add_metric([state], n)
        yield s
        yield GaugeMetricFamily("clearsight_alert_groups", "Aggregation groups.", value=self._groups())
