"""Registry: liveness up -> stale -> down on a virtual clock, merging sightings, filters, the
per-tenant limit (all or nothing), tenants apart, pruning, and state across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.resources.model import Liveness, Resource
from clearsight.resources.registry import RegistryFull, ResourceFilter, ResourceRegistry
from clearsight.resources.state import JsonStateFile, MemoryStateFile


def _host(name: str, t: int, interval: int = 10_000, **kw: object) -> Resource:
    return Resource(id=f"host:{name}", kind="host", name=name, first_seen_ms=t, last_seen_ms=t, interval_ms=interval,
                    sources=("agent",), hostname=name, instances=(name,), **kw)  # type: ignore[arg-type]


def test_liveness_follows_missed_intervals() -> None:
    reg = ResourceRegistry(MemoryStateFile(), liveness=Liveness(3, 10))
    reg.observe("t", [_host("a", 0)])
    r = reg.get("t", "host:a")
    assert r is not None
    assert [r.status(now, reg.liveness) for now in (0, 29_999, 30_000, 99_999, 100_000)] == [
        "up", "up", "stale", "stale", "down"]
    reg.observe("t", [_host("a", 100_000)])
    assert reg.list("t", 100_000, ResourceFilter(status="up"))[0].id == "host:a"


def test_merge_keeps_first_seen_and_accumulates() -> None:
    reg = ResourceRegistry(MemoryStateFile())
    reg.observe("t", [_host("a", 1000, os="linux", tags={"env": "prod"})])
    reg.observe("t", [Resource(id="host:a", kind="host", name="a", first_seen_ms=5000, last_seen_ms=5000,
                               interval_ms=30_000, sources=("metrics",), kernel="6.1", instances=("a:9100",))])
    r = reg.get("t", "host:a")
    assert r is not None
    assert (r.first_seen_ms, r.last_seen_ms, r.interval_ms) == (1000, 5000, 30_000)
    assert (r.os, r.kernel, r.tags, r.sources, r.instances) == ("linux", "6.1", {"env": "prod"},
                                                               ("agent", "metrics"), ("a", "a:9100"))


def test_filters_and_tenants() -> None:
    reg = ResourceRegistry(MemoryStateFile())
    reg.observe("t", [_host("a", 0, tags={"env": "prod"}), _host("b", 0, tags={"env": "dev"}),
                      Resource(id="service:api", kind="service", name="api", first_seen_ms=0, last_seen_ms=0,
                               interval_ms=10_000)])
    assert [r.id for r in reg.list("t", 0, ResourceFilter(kind="host"))] == ["host:a", "host:b"]
    assert [r.id for r in reg.list("t", 0, ResourceFilter(tags=(("env", "prod"),)))] == ["host:a"]
    assert reg.list("other", 0) == [] and reg.get("other", "host:a") is None
    assert reg.tenants() == ["t"]


def test_limit_records_nothing_of_a_refused_sighting() -> None:
    reg = ResourceRegistry(MemoryStateFile(), max_per_tenant=2)
    reg.observe("t", [_host("a", 0)])
    with pytest.raises(RegistryFull, match="max_per_tenant"):
        reg.observe("t", [_host("a", 5), _host("b", 5), _host("c", 5)])
    assert [r.id for r in reg.all("t")] == ["host:a"]
    a = reg.get("t", "host:a")
    assert a is not None and a.last_seen_ms == 0
    reg.observe("t", [_host("a", 7), _host("b", 7)])  # refreshing known ones is fine at the limit
    assert len(reg.all("t")) == 2


def test_prune_and_persistence(tmp_path: Path) -> None:
    state = JsonStateFile(tmp_path / "registry.json")
    reg = ResourceRegistry(state, forget_after_ms=1000)
    reg.observe("t", [_host("old", 0), _host("new", 5000, tags={"k": "v"})])
    assert reg.prune(5500) == 1
    assert reg.save_if_dirty() and not reg.save_if_dirty()
    again = ResourceRegistry(JsonStateFile(tmp_path / "registry.json"))
    again.load()
    assert again.all("t") == reg.all("t") and [r.id for r in again.all("t")] == ["host:new"]


def test_unreadable_state_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "registry.json").write_text("{broken")
    reg = ResourceRegistry(JsonStateFile(tmp_path / "registry.json"))
    reg.load()
    assert reg.tenants() == []
