"""Passive discovery: resources named by ingested metrics, found by a few instant queries (every
``resources.discovery_interval``, off the write path, through the same query function the rules
use). Pure apart from the query function.

- ``node_uname_info`` (the agent and node_exporter): ``host:<nodename>`` with ``os`` (sysname),
  ``kernel`` (release) and the series' ``instance``;
- ``target_info`` (OTLP resource attributes): ``host:<host_name>``, ``container:<container_id>``
  and ``service:<job>`` (``job`` is OTLP's ``service.name``), each with the series' ``instance`` (a
  shared instance is how ``resources/relations.py`` sees that the service runs in the container);
- ``up`` (scraped targets): ``service:<job>`` with its instances.

Each is read as ``timestamp(<name>)``: a resource counts as seen at its newest sample's time, not
at the query time, so a host whose metrics stopped goes stale, then down, as if it had stopped
heartbeating (the query lookback would otherwise keep it "seen" for 5 more minutes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from clearsight.resources.model import SOURCE_METRICS, Resource, make_id, valid_id
from clearsight.resources.registry import RegistryFull, ResourceRegistry
from clearsight.rules.types import QueryFunc

log = logging.getLogger("clearsight.resources")

QUERIES = ("node_uname_info", "target_info", "up")  # each read as timestamp(name)


def _resource(kind: str, key: str, now_ms: int, interval_ms: int, **fields: Any) -> Resource | None:
    rid = make_id(kind, key)
    if not valid_id(rid):
        return None
    instance = fields.pop("instance", "")
    r = Resource(id=rid, kind=kind, name=fields.pop("name", "") or key, first_seen_ms=now_ms, last_seen_ms=now_ms,
                 interval_ms=interval_ms, sources=(SOURCE_METRICS,), instances=(instance,) if instance else ())
    return replace(r, **fields)


def discover(query: QueryFunc, now_ms: int, interval_ms: int) -> list[Resource]:
    """The resources the metrics at ``now_ms`` name (a failing query is skipped: raises nothing)."""
    found: dict[str, Resource] = {}

    def add(r: Resource | None) -> None:
        if r is not None:
            found[r.id] = found[r.id].merged(r) if r.id in found else r

    for expr in QUERIES:
        try:
            vector = query(f"timestamp({expr})", now_ms)
        except Exception:
            continue
        for s in vector:
            if s.value != s.value:
                continue
            seen = min(now_ms, round(s.value * 1000))
            lb = dict(s.labels)
            inst, job = lb.get("instance", ""), lb.get("job", "")
            if expr == "node_uname_info":
                node = lb.get("nodename", "")
                if node:
                    add(_resource("host", node, seen, interval_ms, hostname=node, os=lb.get("sysname", ""),
                                  kernel=lb.get("release", ""), instance=inst))
            elif expr == "target_info":
                host = lb.get("host_name", "")
                if host:
                    add(_resource("host", host, seen, interval_ms, hostname=host, instance=inst))
                cid = lb.get("container_id", "")
                if cid:
                    add(_resource("container", cid, seen, interval_ms, name=lb.get("container_name", ""),
                                  image=lb.get("container_image_name", ""), hostname=host,
                                  parent=make_id("host", host) if host else "", instance=inst))
                if job:
                    add(_resource("service", job, seen, interval_ms, instance=inst))
            elif job:
                add(_resource("service", job, seen, interval_ms, instance=inst))
    return list(found.values())


class PassiveDiscovery:
    """One discovery pass per call: every known tenant (and ``default_tenant``) is queried, what
    it finds is recorded, long-gone resources are forgotten and the registry is saved if changed."""

    def __init__(self, registry: ResourceRegistry, query_for: Callable[[str], QueryFunc], default_tenant: str,
                 interval_ms: int) -> None:
        self.registry = registry
        self.query_for = query_for
        self.default_tenant = default_tenant
        self.interval_ms = interval_ms
        self._full: set[str] = set()  # tenants whose "registry full" was logged (once per episode)

    def run_once(self, now_ms: int) -> None:
        for tenant in sorted({self.default_tenant, *self.registry.tenants()}):
            found = discover(self.query_for(tenant), now_ms, self.interval_ms)
            if not found:
                continue
            try:
                self.registry.observe(tenant, found)
                self._full.discard(tenant)
            except RegistryFull as e:
                # the known ones are still refreshed (they would go stale otherwise); the new ones wait
                self.registry.observe(tenant, [r for r in found if self.registry.get(tenant, r.id) is not None])
                if tenant not in self._full:
                    self._full.add(tenant)
                    log.warning("new discovered resources not recorded: %s", e, extra={"tenant": tenant})
        self.registry.prune(now_ms)
        self.registry.save_if_dirty()
