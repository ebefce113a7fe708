"""The resource, health and correlation HTTP surfaces in process: every bad input is a precise 4xx
and a refused heartbeat records nothing; tenants see only their own resources."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.testclient import TestClient

from clearsight.api.correlations import CorrelationApi
from clearsight.api.health import HealthApi
from clearsight.api.resources import ResourceApi
from clearsight.health.history import HealthHistory
from clearsight.health.monitor import HealthMonitor
from clearsight.health.rules import HealthRule
from clearsight.model.labels import make_labels
from clearsight.model.logs import Event
from clearsight.resources.heartbeat import MAX_BODY_BYTES
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.state import MemoryStateFile
from clearsight.rules.types import Sample, Vector

NOW = 1_700_000_000.0


def _tenant(request: Request) -> str:
    return request.headers.get("x-tenant", "a")


class Events:
    def __init__(self) -> None:
        self.items: list[Event] = []

    def events(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        return [e for e in self.items if e.type in types and start_ns <= e.timestamp <= end_ns][:limit]


def _query(expr: str, t: int) -> Vector:
    return [Sample(make_labels({"instance": "web-1"}), 42.0)] if expr == "cpu" else []


def _client(max_per_tenant: int = 100) -> tuple[TestClient, ResourceRegistry, Events]:
    reg = ResourceRegistry(MemoryStateFile(), max_per_tenant=max_per_tenant)
    hist = HealthHistory(MemoryStateFile())
    evs = Events()
    mon = HealthMonitor(reg, [HealthRule("host", "cpu_usage", "cpu", 70, 90, unit="%")], lambda t: _query, evs, hist,
                        security_window_ms=60_000)
    clock = lambda: NOW  # noqa: E731
    routes = [*ResourceApi(reg, _tenant, heartbeat_interval_ms=30_000, clock=clock).routes(),
              *HealthApi(reg, mon, hist, _tenant, clock=clock).routes(), *CorrelationApi(evs, _tenant, clock=clock).routes()]
    return TestClient(Starlette(routes=routes)), reg, evs


def _hb(host: str) -> dict[str, object]:
    return {"id": f"host:{host}", "kind": "host", "hostname": host}


def test_heartbeat_errors_record_nothing() -> None:
    c, reg, _ = _client(max_per_tenant=1)
    cases = [
        (c.post("/api/v1/resources/heartbeat", content=b"{}", headers={"content-type": "text/plain"}), 415),
        (c.post("/api/v1/resources/heartbeat", content=b"{", headers={"content-type": "application/json"}), 400),
        (c.post("/api/v1/resources/heartbeat", json={**_hb("x"), "kind": "pod"}), 400),
        (c.post("/api/v1/resources/heartbeat", content=b"{" + b" " * MAX_BODY_BYTES + b"}",
                headers={"content-type": "application/json"}), 413),
    ]
    for r, status in cases:
        assert r.status_code == status, r.text
        assert r.json()["status"] == "error"
    assert reg.tenants() == []
    assert c.post("/api/v1/resources/heartbeat", json=_hb("one")).status_code == 200
    full = c.post("/api/v1/resources/heartbeat", json=_hb("two"))
    assert full.status_code == 429 and "max_per_tenant" in full.json()["error"]
    assert [r.id for r in reg.all("a")] == ["host:one"]


def test_tenants_are_apart_and_reads_validate() -> None:
    c, _reg, _ = _client()
    assert c.post("/api/v1/resources/heartbeat", json=_hb("web-1"), headers={"x-tenant": "b"}).status_code == 200
    assert c.get("/api/v1/resources").json()["data"] == []
    assert c.get("/api/v1/resources/host:web-1").status_code == 404
    assert c.get("/api/v1/resources/host:web-1/health").status_code == 404
    assert c.get("/api/v1/resources/host:web-1/health/history").status_code == 404
    got = c.get("/api/v1/resources/host:web-1", headers={"x-tenant": "b"}).json()["data"]
    assert (got["id"], got["status"], got["last_seen"]) == ("host:web-1", "up", NOW)
    h = c.get("/api/v1/resources/host:web-1/health", headers={"x-tenant": "b"}).json()["data"]
    assert (h["status"], h["reason"]) == ("healthy", "all 2 signals healthy")
    for path, params in [("/api/v1/resources", {"status": "dead"}), ("/api/v1/resources", {"tag": "novalue"}),
                         ("/api/v1/resources/host:web-1/health/history", {"start": "later"}),
                         ("/api/v1/resources/host:web-1/health/history", {"start": "10", "end": "5"}),
                         ("/api/v1/resources/host:web-1/health/history", {"limit": "-1"}),
                         ("/status", {"window": "0s"}), ("/api/v1/correlations", {"limit": "5000"}),
                         ("/api/v1/correlations", {"start": "0", "end": str(NOW)}),
                         ("/api/v1/correlations", {"resource": "pod:x"})]:
        r = c.get(path, params=params, headers={"x-tenant": "b"})
        assert r.status_code == 400 and r.json()["errorType"] == "bad_data", (path, params, r.text)


def test_correlations_filter_by_resource() -> None:
    c, _reg, evs = _client()
    for i, rid in enumerate(("host:a", "host:b")):
        evs.items.append(Event(id=f"corr-{i}", message=f"m{i}", level="WARN", severity="medium",
                               timestamp=int((NOW - 60) * 1e9), type="correlation",
                               data={"anomaly": {"resource": rid}, "cause": {"id": f"e{i}"}}))
    data = c.get("/api/v1/correlations", params={"resource": "host:b"}).json()["data"]
    assert [x["id"] for x in data["correlations"]] == ["corr-1"]
    assert len(c.get("/api/v1/correlations").json()["data"]["correlations"]) == 2
    assert orjson.loads(c.get("/status").content)["data"]["status"] == "unknown"
