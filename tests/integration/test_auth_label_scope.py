"""Roles narrowed by label matchers on the server's real stack: a key whose role carries
{team="payments"} sees only payments' series and log streams in every PromQL/LogQL query (GET and
POST), series/labels/label values, federation and Loki's discovery endpoints, and only the events
tagged team=payments; reads that cannot be narrowed (remote read, metadata, TSDB status, rules, log
context, catalog) are 403; an unnarrowed viewer still sees everything; a narrowed manager cannot grant
a wider role."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.support.auth_stack import Stack, auth_stack

SELECTOR = '{team="payments"}'


class Env:
    def __init__(self, stack: Stack) -> None:
        auth = stack.built.auth
        assert auth is not None
        self.c: TestClient = stack.client()
        self.admin = {"Authorization": "Bearer " + auth.keys.create("default", "admin", "admin")[1]}
        self.viewer = {"Authorization": "Bearer " + auth.keys.create("default", "viewer", "viewer")[1]}
        r = self.c.post(
            "/api/v1/admin/roles",
            headers=self.admin,
            json={
                "name": "payments-viewer",
                "permissions": ["metrics:read", "logs:read", "events:read", "traces:read"],
                "selector": SELECTOR,
            },
        )
        assert r.status_code == 200 and r.json()["data"]["selector"] == SELECTOR, r.text
        r = self.c.post(
            "/api/v1/admin/apikeys", headers=self.admin, json={"name": "pay", "role": "payments-viewer"}
        )
        assert r.status_code == 200, r.text
        self.pay = {"Authorization": "Bearer " + r.json()["data"]["key"]}
        metrics = [
            {"name": "cpu", "value": v, "labels": {"team": t, "instance": f"{t}-1"}}
            for t, v in (("payments", 1.0), ("search", 10.0))
        ]
        metrics.append({"name": "search_only_metric", "value": 5, "labels": {"team": "search"}})
        assert self._post("/api/v1/ingest/metrics", {"metrics": metrics}).status_code == 200
        self._push("payments", "pay-api", "payment ok")
        self._push("search", "search-api", "secret query")
        events = [{"message": "refund issued", "level": "INFO", "tags": ["team=payments", "billing"]},
                  {"message": "index rebuilt", "level": "WARN", "tags": ["team=search"]},
                  {"message": "untagged deploy", "level": "INFO"}]
        assert self._post("/api/v1/events", {"events": events}).status_code in (200, 202, 204)

    def _post(self, path: str, doc: dict[str, Any]) -> Any:
        return self.c.post(
            path, content=orjson.dumps(doc), headers={"Content-Type": "application/json", **self.admin}
        )

    def _push(self, team: str, service: str, line: str) -> None:
        body = {
            "streams": [
                {"stream": {"team": team, "service": service}, "values": [[str(time.time_ns()), line]]}
            ]
        }
        assert self._post("/loki/api/v1/push", body).status_code == 204

    def prom(self, key: dict[str, str], query: str, method: str = "GET") -> list[dict[str, Any]]:
        if method == "GET":
            r = self.c.get("/api/v1/query", params={"query": query}, headers=key)
        else:
            r = self.c.post("/api/v1/query", data={"query": query}, headers=key)
        assert r.status_code == 200, r.text
        return list(r.json()["data"]["result"])

    def get(self, key: dict[str, str], path: str, **params: Any) -> Any:
        r = self.c.get(path, params=params, headers=key)
        assert r.status_code == 200, (path, r.text)
        return r.json()["data"]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with auth_stack(tmp_path, **{"auth.anonymous": "off"}) as s:
        yield Env(s)


def _teams(result: list[dict[str, Any]]) -> set[str]:
    return {r["metric"].get("team", "") for r in result}


def test_promql_sees_only_the_selector(env: Env) -> None:
    assert _teams(env.prom(env.viewer, "cpu")) == {"payments", "search"}  # unnarrowed: everything
    for method in ("GET", "POST"):
        assert _teams(env.prom(env.pay, "cpu", method)) == {"payments"}
        assert env.prom(env.pay, 'cpu{team="search"}', method) == []
        assert env.prom(env.pay, "sum(cpu)", method)[0]["value"][1] == "1"
        assert _teams(env.prom(env.pay, '{__name__=~".+"}', method)) == {"payments"}
        assert env.prom(env.pay, "search_only_metric", method) == []
        assert env.prom(env.pay, 'label_replace(cpu{team="search"}, "x", "y", "", "")', method) == []
        assert env.prom(env.pay, "count(last_over_time(cpu[5m]))", method)[0]["value"][1] == "1"
    r = env.c.get(
        "/api/v1/query_range",
        params={"query": "cpu", "start": str(time.time() - 600), "end": str(time.time()), "step": "60"},
        headers=env.pay,
    )
    assert r.status_code == 200 and _teams(r.json()["data"]["result"]) == {"payments"}


def test_discovery_and_federation_see_only_the_selector(env: Env) -> None:
    assert {s["team"] for s in env.get(env.pay, "/api/v1/series", **{"match[]": "cpu"})} == {"payments"}
    assert env.get(env.pay, "/api/v1/label/team/values") == ["payments"]
    names = env.get(env.pay, "/api/v1/label/__name__/values")
    assert "cpu" in names and "search_only_metric" not in names
    assert "search_only_metric" in env.get(env.viewer, "/api/v1/label/__name__/values")
    r = env.c.get("/federate", params={"match[]": '{__name__=~".+"}'}, headers=env.pay)
    assert r.status_code == 200 and 'team="payments"' in r.text and "search" not in r.text


def test_logql_sees_only_the_selector(env: Env) -> None:
    def lines(key: dict[str, str], query: str) -> list[str]:
        data = env.get(key, "/loki/api/v1/query_range", query=query, limit="100")
        return sorted(v[1] for s in data["result"] for v in s["values"])

    assert lines(env.viewer, '{service=~".+"}') == ["payment ok", "secret query"]
    assert lines(env.pay, '{service=~".+"}') == ["payment ok"]
    assert lines(env.pay, '{team="search"}') == []
    assert lines(env.pay, '{service=~".+"} |= "secret"') == []
    assert env.get(env.pay, "/loki/api/v1/label/team/values") == ["payments"]
    assert env.get(env.pay, "/loki/api/v1/label/service/values") == ["pay-api"]
    assert [s["team"] for s in env.get(env.pay, "/loki/api/v1/series", **{"match[]": '{service=~".+"}'})] == [
        "payments"
    ]


def test_native_log_search_and_export_see_only_the_selector(env: Env) -> None:
    for path in ("/api/v1/logs", "/api/v1/logs/export"):
        everything = env.c.get(path, headers=env.viewer)
        assert everything.status_code == 200 and "secret query" in everything.text, everything.text
        r = env.c.get(path, headers=env.pay)
        assert r.status_code == 200 and "payment ok" in r.text and "secret query" not in r.text, r.text
        r = env.c.get(
            path, params={"label": "team=search"}, headers=env.pay
        )  # asking for more: still nothing
        assert r.status_code == 200 and "secret query" not in r.text
    # a role narrowed by a regular expression cannot be expressed as the native API's exact filters: 403
    r = env.c.post(
        "/api/v1/admin/roles",
        headers=env.admin,
        json={"name": "pay-re", "permissions": ["logs:read"], "selector": '{team=~"pay.*"}'},
    )
    assert r.status_code == 200, r.text
    key = env.c.post(
        "/api/v1/admin/apikeys", headers=env.admin, json={"name": "re", "role": "pay-re"}
    ).json()["data"]
    h = {"Authorization": "Bearer " + key["key"]}
    assert env.c.get("/api/v1/logs", headers=h).status_code == 403
    assert (
        env.c.get("/loki/api/v1/query_range", params={"query": '{service=~".+"}'}, headers=h).status_code
        == 200
    )


def test_events_are_narrowed_by_their_name_value_tags(env: Env) -> None:
    def messages(key: dict[str, str], **params: str) -> list[str]:
        return sorted(e["message"] for e in env.get(key, "/api/v1/events", **params)["events"])

    assert messages(env.viewer) == ["index rebuilt", "refund issued", "untagged deploy"]
    assert messages(env.viewer, label="team=search") == ["index rebuilt"]
    assert messages(env.pay) == ["refund issued"]
    assert messages(env.pay, label="team=search") == []  # asking for more: still nothing
    assert messages(env.pay, level="WARN") == []
    (ev,) = env.get(env.pay, "/api/v1/events")["events"]
    assert ev["tags"] == ["team=payments", "billing"]  # the tags are kept as they came


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/read"),
        ("GET", "/api/v1/metadata"),
        ("GET", "/api/v1/status/tsdb"),
        ("GET", "/api/v1/rules"),
        ("GET", "/api/v1/logs/context"),
        ("GET", "/api/v1/catalog"),
        ("GET", "/api/v1/latest"),
        ("GET", "/api/v1/traces/5b8efff798038103d269b633813fc60c"),  # spans have no stream labels
    ],
)
def test_reads_that_cannot_be_narrowed_are_refused(env: Env, method: str, path: str) -> None:
    r = env.c.request(method, path, headers=env.pay)
    assert r.status_code == 403 and "narrowed" in r.json()["error"], r.text
    assert env.c.request(method, path, headers=env.viewer).status_code != 403


def test_a_narrowed_manager_grants_nothing_wider(env: Env) -> None:
    r = env.c.post(
        "/api/v1/admin/roles",
        headers=env.admin,
        json={"name": "pay-keys", "permissions": ["keys:manage", "metrics:read"], "selector": SELECTOR},
    )
    assert r.status_code == 200, r.text
    mgr = env.c.post(
        "/api/v1/admin/apikeys", headers=env.admin, json={"name": "m", "role": "pay-keys"}
    ).json()["data"]
    h = {"Authorization": "Bearer " + mgr["key"]}
    assert (
        env.c.post("/api/v1/admin/apikeys", headers=h, json={"name": "x", "role": "ingest"}).status_code
        == 403
    )
    assert (
        env.c.post("/api/v1/admin/apikeys", headers=h, json={"name": "x", "role": "pay-keys"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "selector", ["team", "{}", 'up{team="a"}', '{__name__="up"}', '{team="a"} offset 5m', "{team="]
)
def test_bad_selectors_write_nothing(env: Env, selector: str) -> None:
    r = env.c.post(
        "/api/v1/admin/roles",
        headers=env.admin,
        json={"name": "bad", "permissions": ["metrics:read"], "selector": selector},
    )
    assert r.status_code == 400, r.text
    names = [x["name"] for x in env.get(env.admin, "/api/v1/admin/roles")]
    assert "bad" not in names
