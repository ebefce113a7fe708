"""Prometheus' rules API over a manager: /api/v1/rules shapes and filters, /api/v1/alerts,
POST /-/reload (200, or 500 keeping the previous rules), other tenants see nothing."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.testclient import TestClient

from clearsight.api.prometheus_rules import make_reload_route, make_rules_routes
from clearsight.rules.manager import RuleManager
from clearsight.rules.types import Sample

RULES = """
groups:
  - name: rec
    rules:
      - record: job:up
        expr: up
        labels: {k: v}
  - name: alerts
    interval: 15s
    rules:
      - alert: Down
        expr: down
        for: 1m
        keep_firing_for: 30s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.i }} down"}
      - alert: Broken
        expr: fail
"""


def _query(expr: str, t: int) -> list[Sample]:
    if expr == "fail":
        raise RuntimeError("query failed")
    return [Sample((("__name__", expr), ("i", "a")), 2.0)]


def _client(tmp_path: Path) -> tuple[TestClient, RuleManager, Path]:
    f = tmp_path / "r.yml"
    f.write_text(RULES)
    m = RuleManager([str(f)], query=_query, write=lambda s, sync: None, notify=None)
    m.load()
    for g in m.groups:
        m.eval_group(g, 1_700_000_000_000)

    def tenant_of(request: Request) -> str:
        return request.headers.get("X-Scope-OrgID", "default")

    app = Starlette(routes=[*make_rules_routes(m, tenant_of, "default"), make_reload_route(m)])
    return TestClient(app), m, f


def test_rules_shape(tmp_path: Path) -> None:
    client, _m, f = _client(tmp_path)
    body = client.get("/api/v1/rules").json()
    assert body["status"] == "success"
    rec, alerts = body["data"]["groups"]
    assert (rec["name"], rec["file"], rec["interval"], rec["limit"]) == ("rec", str(f), 60, 0)
    assert rec["lastEvaluation"] == "2023-11-14T22:13:20Z"
    assert rec["rules"] == [{"name": "job:up", "query": "up", "labels": {"k": "v"}, "health": "ok",
                             "evaluationTime": rec["rules"][0]["evaluationTime"],
                             "lastEvaluation": "2023-11-14T22:13:20Z", "type": "recording"}]
    down, broken = alerts["rules"]
    assert {k: down[k] for k in ("state", "name", "query", "duration", "keepFiringFor", "labels", "annotations",
                                 "health", "type")} == {
        "state": "pending", "name": "Down", "query": "down", "duration": 60, "keepFiringFor": 30,
        "labels": {"severity": "page"}, "annotations": {"summary": "{{ $labels.i }} down"}, "health": "ok",
        "type": "alerting"}
    assert down["alerts"] == [{"labels": {"alertname": "Down", "i": "a", "severity": "page"},
                               "annotations": {"summary": "a down"}, "state": "pending",
                               "activeAt": "2023-11-14T22:13:20Z", "value": "2e+00"}]
    assert (broken["health"], broken["lastError"]) == ("err", "query failed")


def test_rules_filters(tmp_path: Path) -> None:
    client, _m, f = _client(tmp_path)

    def names(**params: object) -> list[tuple[str, list[str]]]:
        groups = client.get("/api/v1/rules", params=params).json()["data"]["groups"]  # type: ignore[arg-type]
        return [(g["name"], [r["name"] for r in g["rules"]]) for g in groups]

    assert names(type="record") == [("rec", ["job:up"])]
    assert names(type="alert") == [("alerts", ["Down", "Broken"])]
    assert names(**{"rule_name[]": ["Broken", "job:up"]}) == [("rec", ["job:up"]), ("alerts", ["Broken"])]
    assert names(**{"rule_group[]": "alerts"}) == [("alerts", ["Down", "Broken"])]
    assert names(**{"group_name[]": "rec"}) == [("rec", ["job:up"])]
    assert names(**{"file[]": "other.yml"}) == []
    assert names(**{"file[]": str(f), "type": "record"}) == [("rec", ["job:up"])]
    r = client.get("/api/v1/rules", params={"type": "bogus"})
    assert r.status_code == 400 and r.json()["errorType"] == "bad_data"


def test_alerts_and_tenants(tmp_path: Path) -> None:
    client, _m, _f = _client(tmp_path)
    alerts = client.get("/api/v1/alerts").json()["data"]["alerts"]
    assert [(a["labels"]["alertname"], a["state"]) for a in alerts] == [("Down", "pending")]
    assert client.get("/api/v1/alerts", headers={"X-Scope-OrgID": "other"}).json()["data"] == {"alerts": []}
    assert client.get("/api/v1/rules", headers={"X-Scope-OrgID": "other"}).json()["data"] == {"groups": []}


def test_reload(tmp_path: Path) -> None:
    client, m, f = _client(tmp_path)
    f.write_text(RULES.replace("expr: up\n", "expr: up2\n"))
    r = client.post("/-/reload")
    assert (r.status_code, r.text) == (200, "")
    assert m.groups[0].rules[0].spec.expr == "up2"
    f.write_text(RULES.replace("for: 1m", "for: 1 minute"))
    r = client.post("/-/reload")
    assert r.status_code == 500 and 'field "for": not a valid duration string' in r.text
    assert m.groups[0].rules[0].spec.expr == "up2"  # previous rules kept
