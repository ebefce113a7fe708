"""The health map (``GET /api/v1/health/map``): a tenant's resources as nodes with their latest
health, and the *runs on* edges between them (``resources/relations.py``).

At most ``limit`` nodes: the most severe first (critical, warning, not evaluated, healthy), then by
id, so a large fleet shows what needs attention; edges join only nodes that are in the answer.
``total`` is how many resources the tenant has. Resources registered since the last health pass
are evaluated on the spot, as ``GET /api/v1/resources/{id}/health`` does.
"""

from __future__ import annotations

from typing import Any

from clearsight.health.monitor import HealthMonitor
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.relations import relations

SEVERITY = {"critical": 0, "warning": 1, "unknown": 2, "healthy": 3}


def health_map(registry: ResourceRegistry, monitor: HealthMonitor, tenant: str, now_ms: int,
               limit: int) -> dict[str, Any]:
    resources = registry.all(tenant)
    latest = monitor.all_latest(tenant)
    if any(r.id not in latest for r in resources):
        latest = {**latest, **monitor.evaluate_tenant(tenant, now_ms).health}

    def rank(rid: str) -> tuple[int, str]:
        h = latest.get(rid)
        return SEVERITY.get(h.status if h is not None else "unknown", 2), rid

    kept = set(sorted((r.id for r in resources), key=rank)[:limit])
    shown = [r for r in resources if r.id in kept]
    nodes = []
    for r in shown:
        h = latest.get(r.id)
        nodes.append({**r.to_json(now_ms, registry.liveness), "health": None if h is None else h.to_json()})
    return {"nodes": nodes, "edges": [e.to_json() for e in relations(shown)], "total": len(resources),
            "truncated": len(shown) < len(resources)}
