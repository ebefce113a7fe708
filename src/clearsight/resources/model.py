"""Resources as data: hosts, containers and services the server knows about. No I/O.

A resource id is ``<kind>:<name>``: ``host:<hostname>``, ``container:<container id>``,
``service:<job / service.name>``. Times are integer milliseconds since the Unix epoch.

Liveness (``status_of``): a resource is ``up`` while it was last seen within ``stale_after_missed``
expected intervals, ``stale`` until ``down_after_missed`` intervals, then ``down``. The expected
interval is the one of the source that saw it last (the agent's heartbeat interval, or the passive
discovery interval for resources seen only in ingested data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

KINDS = ("host", "container", "service")
STATUSES = ("up", "stale", "down")
SOURCE_AGENT = "agent"
SOURCE_METRICS = "metrics"

# kind:name; the name is what hostnames, container ids and job names are made of (no whitespace,
# no slash, so the id is one URL path segment).
ID_RE = re.compile(r"^(host|container|service):[^\s/]{1,253}$")


def make_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def valid_id(rid: str) -> bool:
    return ID_RE.fullmatch(rid) is not None


@dataclass(frozen=True)
class Liveness:
    """How many expected intervals may pass without a sighting before stale / down."""

    stale_after_missed: int = 3
    down_after_missed: int = 10


@dataclass(frozen=True)
class Resource:
    """One resource of one tenant. ``instances`` are the values of the metric ``instance`` label
    that name it (the agent's hostname, ``host:9100`` of a scraped node_exporter); ``parent`` is a
    container's host id; ``sources`` says who reported it (``agent``, ``metrics``)."""

    id: str
    kind: str
    name: str
    first_seen_ms: int
    last_seen_ms: int
    interval_ms: int
    sources: tuple[str, ...] = ()
    hostname: str = ""
    os: str = ""
    kernel: str = ""
    machine_id: str = ""
    agent_version: str = ""
    image: str = ""
    state: str = ""
    parent: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    instances: tuple[str, ...] = ()

    def status(self, now_ms: int, liveness: Liveness) -> str:
        return status_of(self.last_seen_ms, self.interval_ms, now_ms, liveness)

    def merged(self, newer: Resource) -> Resource:
        """This resource updated by a newer sighting: non-empty fields of ``newer`` win, the first
        sighting stays, instances and sources accumulate, tags are replaced when ``newer`` has any."""
        changes: dict[str, Any] = {}
        for name in ("name", "hostname", "os", "kernel", "machine_id", "agent_version", "image", "state", "parent"):
            v = getattr(newer, name)
            if v:
                changes[name] = v
        return replace(
            self, **changes,
            first_seen_ms=min(self.first_seen_ms, newer.first_seen_ms),
            last_seen_ms=max(self.last_seen_ms, newer.last_seen_ms),
            interval_ms=newer.interval_ms if newer.last_seen_ms >= self.last_seen_ms else self.interval_ms,
            sources=tuple(sorted(set(self.sources) | set(newer.sources))),
            tags=dict(newer.tags) if newer.tags else self.tags,
            instances=tuple(sorted(set(self.instances) | set(newer.instances)))[:64],
        )

    def to_json(self, now_ms: int, liveness: Liveness) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "name": self.name, "status": self.status(now_ms, liveness),
            "first_seen": self.first_seen_ms / 1000, "last_seen": self.last_seen_ms / 1000,
            "expected_interval_seconds": self.interval_ms / 1000, "sources": list(self.sources),
            "hostname": self.hostname, "os": self.os, "kernel": self.kernel, "machine_id": self.machine_id,
            "agent_version": self.agent_version, "image": self.image, "state": self.state,
            "parent": self.parent, "tags": dict(self.tags), "instances": list(self.instances),
        }

    def to_state(self) -> dict[str, Any]:
        """The persisted form (``from_state`` reads it back)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @staticmethod
    def from_state(d: dict[str, Any]) -> Resource:
        d = dict(d)
        d["sources"] = tuple(d.get("sources", ()))
        d["instances"] = tuple(d.get("instances", ()))
        d["tags"] = dict(d.get("tags", {}))
        return Resource(**d)


def status_of(last_seen_ms: int, interval_ms: int, now_ms: int, liveness: Liveness) -> str:
    missed = (now_ms - last_seen_ms) / max(1, interval_ms)
    if missed >= liveness.down_after_missed:
        return "down"
    if missed >= liveness.stale_after_missed:
        return "stale"
    return "up"
