"""The resource registry: every tenant's hosts, containers and services, fed by agent heartbeats
and by passive discovery from ingested metrics, read by the API, health and correlation.

Thread-safe (one lock; every call is short). State is kept in memory and saved through a
``StateFile`` when it changed (``save_if_dirty``, called periodically and at shutdown), so a restart
keeps first-seen times and metadata. Resources not seen for ``forget_after_ms`` are dropped
(``prune``). A tenant holds at most ``max_per_tenant`` resources: sightings of new resources beyond
that raise ``RegistryFull`` and nothing of that sighting is recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from clearsight.resources.model import Liveness, Resource
from clearsight.resources.state import StateFile


class RegistryFull(Exception):
    pass


@dataclass(frozen=True)
class ResourceFilter:
    kind: str | None = None
    status: str | None = None
    tags: tuple[tuple[str, str], ...] = ()


class ResourceRegistry:
    def __init__(self, state: StateFile, *, liveness: Liveness | None = None, max_per_tenant: int = 10_000,
                 forget_after_ms: int = 7 * 86400_000) -> None:
        self.state = state
        self.liveness = liveness or Liveness()
        self.max_per_tenant = max_per_tenant
        self.forget_after_ms = forget_after_ms
        self._lock = threading.Lock()
        self._by_tenant: dict[str, dict[str, Resource]] = {}
        self._dirty = False

    def load(self) -> None:
        doc = self.state.load()
        if not isinstance(doc, dict):
            return
        with self._lock:
            for tenant, items in doc.get("tenants", {}).items():
                self._by_tenant[tenant] = {d["id"]: Resource.from_state(d) for d in items}

    def save_if_dirty(self) -> bool:
        with self._lock:
            if not self._dirty:
                return False
            doc = {"tenants": {t: [r.to_state() for r in rs.values()] for t, rs in self._by_tenant.items()}}
            self._dirty = False
        self.state.save(doc)
        return True

    def observe(self, tenant: str, sightings: Iterable[Resource]) -> None:
        """Records sightings (all or none: a tenant over its limit records nothing)."""
        items = list(sightings)
        with self._lock:
            current = self._by_tenant.setdefault(tenant, {})
            new = {r.id for r in items if r.id not in current}
            if new and len(current) + len(new) > self.max_per_tenant:
                raise RegistryFull(f"tenant {tenant!r} has {len(current)} resources; {len(new)} new ones would exceed "
                                   f"the limit of {self.max_per_tenant} (resources.max_per_tenant)")
            for r in items:
                old = current.get(r.id)
                current[r.id] = r if old is None else old.merged(r)
            self._dirty = True

    def prune(self, now_ms: int) -> int:
        removed = 0
        with self._lock:
            for rs in self._by_tenant.values():
                for rid in [rid for rid, r in rs.items() if now_ms - r.last_seen_ms > self.forget_after_ms]:
                    del rs[rid]
                    removed += 1
            if removed:
                self._dirty = True
        return removed

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted(t for t, rs in self._by_tenant.items() if rs)

    def get(self, tenant: str, rid: str) -> Resource | None:
        with self._lock:
            return self._by_tenant.get(tenant, {}).get(rid)

    def all(self, tenant: str) -> list[Resource]:
        with self._lock:
            return sorted(self._by_tenant.get(tenant, {}).values(), key=lambda r: r.id)

    def list(self, tenant: str, now_ms: int, flt: ResourceFilter = ResourceFilter()) -> list[Resource]:
        out = []
        for r in self.all(tenant):
            if flt.kind is not None and r.kind != flt.kind:
                continue
            if flt.status is not None and r.status(now_ms, self.liveness) != flt.status:
                continue
            if any(r.tags.get(k) != v for k, v in flt.tags):
                continue
            out.append(r)
        return out
