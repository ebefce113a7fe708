"""TOTP MFA on the server's real middleware stack with real codes from pyotp: enrol and confirm,
two-step login, wrong codes (401, then 429 lockout), recovery codes, basic auth refused for MFA users,
an organisation that requires MFA (enrolment during login), disabling, and the audit entries."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from clearsight.auth.audit import AuditLog
from tests.support.auth_stack import PW, Stack, auth_stack
from tests.support.qr import decode_qr_svg


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with auth_stack(tmp_path) as s:
        yield s


def _settle() -> float:
    """Now, at least 3 s away from the next 30 s step (codes of neighbouring steps stay valid)."""
    while time.time() % 30 > 26:
        time.sleep(0.5)
    return time.time()


def _login(c: TestClient, user: str = "alice") -> dict[str, Any]:
    r = c.post("/api/v1/auth/login", json={"username": user, "password": PW})
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


def _enrol(c: TestClient, tmp: Path) -> tuple[pyotp.TOTP, list[str]]:
    """alice enrols with a bearer session; the confirm code is the previous step's (so 'now' stays unused)."""
    token = _login(c)["token"]
    h = {"Authorization": f"Bearer {token}"}
    r = c.post("/api/v1/auth/mfa/enrol", headers=h)
    assert r.status_code == 200
    secret, uri = r.json()["data"]["secret"], r.json()["data"]["otpauth_uri"]
    assert uri == pyotp.TOTP(secret).provisioning_uri(name="alice", issuer_name="Clearsight")
    svg = r.json()["data"]["qr_svg"]
    assert svg.startswith("<svg") and decode_qr_svg(svg, tmp) == uri  # the QR code scans to the URI (zbarimg)
    totp = pyotp.TOTP(secret)
    now = _settle()
    assert c.post("/api/v1/auth/mfa/confirm", json={"code": "000000" if totp.at(now - 30) != "000000" else "111111"},
                  headers=h).status_code == 400
    r = c.post("/api/v1/auth/mfa/confirm", json={"code": totp.at(now - 30)}, headers=h)
    assert r.status_code == 200
    codes = r.json()["data"]["recovery_codes"]
    st = c.get("/api/v1/auth/mfa", headers=h).json()["data"]
    assert st == {"enabled": True, "pending": False, "recovery_codes_left": 10, "required_by_org": False}
    return totp, codes


def test_two_step_login_with_real_codes(stack: Stack, tmp_path: Path) -> None:
    c = stack.client()
    totp, _ = _enrol(c, tmp_path)
    first = _login(c)
    assert first["mfa_required"] is True and "token" not in first
    assert c.post("/api/v1/auth/login/mfa", json={"mfa_token": first["mfa_token"], "code": "12345"}).status_code == 401
    now = time.time()
    r = c.post("/api/v1/auth/login/mfa", json={"mfa_token": first["mfa_token"], "code": totp.at(now)})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["username"] == "alice" and data["token"].startswith("eyJ") and data["refresh_token"].startswith("csr_") and data["csrf_token"]
    assert c.cookies.get("clearsight_session") == data["token"]
    assert c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {data['token']}"}).json()["data"]["name"] == "alice"
    # the token is used up; the same code again is refused even with a fresh challenge
    assert c.post("/api/v1/auth/login/mfa", json={"mfa_token": first["mfa_token"], "code": totp.at(now)}).status_code == 401
    again = _login(c)["mfa_token"]
    assert c.post("/api/v1/auth/login/mfa", json={"mfa_token": again, "code": totp.at(now)}).status_code == 401
    rows = AuditLog(stack.built.auth.db).query("default", action="auth.login_mfa")  # type: ignore[union-attr]
    assert [x["outcome"] for x in rows] == ["failure", "failure", "success", "failure"]
    for bad in ({}, {"mfa_token": again}, {"mfa_token": "csm_nope", "code": "123456"}):
        assert c.post("/api/v1/auth/login/mfa", json=bad).status_code in (400, 401)


def test_wrong_codes_lock_the_user_out(stack: Stack, tmp_path: Path) -> None:
    c = stack.client()
    _enrol(c, tmp_path)
    statuses = []
    for _ in range(2):
        tok = _login(c)["mfa_token"]
        for _ in range(3):
            statuses.append(c.post("/api/v1/auth/login/mfa", json={"mfa_token": tok, "code": "000001"}).status_code)
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    r = c.post("/api/v1/auth/login", json={"username": "alice", "password": PW})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_recovery_code_login_and_basic_auth_refused(stack: Stack, tmp_path: Path) -> None:
    c = stack.client()
    _, codes = _enrol(c, tmp_path)
    tok = _login(c)["mfa_token"]
    r = c.post("/api/v1/auth/login/mfa", json={"mfa_token": tok, "recovery_code": codes[0]})
    assert r.status_code == 200
    tok = _login(c)["mfa_token"]
    assert c.post("/api/v1/auth/login/mfa", json={"mfa_token": tok, "recovery_code": codes[0]}).status_code == 401
    basic = "Basic " + base64.b64encode(f"alice:{PW}".encode()).decode()
    r = c.get("/api/v1/query", params={"query": "1"}, headers={"Authorization": basic})
    assert r.status_code == 401 and "second factor" in r.json()["error"]


def test_disable_needs_a_code(stack: Stack, tmp_path: Path) -> None:
    c = stack.client()
    totp, codes = _enrol(c, tmp_path)
    tok = _login(c)["mfa_token"]
    h = {"Authorization": "Bearer " + c.post("/api/v1/auth/login/mfa", json={"mfa_token": tok, "recovery_code": codes[3]})
         .json()["data"]["token"]}
    assert c.post("/api/v1/auth/mfa/disable", json={}, headers=h).status_code == 400
    assert c.post("/api/v1/auth/mfa/disable", json={"code": "999999" if totp.now() != "999999" else "888888"},
                  headers=h).status_code == 401
    assert c.post("/api/v1/auth/mfa/disable", json={"recovery_code": codes[4]}, headers=h).status_code == 200
    assert "token" in _login(c)  # one step again
    key = stack.built.auth.keys.create("default", "k", "admin")[1]  # type: ignore[union-attr]
    assert c.post("/api/v1/auth/mfa/enrol", headers={"Authorization": f"Bearer {key}"}).status_code == 403


def test_organisation_requires_mfa_enrolment_during_login(stack: Stack) -> None:
    c = stack.client()
    bob = {"Authorization": "Bearer " + _login(c, "bob")["token"]}
    viewer = stack.built.auth.keys.create("team-b", "v", "viewer")[1]  # type: ignore[union-attr]
    assert c.put("/api/v1/admin/mfa", json={"required": True}, headers={"Authorization": f"Bearer {viewer}"}).status_code == 403
    assert c.put("/api/v1/admin/mfa", json={"required": "yes"}, headers=bob).status_code == 400
    assert c.put("/api/v1/admin/mfa", json={"required": True}, headers=bob).status_code == 200
    assert c.get("/api/v1/admin/mfa", headers=bob).json()["data"] == {"org": "team-b", "required": True}
    assert _login(c)["token"]  # alice's organisation does not require it
    first = _login(c, "bob")
    assert first["mfa_enrolment_required"] is True and "token" not in first
    r = c.post("/api/v1/auth/login/mfa/enrol", json={"mfa_token": first["mfa_token"]})
    assert r.status_code == 200
    totp = pyotp.TOTP(r.json()["data"]["secret"])
    r = c.post("/api/v1/auth/login/mfa", json={"mfa_token": first["mfa_token"], "code": totp.at(_settle())})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]["recovery_codes"]) == 10 and r.json()["data"]["org"] == "team-b"
    h = {"Authorization": "Bearer " + r.json()["data"]["token"]}
    assert c.post("/api/v1/auth/mfa/disable", json={"code": totp.now()}, headers=h).status_code == 403
    assert _login(c, "bob")["mfa_required"] is True
    # the enrolment-only token cannot be replayed for alice's second step
    assert c.post("/api/v1/auth/login/mfa/enrol", json={"mfa_token": _login(c, "bob")["mfa_token"]}).status_code == 401
