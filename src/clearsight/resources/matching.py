"""Which resource a series, an alert or an event is about. Pure.

A label set names a resource through (first match wins within a kind):

- an explicit id: ``resource_id``, ``resource`` or ``resource.id`` holding ``kind:name``;
- host: ``instance`` (one of the host's known instance values, or ``<hostname>:<port>``), ``host``,
  ``hostname``, ``host_name``, ``host.name``, ``nodename``;
- container: ``container_id``, ``container.id``, ``id`` (the agent's container series; full id, or
  a unique prefix of at least 12 characters as Docker shows it), ``container_name``,
  ``container.name``;
- service: ``job``, ``service``, ``service_name``, ``service.name``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from clearsight.resources.model import Resource, make_id, valid_id

ID_KEYS = ("resource_id", "resource", "resource.id")
HOST_KEYS = ("host", "hostname", "host_name", "host.name", "nodename")
CONTAINER_ID_KEYS = ("container_id", "container.id", "id")  # id: the agent's (cAdvisor's) label
CONTAINER_NAME_KEYS = ("container_name", "container.name")
SERVICE_KEYS = ("job", "service", "service_name", "service.name")
SHORT_ID = 12


class ResourceIndex:
    """Lookups from label values to resource ids over one tenant's resources."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.ids: dict[str, Resource] = {}
        self._instance: dict[str, str] = {}
        self._hostname: dict[str, str] = {}
        self._container_id: dict[str, str] = {}
        self._container_short: dict[str, str | None] = {}
        self._container_name: dict[str, str] = {}
        self._service: dict[str, str] = {}
        for r in resources:
            self.ids[r.id] = r
            name = r.id.partition(":")[2]
            if r.kind == "host":
                self._hostname[r.hostname or name] = r.id
                for inst in r.instances:
                    self._instance[inst] = r.id
            elif r.kind == "container":
                self._container_id[name] = r.id
                short = name[:SHORT_ID]
                self._container_short[short] = None if short in self._container_short else r.id
                if r.name:
                    self._container_name[r.name] = r.id
            elif r.kind == "service":
                self._service[name] = r.id

    def _host(self, labels: Mapping[str, str]) -> str | None:
        inst = labels.get("instance")
        if inst:
            rid = self._instance.get(inst) or self._hostname.get(inst)
            if rid is None and ":" in inst:
                rid = self._hostname.get(inst.rsplit(":", 1)[0])
            if rid is not None:
                return rid
        for k in HOST_KEYS:
            v = labels.get(k)
            if v and v in self._hostname:
                return self._hostname[v]
        return None

    def _container(self, labels: Mapping[str, str]) -> str | None:
        for k in CONTAINER_ID_KEYS:
            v = labels.get(k)
            if v:
                rid = self._container_id.get(v) or (self._container_short.get(v[:SHORT_ID])
                                                     if len(v) >= SHORT_ID else None)
                if rid is not None:
                    return rid
        for k in CONTAINER_NAME_KEYS:
            v = labels.get(k)
            if v and v in self._container_name:
                return self._container_name[v]
        return None

    def _service_of(self, labels: Mapping[str, str]) -> str | None:
        for k in SERVICE_KEYS:
            v = labels.get(k)
            if v and v in self._service:
                return self._service[v]
        return None

    def match(self, labels: Mapping[str, str], kind: str) -> str | None:
        """The resource of ``kind`` the labels name, if it is in the index."""
        for k in ID_KEYS:
            v = labels.get(k)
            if v and v.startswith(kind + ":") and v in self.ids:
                return v
        if kind == "host":
            return self._host(labels)
        if kind == "container":
            return self._container(labels)
        if kind == "service":
            return self._service_of(labels)
        return None

    def match_all(self, labels: Mapping[str, str]) -> list[str]:
        """Every resource (of any kind) the labels name."""
        out = [rid for kind in ("host", "container", "service") if (rid := self.match(labels, kind)) is not None]
        return out


def claimed_ids(labels: Mapping[str, str]) -> list[str]:
    """The resource ids a label set names by itself, without an index (an event about a resource
    the registry has not seen yet): explicit ids, then host, container and service names."""
    out: list[str] = []
    for k in ID_KEYS:
        v = labels.get(k)
        if v and valid_id(v):
            out.append(v)
    for keys, kind in ((HOST_KEYS, "host"), (CONTAINER_ID_KEYS, "container"), (("service.name", "service"), "service")):
        for k in keys:
            v = labels.get(k)
            if v:
                rid = make_id(kind, v)
                if valid_id(rid):
                    out.append(rid)
                break
    return list(dict.fromkeys(out))
