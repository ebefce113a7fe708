"""Enrichment of log entries with resource and host metadata (``enrich`` in ``logs.pipeline`` /
``logs.tenants.<name>``):

- ``resource``: fixed attributes added to every entry's resource (``deployment.environment:
  prod``); an attribute the sender set wins;
- ``hosts: true``: entries whose resource names a host (``host.name``, else ``hostname``, else the
  stream label ``host``) that the resource registry knows (agent heartbeats, passive discovery;
  ``resources/``) get that host's metadata in their resource: ``host.id`` (machine id),
  ``host.os``, ``host.kernel``, ``host.agent_version`` and each tag as ``host.tag.<name>``, when
  known and not already set by the sender.

Only the resource changes (stream labels, body and attributes are kept), so enrichment never
creates streams. Resources are interned per batch: the work is per distinct resource, not per line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from clearsight.model.labels import Labels
from clearsight.model.logs import LogBatch, LogBatchBuilder
from clearsight.resources.model import Resource

# (tenant, hostname) -> the host's metadata as resource attributes ({} when unknown).
HostMetadata = Callable[[str, str], Mapping[str, str]]
_HOST_KEYS = ("host.name", "hostname")


def host_of(resource: Labels, stream: Labels) -> str:
    """The host an entry names: its resource's ``host.name`` / ``hostname``, else the stream's ``host``."""
    res = dict(resource)
    for k in _HOST_KEYS:
        if res.get(k):
            return res[k]
    return dict(stream).get("host", "")


def enrich_batch(
    batch: LogBatch, extra: Mapping[str, str], host_meta: Callable[[str], Mapping[str, str]] | None
) -> LogBatch:
    """The batch with each entry's resource completed by ``extra`` and, when ``host_meta`` is given,
    its host's metadata; the batch itself when nothing changes."""
    n = len(batch)
    if n == 0 or (not extra and host_meta is None):
        return batch
    sidx = batch.stream_idx.tolist()
    ridx = batch.resource_idx.tolist()
    new_res: dict[tuple[int, int], Labels] = {}  # (resource idx, stream idx) -> enriched resource
    changed = False
    for j in range(n):
        key = (ridx[j], sidx[j] if host_meta is not None else -1)
        if key in new_res:
            continue
        res = batch.resources[ridx[j]]
        attrs = dict(res)
        add: dict[str, str] = {k: v for k, v in extra.items() if v and k not in attrs}
        if host_meta is not None:
            host = host_of(res, batch.streams[sidx[j]])
            if host:
                add.update(
                    {k: v for k, v in host_meta(host).items() if v and k not in attrs and k not in add}
                )
        if add:
            attrs.update(add)
            changed = True
            new_res[key] = tuple(sorted(attrs.items()))
        else:
            new_res[key] = res
    if not changed:
        return batch
    b = LogBatchBuilder()
    for j in range(n):
        key = (ridx[j], sidx[j] if host_meta is not None else -1)
        b.add(
            b.stream(batch.streams[sidx[j]]),
            int(batch.timestamps[j]),
            batch.body[j],
            int(batch.severity_number[j]),
            batch.severity_text(j),
            batch.attributes(j),
            batch.trace_id(j),
            batch.span_id(j),
            b.resource(new_res[key]),
        )
    return b.build()


def host_attributes(r: Resource | None) -> dict[str, str]:
    """A registry host as resource attributes (empty fields left out)."""
    if r is None:
        return {}
    out = {
        "host.id": r.machine_id,
        "host.os": r.os,
        "host.kernel": r.kernel,
        "host.agent_version": r.agent_version,
    }
    out.update({f"host.tag.{k}": v for k, v in r.tags.items()})
    return {k: v for k, v in out.items() if v}


def make_enrich_step(
    settings_of: Callable[[str], tuple[Mapping[str, str], bool]], host_metadata: HostMetadata
) -> Callable[[str, LogBatch], LogBatch]:
    """A ``LogStep``: ``settings_of(tenant)`` is the tenant's (fixed resource attributes, hosts on)."""

    def step(tenant: str, batch: LogBatch) -> LogBatch:
        extra, hosts = settings_of(tenant)
        meta = (lambda host: host_metadata(tenant, host)) if hosts else None
        return enrich_batch(batch, extra, meta)

    return step
