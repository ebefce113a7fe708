"""Rule groups managed per tenant through the API: validation before anything is written (errors
name namespace, group, rule and field), add/replace/delete, each tenant sees only its own groups,
and the groups are evaluated with the tenant's own query function."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.testclient import TestClient

from clearsight.api.prometheus_rules import make_rule_config_routes, make_rules_routes
from clearsight.rules.manager import RuleManager
from clearsight.rules.tenants import TenantRuleSets
from clearsight.rules.types import Sample

GROUP = "name: g1\ninterval: 10s\nrules:\n  - record: t:up\n    expr: up\n"
JSON_GROUP = '{"name": "g2", "rules": [{"alert": "Down", "expr": "up == 0", "for": "1m"}]}'


def _client(tmp_path: Path) -> tuple[TestClient, TenantRuleSets, list[tuple[str, str]]]:
    queried: list[tuple[str, str]] = []

    def manager_for(tenant: str, patterns: list[str]) -> RuleManager:
        def query(expr: str, t: int) -> list[Sample]:
            queried.append((tenant, expr))
            return []

        return RuleManager(patterns, query=query, write=lambda s, sync: None, notify=None)

    sets = TenantRuleSets(tmp_path / "api", manager_for)
    files = RuleManager([], query=lambda e, t: [], write=lambda s, sync: None, notify=None)

    def tenant_of(request: Request) -> str:
        return request.headers.get("X-Scope-OrgID", "default")

    app = Starlette(routes=[*make_rules_routes(files, tenant_of, "default", sets),
                            *make_rule_config_routes(sets, tenant_of)])
    return TestClient(app), sets, queried


def _groups(client: TestClient, tenant: str) -> list[tuple[str, str, list[str]]]:
    body: Any = client.get("/api/v1/rules", headers={"X-Scope-OrgID": tenant}).json()
    return [(Path(g["file"]).stem, g["name"], [r["name"] for r in g["rules"]]) for g in body["data"]["groups"]]


def test_add_replace_and_delete_groups(tmp_path: Path) -> None:
    client, sets, queried = _client(tmp_path)
    a = {"X-Scope-OrgID": "team-a"}
    assert client.post("/api/v1/rules/ns1", content=GROUP, headers=a).status_code == 202
    assert client.post("/api/v1/rules/ns1", content=JSON_GROUP, headers=a).status_code == 202
    assert _groups(client, "team-a") == [("ns1", "g1", ["t:up"]), ("ns1", "g2", ["Down"])]
    assert _groups(client, "team-b") == [] and _groups(client, "default") == []
    assert client.post("/api/v1/rules/ns1", content=GROUP.replace("expr: up", "expr: up2"), headers=a).status_code \
        == 202
    assert "expr: up2" in client.get("/api/v1/rules/ns1", headers=a).text
    assert client.get("/api/v1/rules/ns1", headers={"X-Scope-OrgID": "team-b"}).status_code == 404

    # The tenant's groups run with the tenant's query function.
    m = sets.managers["team-a"]
    for g in m.groups:
        m.eval_group(g, 0)
    assert sorted(queried) == [("team-a", "up == 0"), ("team-a", "up2")]

    assert client.delete("/api/v1/rules/ns1/g1", headers=a).status_code == 202
    assert _groups(client, "team-a") == [("ns1", "g2", ["Down"])]
    assert client.delete("/api/v1/rules/ns1/g1", headers=a).status_code == 404
    assert client.put("/api/v1/rules/ns2", content="groups:\n  - " + GROUP.replace("\n", "\n    "),
                      headers=a).status_code == 202
    assert [n for n, _g, _r in _groups(client, "team-a")] == ["ns1", "ns2"]
    assert client.delete("/api/v1/rules/ns1", headers=a).status_code == 202
    assert _groups(client, "team-a") == [("ns2", "g1", ["t:up"])]


def test_bad_bodies_are_400_naming_the_field_and_write_nothing(tmp_path: Path) -> None:
    client, _sets, _q = _client(tmp_path)
    a = {"X-Scope-OrgID": "team-a"}
    assert client.post("/api/v1/rules/ns", content=GROUP, headers=a).status_code == 202
    r = client.post("/api/v1/rules/ns", content=GROUP.replace("name: g1", "name: g3").replace("10s", "ten"),
                    headers=a)
    assert r.status_code == 400
    assert r.json()["error"] == 'ns:2: group "g3": field "interval": not a valid duration string: "ten"'
    r = client.post("/api/v1/rules/ns", content="name: g4\nrules:\n  - alert: X\n    expr: up\n    severity: 1\n",
                    headers=a)
    assert r.status_code == 400 and 'group "g4", rule 1 ("X"): field "severity"' in r.json()["error"]
    assert client.post("/api/v1/rules/ns", content="[1, 2", headers=a).status_code == 400
    assert client.post("/api/v1/rules/..bad", content=GROUP, headers=a).status_code == 400
    assert _groups(client, "team-a") == [("ns", "g1", ["t:up"])]  # nothing else was written


def test_saved_groups_load_at_start(tmp_path: Path) -> None:
    client, _sets, _q = _client(tmp_path)
    assert client.post("/api/v1/rules/ns", content=GROUP, headers={"X-Scope-OrgID": "t1"}).status_code == 202
    _client2, sets2, _q2 = _client(tmp_path)
    sets2.load()
    assert [g.name for g in sets2.managers["t1"].groups] == ["g1"]
    asyncio.run(sets2.start())
    asyncio.run(sets2.stop())
