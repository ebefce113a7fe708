"""The health monitor: evaluates every tenant's registered resources on an interval
(``health.evaluation_interval``), keeps the latest health of each and records transitions in the
history. ``run_once(now_ms)`` is one pass (the server's periodic task and the tests with a virtual
clock call it); reads go through the query function and the event reader it is given."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from clearsight.health.evaluator import Evaluation, Health, evaluate
from clearsight.health.history import HealthHistory
from clearsight.health.rules import HealthRule
from clearsight.resources.events import EventReader
from clearsight.resources.registry import ResourceRegistry
from clearsight.rules.types import QueryFunc

log = logging.getLogger("clearsight.health")


class HealthMonitor:
    def __init__(self, registry: ResourceRegistry, rules: Sequence[HealthRule], query_for: Callable[[str], QueryFunc],
                 events: EventReader, history: HealthHistory, *, security_window_ms: int) -> None:
        self.registry = registry
        self.rules = list(rules)
        self.query_for = query_for
        self.events = events
        self.history = history
        self.security_window_ms = security_window_ms
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Health]] = {}
        self.last_errors: dict[str, dict[str, str]] = {}
        self._logged_errors: set[tuple[str, str, str]] = set()
        self.passes = 0
        self.last_duration_s = 0.0

    def evaluate_tenant(self, tenant: str, now_ms: int) -> Evaluation:
        resources = self.registry.all(tenant)
        ev = evaluate(resources, self.rules, self.query_for(tenant), self.events, tenant, now_ms,
                      liveness=self.registry.liveness, security_window_ms=self.security_window_ms)
        for what, err in ev.errors.items():
            if (tenant, what, err) not in self._logged_errors:  # once per distinct failure
                self._logged_errors.add((tenant, what, err))
                log.warning("health signal failed", extra={"tenant": tenant, "signal": what, "error": err})
        with self._lock:
            self._latest[tenant] = ev.health
            self.last_errors[tenant] = ev.errors
        for h in ev.health.values():
            self.history.record(tenant, h)
        self.history.forget(tenant, {r.id for r in resources})
        return ev

    def run_once(self, now_ms: int) -> None:
        t0 = time.perf_counter()
        for tenant in self.registry.tenants():
            try:
                self.evaluate_tenant(tenant, now_ms)
            except Exception:
                log.exception("health evaluation failed", extra={"tenant": tenant})
        self.history.save_if_dirty()
        self.passes += 1
        self.last_duration_s = time.perf_counter() - t0

    def latest(self, tenant: str, rid: str) -> Health | None:
        with self._lock:
            return self._latest.get(tenant, {}).get(rid)

    def health(self, tenant: str, rid: str, now_ms: int) -> Health | None:
        """The latest health of a resource; a resource registered since the last pass is evaluated now.
        None when the registry does not know it."""
        h = self.latest(tenant, rid)
        if h is not None or self.registry.get(tenant, rid) is None:
            return h
        return self.evaluate_tenant(tenant, now_ms).health.get(rid)

    def all_latest(self, tenant: str) -> dict[str, Health]:
        with self._lock:
            return dict(self._latest.get(tenant, {}))
