"""Relations between a tenant's resources, derived from what the registry knows. Pure, no I/O.

An edge ``(source, target)`` says *source runs on target*:

- a container runs on its ``parent`` host (the agent's heartbeat, OTLP ``host.name`` of a
  ``target_info`` series that also names the container);
- a service runs on a container when both carry one of the same metric ``instance`` values (an OTLP
  ``target_info`` series naming the service and the container);
- a service runs on a host when they share an ``instance`` value, or when one of the service's
  instances is ``<host>:<port>`` (or ``<host>``) and ``<host>`` is the host's name or hostname,
  unless the service already runs on a container of that host (the container edge says more).

Nothing else is guessed: a service scraped at an address that names no known host has no edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearsight.resources.model import Resource

RUNS_ON = "runs_on"


@dataclass(frozen=True, order=True)
class Relation:
    source: str
    target: str
    kind: str = RUNS_ON

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target, "relation": self.kind}


def instance_host(instance: str) -> str:
    """The host part of a metric ``instance`` (``web-1:9100`` -> ``web-1``, ``[::1]:80`` -> ``::1``)."""
    if instance.startswith("["):
        end = instance.find("]")
        return instance[1:end] if end > 0 else instance
    head, sep, port = instance.rpartition(":")
    return head if sep and port.isdigit() and ":" not in head else instance


def relations(resources: Sequence[Resource]) -> list[Relation]:
    """The *runs on* edges among ``resources`` (both ends in the list), sorted."""
    ids = {r.id for r in resources}
    hosts = [r for r in resources if r.kind == "host"]
    containers = [r for r in resources if r.kind == "container"]
    by_instance: dict[str, set[str]] = {}
    by_host_name: dict[str, set[str]] = {}
    for r in (*hosts, *containers):
        for inst in r.instances:
            by_instance.setdefault(inst, set()).add(r.id)
    for h in hosts:
        for name in {h.name, h.hostname} - {""}:
            by_host_name.setdefault(name, set()).add(h.id)
    parent = {c.id: c.parent for c in containers if c.parent in ids}
    out = {Relation(c, p) for c, p in parent.items()}
    for s in resources:
        if s.kind != "service":
            continue
        targets: set[str] = set()
        for inst in s.instances:
            targets |= by_instance.get(inst, set())
            targets |= by_host_name.get(instance_host(inst), set())
        on_containers = {t for t in targets if t.startswith("container:")}
        covered_hosts = {parent[c] for c in on_containers if c in parent}
        out |= {Relation(s.id, t) for t in targets if t not in covered_hosts}
    return sorted(out)
