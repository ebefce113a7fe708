"""Recurring silences against a real server (auth.anonymous off, the SQLite state database): a schedule
whose window runs now is materialised at once as an ordinary silence that Debian's ``amtool`` lists and
that mutes a firing alert; deleting the schedule expires it; bad input is a 400 naming the field and
writes nothing; another organisation sees none of the schedules and cannot delete them (404); a viewer
lists them but may not change them (403)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, require_binary, start_clearsight

ADMIN_PASSWORD = "correct horse battery staple"
ALWAYS = {
    "matchers": [{"name": "alertname", "value": "NightlyBackup", "isRegex": False, "isEqual": True}],
    "weekdays": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    "startTime": "00:00",
    "endTime": "24:00",
    "timeZone": "UTC",
    "comment": "backups run all day",
}
SUNDAY = {**ALWAYS, "weekdays": ["sunday"], "startTime": "02:00", "endTime": "04:00", "timeZone": "Europe/Berlin"}

Who = dict[str, dict[str, str]]


def login(base: str, user: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"username": user, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['data']['token']}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, Who, Path]]:
    work: Path = tmp_path_factory.mktemp("silence-schedules")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARSIGHT_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        proc = start_clearsight(work, config_yaml='auth:\n  anonymous: "off"\n')
    try:
        admin = login(proc.url, "admin", ADMIN_PASSWORD)
        r = httpx.post(f"{proc.url}/api/v1/admin/users", headers=admin, timeout=30,
                       json={"username": "vera", "password": "viewer pass phrase 4711", "role": "viewer"})
        assert r.status_code == 200, r.text
        r = httpx.post(f"{proc.url}/api/v1/admin/orgs", headers=admin, json={"name": "beta"}, timeout=30)
        assert r.status_code == 200, r.text
        r = httpx.post(f"{proc.url}/api/v1/admin/apikeys", headers={**admin, "X-Scope-OrgID": "beta"},
                       json={"name": "beta-admin", "role": "admin"}, timeout=30)
        assert r.status_code == 200, r.text
        beta = {"Authorization": f"Bearer {r.json()['data']['key']}"}
        r = httpx.post(f"{proc.url}/api/v1/admin/apikeys", headers=admin, json={"name": "am", "role": "admin"},
                       timeout=30)
        assert r.status_code == 200, r.text
        key = {"Authorization": f"Bearer {r.json()['data']['key']}"}
        yield proc, {"admin": admin, "key": key, "viewer": login(proc.url, "vera", "viewer pass phrase 4711"),
                     "beta": beta}, work
    finally:
        proc.stop()


def call(proc: Proc, who: dict[str, str], method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{proc.url}{path}", headers=who, json=body, timeout=30)


def amtool(proc: Proc, work: Path, who: dict[str, str], *args: str) -> Any:
    cfg = work / "amtool-http.yml"
    cfg.write_text(f"authorization:\n  type: Bearer\n  credentials: {who['Authorization'].split(' ', 1)[1]}\n")
    r = subprocess.run([require_binary("amtool"), f"--alertmanager.url={proc.url}", f"--http.config.file={cfg}",
                        *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if "-o" in args else r.stdout


def test_a_running_window_is_an_ordinary_silence_that_mutes_and_goes_with_its_schedule(
    server: tuple[Proc, Who, Path],
) -> None:
    proc, who, work = server
    r = call(proc, who["admin"], "POST", "/api/v1/silence_schedules", ALWAYS)
    assert r.status_code == 200, r.text
    made = r.json()["data"]
    sid = made["id"]
    assert made["createdBy"] == "admin" and made["startTime"] == "00:00" and made["endTime"] == "24:00"
    assert len(made["windows"]) == 3
    # the running window's silence exists at once, and tomorrow's (within 24 h) is pending; amtool lists them
    silences = [s for s in amtool(proc, work, who["key"], "silence", "query", "-o", "json") if sid in s["comment"]]
    by_state = {s["status"]["state"]: s for s in silences}
    assert len(silences) == 2 and set(by_state) == {"active", "pending"}
    sil, tomorrow = by_state["active"], by_state["pending"]
    assert sil["createdBy"] == "admin"
    assert (tomorrow["startsAt"][:19], tomorrow["endsAt"][:19]) == (
        made["windows"][1]["startsAt"][:19], made["windows"][1]["endsAt"][:19])
    assert sil["matchers"] == [{"name": "alertname", "value": "NightlyBackup", "isRegex": False, "isEqual": True}]
    assert sil["startsAt"] <= made["windows"][0]["endsAt"] == sil["endsAt"]
    # it mutes a matching alert, not another one
    alerts = [{"labels": {"alertname": name, "job": "backup"}} for name in ("NightlyBackup", "DiskFull")]
    assert call(proc, who["admin"], "POST", "/api/v2/alerts", alerts).status_code == 200
    got = {a["labels"]["alertname"]: a["status"] for a in call(proc, who["viewer"], "GET", "/api/v2/alerts").json()}
    assert got["NightlyBackup"]["silencedBy"] == [sil["id"]] and got["NightlyBackup"]["state"] == "suppressed"
    assert got["DiskFull"]["silencedBy"] == []
    # deleting the schedule expires its silence
    assert call(proc, who["admin"], "DELETE", f"/api/v1/silence_schedules/{sid}").status_code == 200
    for x in (sil, tomorrow):
        after = call(proc, who["viewer"], "GET", f"/api/v2/silence/{x['id']}").json()
        assert after["status"]["state"] == "expired"
    assert call(proc, who["admin"], "GET", "/api/v1/silence_schedules").json()["data"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weekdays": []}, "weekdays"),
        ({"weekdays": ["funday"]}, "weekdays[0]"),
        ({"startTime": "7:00"}, "startTime"),
        ({"endTime": "02:00"}, "endTime"),
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"matchers": []}, "matchers"),
        ({"matchers": [{"name": "x", "value": ".*", "isRegex": True, "isEqual": True}]}, "matchers"),
        ({"comment": ""}, "comment"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    server: tuple[Proc, Who, Path], change: dict[str, Any], field: str
) -> None:
    proc, who, _ = server
    before = call(proc, who["admin"], "GET", "/api/v2/silences").json()
    r = call(proc, who["admin"], "POST", "/api/v1/silence_schedules", {**SUNDAY, **change})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(field), r.text
    assert call(proc, who["admin"], "GET", "/api/v1/silence_schedules").json()["data"] == []
    assert call(proc, who["admin"], "GET", "/api/v2/silences").json() == before


def test_not_json_is_415(server: tuple[Proc, Who, Path]) -> None:
    proc, who, _ = server
    r = httpx.post(f"{proc.url}/api/v1/silence_schedules", headers={**who["admin"], "Content-Type": "text/plain"},
                   content=b"weekdays=sunday", timeout=30)
    assert r.status_code == 415, r.text


def test_organisations_are_isolated_and_viewers_only_read(server: tuple[Proc, Who, Path]) -> None:
    proc, who, _ = server
    r = call(proc, who["admin"], "POST", "/api/v1/silence_schedules", SUNDAY)
    assert r.status_code == 200, r.text
    sid = r.json()["data"]["id"]
    try:
        assert call(proc, who["beta"], "GET", "/api/v1/silence_schedules").json()["data"] == []
        assert call(proc, who["beta"], "DELETE", f"/api/v1/silence_schedules/{sid}").status_code == 404
        listed = call(proc, who["viewer"], "GET", "/api/v1/silence_schedules").json()["data"]
        assert [(s["id"], s["weekdays"], s["timeZone"]) for s in listed] == [(sid, ["sunday"], "Europe/Berlin")]
        assert call(proc, who["viewer"], "POST", "/api/v1/silence_schedules", SUNDAY).status_code == 403
        assert call(proc, who["viewer"], "DELETE", f"/api/v1/silence_schedules/{sid}").status_code == 403
        r = call(proc, who["beta"], "POST", "/api/v1/silence_schedules", {**SUNDAY, "comment": "beta's"})
        assert r.status_code == 200, r.text
        assert [s["comment"] for s in call(proc, who["beta"], "GET", "/api/v1/silence_schedules").json()["data"]] == [
            "beta's"]
        assert [s["id"] for s in call(proc, who["admin"], "GET", "/api/v1/silence_schedules").json()["data"]] == [sid]
    finally:
        call(proc, who["admin"], "DELETE", f"/api/v1/silence_schedules/{sid}")
