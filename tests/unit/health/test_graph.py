"""The health map's edges (``resources/relations.py``) and ``GET /api/v1/health/map`` in process:
what runs on what, nodes with their health, the most severe kept under a limit, bad input a 400,
and tenants apart."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.testclient import TestClient

from clearsight.api.health import HealthApi
from clearsight.health.history import HealthHistory
from clearsight.health.monitor import HealthMonitor
from clearsight.health.rules import HealthRule
from clearsight.model.labels import make_labels
from clearsight.model.logs import Event
from clearsight.resources.discovery import discover
from clearsight.resources.model import Resource
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.relations import Relation, instance_host, relations
from clearsight.resources.state import MemoryStateFile
from clearsight.rules.types import Sample, Vector
from tests.unit.resources.test_discovery import _query as discovery_query

NOW = 1_700_000_000.0
NOW_MS = int(NOW * 1000)


def res(rid: str, **kw: object) -> Resource:
    kind, _, name = rid.partition(":")
    base: dict[str, object] = {"id": rid, "kind": kind, "name": name, "first_seen_ms": NOW_MS,
                               "last_seen_ms": NOW_MS, "interval_ms": 15_000}
    return Resource(**{**base, **kw})  # type: ignore[arg-type]


def test_instance_host() -> None:
    assert [instance_host(i) for i in ("web-1:9100", "web-1", "[::1]:80", "10.0.0.5:8080", "fe80::1", "a:b")] == [
        "web-1", "web-1", "::1", "10.0.0.5", "fe80::1", "a:b"]


def test_relations() -> None:
    rs = [
        res("host:web-1", hostname="web-1", instances=("web-1",)),
        res("host:web-2", hostname="web-2.example", instances=("web-2:9100",)),
        res("container:c1", name="nginx", parent="host:web-1", instances=("nginx-1",)),
        res("container:c2", parent="host:gone"),  # its host is not known: no edge
        res("service:checkout", instances=("nginx-1",)),  # in c1 (OTLP target_info): not also on web-1
        res("service:node", instances=("web-2:9100", "web-1:9100")),  # node_exporter on both hosts
        res("service:api", instances=("web-2.example:8080",)),  # by the host part of its address
        res("service:lonely", instances=("10.9.9.9:80",)),  # names no known host: nothing guessed
    ]
    assert relations(rs) == [
        Relation("container:c1", "host:web-1"),
        Relation("service:api", "host:web-2"),
        Relation("service:checkout", "container:c1"),
        Relation("service:node", "host:web-1"),
        Relation("service:node", "host:web-2"),
    ]
    # only edges between the resources given
    assert relations([r for r in rs if r.id != "host:web-1"]) == [
        Relation("service:api", "host:web-2"), Relation("service:checkout", "container:c1"),
        Relation("service:node", "host:web-2")]


def test_relations_of_discovered_resources() -> None:
    # node_uname_info and up of node_exporter on web-1, OTLP target_info of checkout in a container on web-1
    found = discover(discovery_query, 1000, 30_000)
    assert relations(found) == [
        Relation("container:abcdef0123456789", "host:web-1"),
        Relation("service:checkout", "container:abcdef0123456789"),  # the instance both carry
        Relation("service:node", "host:web-1"),  # up{instance="web-1:9100"}; 127.0.0.1:9100 names no host
    ]


names = st.text("abc-", min_size=1, max_size=3)


@given(st.lists(st.tuples(st.sampled_from(["host", "container", "service"]), names,
                          st.lists(st.builds(lambda n, p: f"{n}:{p}" if p else n, names, st.sampled_from(["", "80"])),
                                   max_size=3), names), max_size=12))
def test_edges_join_known_resources_and_point_down_the_layers(items: list[tuple[str, str, list[str], str]]) -> None:
    rs = {f"{k}:{n}": res(f"{k}:{n}", instances=tuple(i), hostname=n if k == "host" else "",
                          parent=f"host:{p}" if k == "container" else "") for k, n, i, p in items}
    layer = {"host": 0, "container": 1, "service": 2}
    edges = relations(list(rs.values()))
    assert edges == sorted(set(edges))
    for e in edges:
        assert e.source in rs and e.target in rs and e.source != e.target
        assert layer[rs[e.source].kind] > layer[rs[e.target].kind]


def _tenant(request: Request) -> str:
    return request.headers.get("x-tenant", "a")


class NoEvents:
    def events(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        return []


def _query(expr: str, t: int) -> Vector:
    # memory use per host: web-1 critical, web-2 warning, web-3 healthy (no alert fires)
    if expr != "mem":
        return []
    return [Sample(make_labels({"instance": h}), v) for h, v in (("web-1", 99.0), ("web-2", 85.0), ("web-3", 10.0))]


def _client() -> tuple[TestClient, ResourceRegistry, HealthMonitor]:
    reg = ResourceRegistry(MemoryStateFile())
    mon = HealthMonitor(reg, [HealthRule("host", "memory_usage", "mem", 80, 95, unit="%")], lambda t: _query,
                        NoEvents(), HealthHistory(MemoryStateFile()), security_window_ms=60_000)
    api = HealthApi(reg, mon, HealthHistory(MemoryStateFile()), _tenant, clock=lambda: NOW)
    return TestClient(Starlette(routes=api.routes())), reg, mon


def _fleet(reg: ResourceRegistry, tenant: str = "a") -> None:
    reg.observe(tenant, [
        res("host:web-1", hostname="web-1", instances=("web-1",)),
        res("host:web-2", hostname="web-2", instances=("web-2",)),
        res("host:web-3", hostname="web-3", instances=("web-3",)),
        res("container:c1", name="nginx", parent="host:web-1"),
        res("service:node", instances=("web-1:9100",)),
    ])


def test_health_map_nodes_edges_and_health() -> None:
    c, reg, mon = _client()
    _fleet(reg)
    r = c.get("/api/v1/health/map")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    nodes = {n["id"]: n for n in data["nodes"]}
    assert sorted(nodes) == ["container:c1", "host:web-1", "host:web-2", "host:web-3", "service:node"]
    assert (data["total"], data["truncated"]) == (5, False)
    # evaluated on the spot (no pass has run): the same health as the per-resource endpoint's
    assert mon.passes == 0
    web1 = nodes["host:web-1"]
    assert (web1["kind"], web1["status"], web1["health"]["status"]) == ("host", "up", "critical")
    assert web1["health"]["reason"] == "memory_usage is 99% (critical at 95%)"
    assert [s["name"] for s in web1["health"]["signals"] if s["status"] == "critical"] == ["memory_usage"]
    assert nodes["host:web-2"]["health"]["status"] == "warning"
    assert nodes["host:web-3"]["health"]["status"] == "healthy"
    assert {(e["source"], e["target"], e["relation"]) for e in data["edges"]} == {
        ("container:c1", "host:web-1", "runs_on"), ("service:node", "host:web-1", "runs_on")}


def test_health_map_limit_keeps_the_most_severe() -> None:
    c, reg, _ = _client()
    _fleet(reg)
    data = c.get("/api/v1/health/map", params={"limit": "2"}).json()["data"]
    assert [n["id"] for n in data["nodes"]] == ["host:web-1", "host:web-2"]
    assert (data["total"], data["truncated"], data["edges"]) == (5, True, [])
    data = c.get("/api/v1/health/map", params={"limit": "3"}).json()["data"]
    # then the healthy ones by id; nodes are listed by id
    assert [(n["id"], n["health"]["status"]) for n in data["nodes"]] == [
        ("container:c1", "healthy"), ("host:web-1", "critical"), ("host:web-2", "warning")]
    assert [(e["source"], e["target"]) for e in data["edges"]] == [("container:c1", "host:web-1")]


def test_health_map_bad_input_and_tenants() -> None:
    c, reg, _ = _client()
    _fleet(reg, tenant="b")
    for params in ({"limit": "5001"}, {"limit": "-1"}, {"limit": "many"}):
        r = c.get("/api/v1/health/map", params=params, headers={"x-tenant": "b"})
        assert r.status_code == 400 and r.json()["errorType"] == "bad_data", (params, r.text)
        assert "limit" in r.json()["error"]
    empty = c.get("/api/v1/health/map").json()["data"]
    assert empty == {"nodes": [], "edges": [], "total": 0, "truncated": False}
    assert len(c.get("/api/v1/health/map", headers={"x-tenant": "b"}).json()["data"]["nodes"]) == 5
