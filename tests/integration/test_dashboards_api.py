"""Saved dashboards against a real server (auth.anonymous off, the SQLite state database): create,
list, read, replace with a version check, delete; bad input is a 400 naming the field and writes
nothing; another organisation sees none of them; a viewer reads but may not change them (403)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight

ADMIN_PASSWORD = "correct horse battery staple"
DASH = {
    "title": "Hosts",
    "panels": [{"title": "Up", "type": "stat", "query": "up"}],
    "variables": [{"name": "host", "label": "instance"}],
}


def login(base: str, user: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"username": user, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['data']['token']}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, dict[str, dict[str, str]]]]:
    work: Path = tmp_path_factory.mktemp("dashboards")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARSIGHT_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        proc = start_clearsight(work, config_yaml='auth:\n  anonymous: "off"\n')
    try:
        admin = login(proc.url, "admin", ADMIN_PASSWORD)
        r = httpx.post(
            f"{proc.url}/api/v1/admin/users",
            headers=admin,
            timeout=30,
            json={"username": "vera", "password": "viewer pass phrase 4711", "role": "viewer"},
        )
        assert r.status_code == 200, r.text
        r = httpx.post(f"{proc.url}/api/v1/admin/orgs", headers=admin, json={"name": "beta"}, timeout=30)
        assert r.status_code == 200, r.text
        r = httpx.post(
            f"{proc.url}/api/v1/admin/apikeys",
            headers={**admin, "X-Scope-OrgID": "beta"},
            json={"name": "beta-admin", "role": "admin"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        beta = {"Authorization": f"Bearer {r.json()['data']['key']}"}
        yield (
            proc,
            {"admin": admin, "viewer": login(proc.url, "vera", "viewer pass phrase 4711"), "beta": beta},
        )
    finally:
        proc.stop()


def call(proc: Proc, who: dict[str, str], method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{proc.url}{path}", headers=who, json=body, timeout=30)


def test_create_list_read_replace_delete(server: tuple[Proc, dict[str, dict[str, str]]]) -> None:
    proc, who = server
    r = call(proc, who["admin"], "POST", "/api/v1/dashboards", DASH)
    assert r.status_code == 200, r.text
    made = r.json()["data"]
    did = made["id"]
    assert made["version"] == 1 and made["updated_by"] == "admin"
    assert made["panels"] == [{"title": "Up", "type": "stat", "query": "up", "unit": "", "width": 1}]
    listed = call(proc, who["viewer"], "GET", "/api/v1/dashboards").json()["data"]
    assert [(d["id"], d["title"], d["panels"]) for d in listed] == [(did, "Hosts", 1)]
    got = call(proc, who["viewer"], "GET", f"/api/v1/dashboards/{did}").json()["data"]
    assert got == made
    # replace what a GET returned (its derived fields are ignored), with the version it read
    changed = {
        **got,
        "title": "Hosts (edited)",
        "panels": [*got["panels"], {"title": "Load", "type": "timeseries", "query": "node_load1"}],
    }
    r = call(proc, who["admin"], "PUT", f"/api/v1/dashboards/{did}", changed)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["version"] == 2
    # a second save from the same stale version is refused: someone saved in between
    r = call(proc, who["admin"], "PUT", f"/api/v1/dashboards/{did}", {**changed, "title": "lost update"})
    assert r.status_code == 409, r.text
    assert (
        call(proc, who["admin"], "GET", f"/api/v1/dashboards/{did}").json()["data"]["title"]
        == "Hosts (edited)"
    )
    r = call(proc, who["admin"], "DELETE", f"/api/v1/dashboards/{did}")
    assert r.status_code == 200, r.text
    assert call(proc, who["admin"], "GET", f"/api/v1/dashboards/{did}").status_code == 404
    assert call(proc, who["admin"], "DELETE", f"/api/v1/dashboards/{did}").status_code == 404


def test_bad_input_names_the_field_and_writes_nothing(server: tuple[Proc, dict[str, dict[str, str]]]) -> None:
    proc, who = server
    before = call(proc, who["admin"], "GET", "/api/v1/dashboards").json()["data"]
    bad = {**DASH, "panels": [{"title": "x", "type": "pie", "query": "up"}]}
    r = call(proc, who["admin"], "POST", "/api/v1/dashboards", bad)
    assert r.status_code == 400 and r.json()["error"].startswith("panels[0].type: "), r.text
    r = httpx.post(
        f"{proc.url}/api/v1/dashboards",
        headers={**who["admin"], "Content-Type": "text/plain"},
        content=b"{}",
        timeout=30,
    )
    assert r.status_code == 415, r.text
    r = httpx.post(
        f"{proc.url}/api/v1/dashboards",
        headers={**who["admin"], "Content-Type": "application/json"},
        content=b"{not json",
        timeout=30,
    )
    assert r.status_code == 400, r.text
    assert call(proc, who["admin"], "GET", "/api/v1/dashboards/not-an-id").status_code == 404
    assert call(proc, who["admin"], "GET", "/api/v1/dashboards").json()["data"] == before


def test_organisations_and_roles(server: tuple[Proc, dict[str, dict[str, str]]]) -> None:
    proc, who = server
    did = call(proc, who["admin"], "POST", "/api/v1/dashboards", DASH).json()["data"]["id"]
    assert call(proc, who["beta"], "GET", "/api/v1/dashboards").json()["data"] == []
    assert call(proc, who["beta"], "GET", f"/api/v1/dashboards/{did}").status_code == 404
    assert call(proc, who["beta"], "PUT", f"/api/v1/dashboards/{did}", DASH).status_code == 404
    assert call(proc, who["beta"], "DELETE", f"/api/v1/dashboards/{did}").status_code == 404
    assert call(proc, who["viewer"], "POST", "/api/v1/dashboards", DASH).status_code == 403
    assert call(proc, who["viewer"], "PUT", f"/api/v1/dashboards/{did}", DASH).status_code == 403
    assert call(proc, who["viewer"], "DELETE", f"/api/v1/dashboards/{did}").status_code == 403
    assert call(proc, who["admin"], "GET", f"/api/v1/dashboards/{did}").json()["data"]["title"] == "Hosts"
