"""Passive discovery from node_uname_info, target_info and up, through a query function."""

from __future__ import annotations

from clearsight.model.labels import make_labels
from clearsight.resources.discovery import PassiveDiscovery, discover
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.state import MemoryStateFile
from clearsight.rules.types import Sample, Vector

SERIES = {  # timestamp(name): the newest sample's time in seconds
    "node_uname_info": [Sample(make_labels({"__name__": "node_uname_info", "instance": "web-1:9100", "job": "node",
                                            "nodename": "web-1", "sysname": "Linux", "release": "6.1.0"}), 0.5)],
    "target_info": [Sample(make_labels({"__name__": "target_info", "instance": "i-1", "job": "checkout",
                                        "host_name": "web-1", "container_id": "abcdef0123456789",
                                        "container_name": "checkout"}), 0.9)],
    "up": [Sample(make_labels({"__name__": "up", "instance": "127.0.0.1:9100", "job": "node"}), 1),
           Sample(make_labels({"__name__": "up", "instance": "web-1:9100", "job": "node"}), 0)],
}


def _query(expr: str, t: int) -> Vector:
    assert expr.startswith("timestamp(")
    name = expr.removeprefix("timestamp(").removesuffix(")")
    if name == "target_info" and t < 0:
        raise RuntimeError("boom")
    return SERIES[name]


def test_discover() -> None:
    found = {r.id: r for r in discover(_query, 1000, 30_000)}
    assert sorted(found) == ["container:abcdef0123456789", "host:web-1", "service:checkout", "service:node"]
    host = found["host:web-1"]
    assert (host.os, host.kernel, host.instances, host.sources) == ("Linux", "6.1.0", ("i-1", "web-1:9100"),
                                                                   ("metrics",))
    c = found["container:abcdef0123456789"]
    assert (c.name, c.parent) == ("checkout", "host:web-1")
    assert found["service:node"].instances == ("127.0.0.1:9100", "web-1:9100")
    # seen at the newest sample's time (never later than now)
    assert (host.first_seen_ms, host.last_seen_ms) == (500, 900)
    assert found["service:node"].last_seen_ms == 1000


def test_failing_query_is_skipped_and_pass_records() -> None:
    assert sorted(r.id for r in discover(_query, -1, 1)) == ["host:web-1", "service:node"]
    reg = ResourceRegistry(MemoryStateFile())
    PassiveDiscovery(reg, lambda tenant: _query, "default", 30_000).run_once(1000)
    assert reg.tenants() == ["default"] and len(reg.all("default")) == 4
    assert reg.state.load() is not None  # saved


def test_full_registry_still_refreshes_known_resources() -> None:
    reg = ResourceRegistry(MemoryStateFile(), max_per_tenant=4)
    disc = PassiveDiscovery(reg, lambda tenant: _query, "default", 30_000)
    disc.run_once(1000)
    saved = SERIES["up"]
    SERIES["up"] = [Sample(make_labels({"__name__": "up", "instance": "web-1:9100", "job": "node"}), 2),
                    Sample(make_labels({"__name__": "up", "instance": "x:1", "job": "new"}), 2)]
    try:
        disc.run_once(3000)
    finally:
        SERIES["up"] = saved
    assert len(reg.all("default")) == 4 and reg.get("default", "service:new") is None
    node = reg.get("default", "service:node")
    assert node is not None and node.last_seen_ms == 2000
