"""The Alertmanager API v2 surface (api/alertmanager.py) in process: shapes, filters, bad input
rejected with a 400 naming the field and nothing written, silences persisted across restarts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from clearsight.api.alertmanager import make_alertmanager_routes
from clearsight.notify.alert import format_time
from clearsight.notify.config import parse_config
from clearsight.notify.notifier import Notifier

pytestmark = pytest.mark.anyio

CFG = """
route:
  receiver: default
  group_wait: 1h
  routes:
  - matchers: ['team="db"']
    receiver: db
receivers:
- name: default
- name: db
"""


class Api:
    def __init__(self, data_dir: Path) -> None:
        self.notifier = Notifier(parse_config(CFG, "am.yml"), data_dir=data_dir)
        app = Starlette(routes=make_alertmanager_routes(self.notifier))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cs")

    async def __aenter__(self) -> Api:
        await self.notifier.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self.notifier.stop()

    async def get(self, path: str, **params: Any) -> Any:
        r = await self.http.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


def _alert(name: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": name},
            "startsAt": format_time(time.time() - 10), "generatorURL": "http://x"}


async def test_alerts_post_is_all_or_nothing_and_get_filters(tmp_path: Path) -> None:
    async with Api(tmp_path) as api:
        r = await api.http.post("/api/v2/alerts", json=[_alert("A"), {"labels": {"bad-name": "x"}}])
        assert r.status_code == 400 and "[1].labels: invalid label name 'bad-name'" in r.json()
        assert await api.get("/api/v2/alerts") == []
        r = await api.http.post("/api/v2/alerts", content=b"{not json")
        assert r.status_code == 400 and "invalid JSON" in r.json()
        r = await api.http.post("/api/v2/alerts", json=[_alert("A", team="db"), _alert("B", team="web")])
        assert r.status_code == 200
        got = await api.get("/api/v2/alerts")
        assert sorted((a["labels"]["alertname"], a["receivers"], a["status"]["state"]) for a in got) == [
            ("A", [{"name": "db"}], "active"), ("B", [{"name": "default"}], "active")]
        assert [a["labels"]["alertname"] for a in await api.get("/api/v2/alerts", filter='team="db"')] == ["A"]
        assert [a["labels"]["alertname"] for a in await api.get("/api/v2/alerts", receiver="def.*")] == ["B"]
        r = await api.http.get("/api/v2/alerts", params={"filter": "team=~("})
        assert r.status_code == 400 and 'invalid parameter "filter"' in r.json()
        groups = await api.get("/api/v2/alerts/groups")
        assert sorted(g["receiver"]["name"] for g in groups) == ["db", "default"]
        assert (await api.get("/api/v2/status"))["config"]["original"] == CFG
        assert sorted(r["name"] for r in await api.get("/api/v2/receivers")) == ["db", "default"]


async def test_silences_lifecycle_and_validation(tmp_path: Path) -> None:
    async with Api(tmp_path) as api:
        await api.http.post("/api/v2/alerts", json=[_alert("A", team="db"), _alert("B")])
        bad = [
            ({"matchers": [], "createdBy": "a", "comment": "c", "endsAt": "2999-01-01T00:00:00Z"}, "matchers"),
            ({"matchers": [{"name": "team", "value": ".*", "isRegex": True}], "createdBy": "a", "comment": "c",
              "endsAt": "2999-01-01T00:00:00Z"}, "must not match the empty string"),
            ({"matchers": [{"name": "team", "value": "db"}], "createdBy": "a", "comment": "c"}, "endsAt: required"),
            ({"matchers": [{"name": "team", "value": "db"}], "createdBy": "", "comment": "c",
              "endsAt": "2999-01-01T00:00:00Z"}, "createdBy: required"),
            ({"matchers": [{"name": "team", "value": "("}], "createdBy": "a", "comment": "c", "isRegex": True,
              "endsAt": "2000-01-01T00:00:00Z"}, "endsAt"),
            ({"matchers": [{"name": "team", "value": "(", "isRegex": True}], "createdBy": "a", "comment": "c",
              "endsAt": "2999-01-01T00:00:00Z"}, "matchers[0]"),
        ]
        for body, needle in bad:
            r = await api.http.post("/api/v2/silences", json=body)
            assert r.status_code == 400 and needle in r.json(), (body, r.text)
        assert await api.get("/api/v2/silences") == []
        r = await api.http.post("/api/v2/silences", json={
            "matchers": [{"name": "team", "value": "db", "isRegex": False, "isEqual": True}], "createdBy": "ops",
            "comment": "migration", "endsAt": "2999-01-01T00:00:00Z"})
        sid = r.json()["silenceID"]
        assert "warnings" not in r.json()
        alerts = {a["labels"]["alertname"]: a for a in await api.get("/api/v2/alerts")}
        assert alerts["A"]["status"] == {"state": "suppressed", "silencedBy": [sid], "inhibitedBy": [], "mutedBy": []}
        assert [a["labels"]["alertname"] for a in await api.get("/api/v2/alerts", silenced="false")] == ["B"]
        s = await api.get(f"/api/v2/silence/{sid}")
        assert (s["status"]["state"], s["createdBy"], s["matchers"][0]["name"]) == ("active", "ops", "team")
        assert [x["id"] for x in await api.get("/api/v2/silences", filter='team="db"')] == [sid]
        assert await api.get("/api/v2/silences", filter='team="web"') == []
        r = await api.http.post("/api/v2/silences", json={
            "matchers": [{"name": "host", "value": "nowhere"}], "createdBy": "ops", "comment": "x",
            "expireOnResolve": True})
        assert r.json()["warnings"] == ["the silence matches no firing alert"]
        assert (await api.http.delete(f"/api/v2/silence/{sid}")).status_code == 200
        assert (await api.http.delete(f"/api/v2/silence/{sid}")).status_code == 400
        assert (await api.http.get("/api/v2/silence/nope")).status_code == 404
        assert (await api.get(f"/api/v2/silence/{sid}"))["status"]["state"] == "expired"
    async with Api(tmp_path) as again:
        states = {s["id"]: s["status"]["state"] for s in await again.get("/api/v2/silences")}
        assert states[sid] == "expired" and len(states) == 2
