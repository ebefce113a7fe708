"""Health history: the status transitions of each resource, and uptime computed from them.

An entry is written when a resource's status changes (the first evaluation too), with the reason
at that moment; at most ``max_entries`` per resource are kept (oldest dropped). Saved through a
``StateFile`` when changed. Thread-safe.

Uptime over ``[start, end]``: the share of the time covered by history (from the first entry on)
during which the status was not ``critical``; None when history does not cover the window at all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from clearsight.health.evaluator import Health
from clearsight.resources.state import StateFile


@dataclass(frozen=True)
class Transition:
    time_ms: int
    status: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time_ms / 1000, "status": self.status, "reason": self.reason}


class HealthHistory:
    def __init__(self, state: StateFile, max_entries: int = 1000) -> None:
        self.state = state
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._by: dict[str, dict[str, list[Transition]]] = {}
        self._dirty = False

    def load(self) -> None:
        doc = self.state.load()
        if not isinstance(doc, dict):
            return
        with self._lock:
            for tenant, per in doc.get("tenants", {}).items():
                self._by[tenant] = {rid: [Transition(int(t), str(s), str(r)) for t, s, r in items]
                                    for rid, items in per.items()}

    def save_if_dirty(self) -> bool:
        with self._lock:
            if not self._dirty:
                return False
            doc = {"tenants": {t: {rid: [[x.time_ms, x.status, x.reason] for x in items] for rid, items in per.items()}
                               for t, per in self._by.items()}}
            self._dirty = False
        self.state.save(doc)
        return True

    def record(self, tenant: str, h: Health) -> bool:
        """Appends a transition when the status changed; returns whether it did."""
        with self._lock:
            items = self._by.setdefault(tenant, {}).setdefault(h.resource, [])
            if items and items[-1].status == h.status:
                return False
            items.append(Transition(h.evaluated_at_ms, h.status, h.reason))
            del items[:-self.max_entries]
            self._dirty = True
            return True

    def forget(self, tenant: str, keep: set[str]) -> None:
        """Drops the history of resources no longer in the registry."""
        with self._lock:
            per = self._by.get(tenant, {})
            for rid in [rid for rid in per if rid not in keep]:
                del per[rid]
                self._dirty = True

    def transitions(self, tenant: str, rid: str, start_ms: int, end_ms: int, limit: int) -> list[Transition]:
        """Transitions in ``[start_ms, end_ms]``, newest first, at most ``limit``."""
        with self._lock:
            items = list(self._by.get(tenant, {}).get(rid, []))
        sel = [t for t in items if start_ms <= t.time_ms <= end_ms]
        return sel[::-1][:limit]

    def uptime(self, tenant: str, rid: str, start_ms: int, end_ms: int) -> float | None:
        with self._lock:
            items = list(self._by.get(tenant, {}).get(rid, []))
        if not items or end_ms <= start_ms or items[0].time_ms >= end_ms:
            return None
        covered = up = 0
        for i, t in enumerate(items):
            seg_start = max(t.time_ms, start_ms)
            seg_end = min(items[i + 1].time_ms if i + 1 < len(items) else end_ms, end_ms)
            if seg_end <= seg_start:
                continue
            covered += seg_end - seg_start
            if t.status != "critical":
                up += seg_end - seg_start
        return up / covered if covered else None
