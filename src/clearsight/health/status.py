"""The Failsight status page (``GET /status``): overall health, and health and uptime by service.

Services are the registry's ``service`` resources (``job`` of scraped targets, OTLP
``service.name``); uptime is the share of the window a service was not ``critical`` according to
its health history (``health/history.py``). Hosts and containers are counted by status.
"""

from __future__ import annotations

from typing import Any

from clearsight.health.evaluator import LEVELS, worst
from clearsight.health.history import HealthHistory
from clearsight.health.monitor import HealthMonitor
from clearsight.resources.registry import ResourceRegistry


def status_page(registry: ResourceRegistry, monitor: HealthMonitor, history: HealthHistory, tenant: str,
                now_ms: int, window_ms: int) -> dict[str, Any]:
    latest = monitor.all_latest(tenant)
    services: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    statuses: list[str] = []
    for r in registry.all(tenant):
        h = latest.get(r.id)
        status = h.status if h is not None else "unknown"
        counts.setdefault(r.kind, {lvl: 0 for lvl in (*LEVELS, "unknown")})[status] += 1
        if h is not None:
            statuses.append(h.status)
        if r.kind == "service":
            up = history.uptime(tenant, r.id, now_ms - window_ms, now_ms)
            services.append({"service": r.name, "id": r.id, "status": status,
                             "reason": h.reason if h is not None else "not evaluated yet",
                             "uptime_percent": None if up is None else round(up * 100, 3),
                             "liveness": r.status(now_ms, registry.liveness), "last_seen": r.last_seen_ms / 1000})
    return {"status": worst(statuses) if statuses else "unknown", "time": now_ms / 1000,
            "window_seconds": window_ms / 1000, "services": services, "resources": counts}
