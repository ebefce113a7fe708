"""Sessions over HTTP on the server's real middleware stack: JWT access tokens that expire (1 s here)
and rotating refresh tokens. Cookie flags; the middleware refreshing a cookie session by itself; a
replayed refresh token revoking the whole sign-in; logout and sign out everywhere; CSRF across a
rotation; forged bearer JWTs refused."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from starlette.testclient import TestClient

from clearsight.auth.audit import AuditLog
from tests.support.auth_stack import PW, Stack, auth_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    overrides = {"auth.access_token_ttl": "1s", "auth.refresh_reuse_grace": "0s", "auth.anonymous": "off"}
    with auth_stack(tmp_path, bob_role="viewer", **overrides) as s:
        yield s


def _login(c: TestClient, user: str = "alice") -> Any:
    c.cookies.clear()  # a cookie of an earlier sign-in would be refreshed (used) by the middleware
    r = c.post("/api/v1/auth/login", json={"username": user, "password": PW})
    assert r.status_code == 200, r.text
    return r


def _set_cookies(r: Any) -> dict[str, str]:
    """name -> the whole Set-Cookie value."""
    return {v.split("=", 1)[0]: v for v in r.headers.get_list("set-cookie")}


def _cookie(r: Any, name: str) -> str:
    return _set_cookies(r)[name].split(";", 1)[0].split("=", 1)[1]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _expire() -> None:
    time.sleep(2.1)  # access tokens live 1 s here (whole seconds in the JWT's exp)


def test_login_answers_a_jwt_and_a_refresh_token_in_flagged_cookies(stack: Stack) -> None:
    for base, secure in (("http://127.0.0.1", False), ("https://127.0.0.1", True)):
        r = _login(stack.client(base))
        data = r.json()["data"]
        assert jwt.get_unverified_header(data["token"])["alg"] == "HS256"
        assert (
            data["refresh_token"].startswith("csr_") and data["refresh_expires"] > time.time() + 6.9 * 86400
        )
        cookies = _set_cookies(r)
        for name in ("clearsight_session", "clearsight_refresh", "clearsight_csrf"):
            flags = [f.strip().lower() for f in cookies[name].split(";")[1:]]
            assert "samesite=strict" in flags and "path=/" in flags, cookies[name]
            assert ("secure" in flags) is secure, cookies[name]
            assert ("httponly" in flags) is (name != "clearsight_csrf"), cookies[name]
        assert _cookie(r, "clearsight_session") == data["token"]
        assert _cookie(r, "clearsight_refresh") == data["refresh_token"]


def test_the_middleware_refreshes_an_expired_cookie_session(stack: Stack) -> None:
    c = stack.client()
    r = _login(c)
    access, refresh, csrf = (
        r.json()["data"]["token"],
        r.json()["data"]["refresh_token"],
        r.json()["data"]["csrf_token"],
    )
    cookie = f"clearsight_session={access}; clearsight_refresh={refresh}"
    c.cookies.clear()
    assert c.get("/api/v1/auth/me", headers={"Cookie": cookie}).json()["data"]["name"] == "alice"
    _expire()
    assert c.get("/api/v1/auth/me", headers=_bearer(access)).status_code == 401  # the JWT alone has expired
    r = c.get("/api/v1/auth/me", headers={"Cookie": cookie})
    assert r.status_code == 200 and r.json()["data"]["name"] == "alice", r.text
    new_access, new_refresh = _cookie(r, "clearsight_session"), _cookie(r, "clearsight_refresh")
    assert new_access != access and new_refresh != refresh
    assert _cookie(r, "clearsight_csrf") == csrf  # the CSRF token stays with the sign-in
    # only the refresh cookie left (the browser dropped the access cookie): refreshed too
    r = c.get("/api/v1/auth/me", headers={"Cookie": f"clearsight_refresh={new_refresh}"})
    assert r.status_code == 200 and r.json()["data"]["name"] == "alice"
    newest = _cookie(r, "clearsight_refresh")
    # a state-changing cookie request needs the CSRF token, which survived both rotations
    cookie = f"clearsight_session={_cookie(r, 'clearsight_session')}; clearsight_refresh={newest}"
    body = {"name": "k1", "role": "viewer"}
    assert c.post("/api/v1/admin/apikeys", json=body, headers={"Cookie": cookie}).status_code == 403
    assert (
        c.post(
            "/api/v1/admin/apikeys", json=body, headers={"Cookie": cookie, "X-CSRF-Token": csrf}
        ).status_code
        == 200
    )
    assert (
        c.post(
            "/api/v1/admin/apikeys",
            json=body,
            headers={"Cookie": f"clearsight_refresh={newest}", "X-CSRF-Token": csrf},
        ).status_code
        == 403
    )


def test_a_replayed_refresh_token_revokes_the_sign_in(stack: Stack) -> None:
    c = stack.client()
    first = _login(c).json()["data"]
    other = _login(c).json()["data"]  # a second sign-in of the same user
    c.cookies.clear()
    r = c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()["data"]
    assert c.get("/api/v1/auth/me", headers=_bearer(second["token"])).status_code == 200
    time.sleep(0.05)
    c.cookies.clear()
    r = c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})  # the thief's replay
    assert r.status_code == 401 and "reused" in r.json()["error"], r.text
    assert "data" not in r.json()
    for token in (first["token"], second["token"]):
        assert c.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 401
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert c.get("/api/v1/auth/me", headers=_bearer(other["token"])).status_code == 200  # untouched
    # the replay through the cookie path is refused the same way, and the cookies are cleared
    r = c.get("/api/v1/auth/me", headers={"Cookie": f"clearsight_refresh={second['refresh_token']}"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'{"refresh_token": 5}',
        b'{"refresh_token": ""}',
        b'{"refresh_token": "csr_nope"}',
        b'{"refresh_token": "' + b"x" * 5000 + b'"}',
    ],
)
def test_bad_refresh_requests(stack: Stack, body: bytes) -> None:
    r = stack.client().post(
        "/api/v1/auth/refresh", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code in (400, 401), r.text
    assert r.json()["status"] == "error" and "token" not in r.json()


def test_logout_and_sign_out_everywhere(stack: Stack) -> None:
    c = stack.client()
    a, b, d = (_login(c).json()["data"] for _ in range(3))
    bob = _login(c, "bob").json()["data"]
    c.cookies.clear()
    r = c.post("/api/v1/auth/logout", headers=_bearer(a["token"]))
    assert r.status_code == 200
    assert {"clearsight_session", "clearsight_refresh", "clearsight_csrf"} <= set(_set_cookies(r))  # cleared
    assert c.get("/api/v1/auth/me", headers=_bearer(a["token"])).status_code == 401
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": a["refresh_token"]}).status_code == 401
    assert c.get("/api/v1/auth/me", headers=_bearer(b["token"])).status_code == 200
    r = c.post("/api/v1/auth/logout_all", headers=_bearer(b["token"]))
    assert r.status_code == 200 and r.json()["data"]["sessions_ended"] == 2
    for s in (b, d):
        assert c.get("/api/v1/auth/me", headers=_bearer(s["token"])).status_code == 401
        assert c.post("/api/v1/auth/refresh", json={"refresh_token": s["refresh_token"]}).status_code == 401
    assert (
        c.get("/api/v1/auth/me", headers=_bearer(bob["token"])).status_code == 200
    )  # another user's: untouched
    key = stack.built.auth.keys.create("default", "k", "admin")[1]  # type: ignore[union-attr]
    assert c.post("/api/v1/auth/logout_all", headers=_bearer(key)).status_code == 403  # keys have no sign-ins
    assert stack.built.auth is not None  # the audit log records it
    entries = AuditLog(stack.built.auth.db).query("default", action="auth.logout_all")
    assert [e["outcome"] for e in entries] == ["failure", "success"]  # newest first


def _b64(doc: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()


def test_forged_bearer_jwts(stack: Stack) -> None:
    c = stack.client()
    good = _login(c, "bob").json()["data"]["token"]
    c.cookies.clear()
    claims = jwt.decode(good, options={"verify_signature": False})
    admin_claims = {**claims, "org": "default", "exp": int(time.time()) + 3600}
    forged = [
        _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(admin_claims) + ".",
        jwt.encode(admin_claims, b"guessed-key-guessed-key-guessed!", algorithm="HS256"),
        good.split(".")[0] + "." + _b64(admin_claims) + "." + good.split(".")[2],
    ]
    for token in forged:
        r = c.get("/api/v1/query", params={"query": "up"}, headers=_bearer(token))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
    _expire()
    assert c.get("/api/v1/auth/me", headers=_bearer(good)).status_code == 401  # expired
