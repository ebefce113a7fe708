"""Single sign-on end to end against a real, certified OpenID provider (npm oidc-provider, started
here on a free port: tests/peers/oidc/provider.mjs), driven through its login and consent pages with
plain HTTP form posts: authorization code + PKCE, state, nonce, the ID token checked against the
provider's JWKS, groups mapped to roles, users made just in time, then a Clearsight session.
Attacks: a state from another browser, a replayed callback, a wrong PKCE verifier, a wrong nonce,
forged ID tokens (alg none, the attacker's own key under the provider's kid), an open redirect."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from clearsight.auth.audit import AuditLog
from clearsight.auth.errors import Unauthenticated
from clearsight.auth.oidc import Pending
from tests.support.auth_stack import Stack, auth_stack
from tests.support.peers import Proc, free_port, start_oidc_provider

BASE = f"http://127.0.0.1:{free_port()}"  # what the test client calls this server (never bound)
CALLBACK = BASE + "/api/v1/auth/sso/test/callback"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_oidc_provider(tmp_path_factory.mktemp("oidc"), CALLBACK)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def stack(tmp_path: Path, idp: Proc) -> Iterator[Stack]:
    providers = {
        "test": {
            "issuer": idp.url,
            "client_id": "clearsight",
            "client_secret": "clearsight-test-secret",
            "display_name": "Test IdP",
            "scopes": ["openid", "email", "groups"],
            "roles": {"sre": "admin", "payments": "viewer"},
            "redirect_uri": CALLBACK,
        }
    }
    with auth_stack(tmp_path, **{"auth.oidc_providers": providers, "auth.anonymous": "off"}) as s:
        yield s


def _client(stack: Stack) -> TestClient:
    return stack.client(BASE)


def _idp_login(idp_url: str, authorize_url: str, user: str) -> str:
    """Signs ``user`` in on the provider's own pages (login form, then consent); the redirect back."""
    assert authorize_url.startswith(idp_url + "/auth?")
    with httpx.Client(base_url=idp_url, follow_redirects=False, timeout=30) as browser:
        r = browser.get(authorize_url)
        for _ in range(12):
            if r.status_code in (302, 303):
                loc = r.headers["location"]
                if loc.startswith(BASE):
                    return loc
                r = browser.get(loc)
                continue
            assert r.status_code == 200, r.text[:500]
            forms = re.findall(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', r.text, re.S)
            assert forms, r.text[:500]
            action, body = forms[0]
            data = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', body))
            if 'name="login"' in body:
                data.update(login=user, password="any password: the dev login page")
            r = browser.post(action, data=data)
    raise AssertionError("the provider never redirected back")


def _start(c: TestClient, return_to: str | None = None) -> tuple[str, str]:
    params = {"return_to": return_to} if return_to else {}
    r = c.get("/api/v1/auth/sso/test/login", params=params, follow_redirects=False)
    assert r.status_code == 302, r.text
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["response_type"] == ["code"] and q["code_challenge_method"] == ["S256"]
    assert len(q["code_challenge"][0]) == 43 and len(q["state"][0]) >= 32 and len(q["nonce"][0]) >= 32
    cookie = r.headers["set-cookie"]
    assert "clearsight_sso=" + q["state"][0] in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    return r.headers["location"], q["state"][0]


def _callback(c: TestClient, redirect: str) -> Any:
    return c.get(redirect[len(BASE) :], follow_redirects=False)


def _sso(stack: Stack, idp: Proc, user: str, return_to: str | None = None) -> tuple[TestClient, Any]:
    c = _client(stack)
    url, _ = _start(c, return_to)
    return c, _callback(c, _idp_login(idp.url, url, user))


def test_providers_are_listed_for_the_sign_in_page(stack: Stack) -> None:
    r = _client(stack).get("/api/v1/auth/sso/providers")
    assert r.status_code == 200
    assert r.json()["data"] == [
        {"name": "test", "display_name": "Test IdP", "login_url": "/api/v1/auth/sso/test/login"}
    ]


def test_sign_in_maps_groups_to_roles_and_makes_users_just_in_time(stack: Stack, idp: Proc) -> None:
    c, r = _sso(stack, idp, "alice", return_to="/ui/explore?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/ui/explore?x=1", r.text
    cookies = {v.split("=", 1)[0]: v for v in r.headers.get_list("set-cookie")}
    assert "HttpOnly" in cookies["clearsight_session"] and "HttpOnly" in cookies["clearsight_refresh"]
    me = c.get("/api/v1/auth/me").json()["data"]  # the session cookies the callback set
    assert (me["kind"], me["name"], me["org"], me["roles"]) == (
        "user",
        "alice@example.test",
        "default",
        ["admin"],
    )
    assert stack.built.auth is not None
    members = {m.username: m.role for m in stack.built.auth.directory.list_members("default")}
    assert members["alice@example.test"] == "admin"
    # bob is only in payments: viewer; a second sign-in of alice is the same user
    c2, r2 = _sso(stack, idp, "bob")
    assert r2.status_code == 303 and r2.headers["location"] == "/ui/"
    assert c2.get("/api/v1/auth/me").json()["data"]["roles"] == ["viewer"]
    assert c2.post("/api/v1/admin/apikeys", json={"name": "x", "role": "viewer"}).status_code == 403
    c3, r3 = _sso(stack, idp, "alice")
    assert r3.status_code == 303
    after = [
        m for m in stack.built.auth.directory.list_members("default") if m.username == "alice@example.test"
    ]
    assert len(after) == 1 and str(after[0].id) == c3.get("/api/v1/auth/me").json()["data"]["id"] == me["id"]
    # the SSO user has no password: password login and basic auth fail
    assert (
        c3.post(
            "/api/v1/auth/login", json={"username": "alice@example.test", "password": "x" * 12}
        ).status_code
        == 401
    )
    entries = AuditLog(stack.built.auth.db).query("default", action="auth.sso_login")
    assert [e["outcome"] for e in entries] == ["success"] * 3


def test_a_user_without_a_mapped_group_is_refused(stack: Stack, idp: Proc) -> None:
    _, r = _sso(stack, idp, "eve")
    assert r.status_code == 403 and "no role" in r.json()["error"]
    assert stack.built.auth is not None
    assert "eve@example.test" not in {m.username for m in stack.built.auth.directory.list_members("default")}
    assert not [v for v in r.headers.get_list("set-cookie") if v.startswith("clearsight_session=")]


def test_a_local_user_of_the_same_name_is_not_taken_over(stack: Stack, idp: Proc) -> None:
    assert stack.built.auth is not None
    stack.built.auth.directory.create_user(
        "alice@example.test", "correct horse battery staple", "default", "viewer"
    )
    _, r = _sso(stack, idp, "alice")
    assert r.status_code == 403 and "another account" in r.json()["error"]


def test_state_must_come_from_this_browser_and_is_used_once(stack: Stack, idp: Proc) -> None:
    c = _client(stack)
    url, state = _start(c)
    redirect = _idp_login(idp.url, url, "alice")
    thief = _client(stack)  # another browser: no clearsight_sso cookie (login CSRF / code injection)
    r = _callback(thief, redirect)
    assert r.status_code == 401 and "state" in r.json()["error"]
    r = _callback(c, redirect)
    assert r.status_code == 303
    c.cookies.set("clearsight_sso", state, path="/api/v1/auth/sso/")
    r = _callback(c, redirect)  # replayed
    assert r.status_code == 401 and "state" in r.json()["error"]
    for bad in (
        "",
        "?state=" + state,
        "?code=abc",
        "?code=abc&state=" + "s" * 300,
        "?error=access_denied&state=x",
    ):
        r = c.get("/api/v1/auth/sso/test/callback" + bad, follow_redirects=False)
        assert r.status_code in (400, 401), (bad, r.text)
    assert c.get("/api/v1/auth/sso/nope/login", follow_redirects=False).status_code == 400


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil", "ui/x", "/x\r\nSet-Cookie: a=b"]
)
def test_no_open_redirect(stack: Stack, target: str) -> None:
    r = _client(stack).get(
        "/api/v1/auth/sso/test/login", params={"return_to": target}, follow_redirects=False
    )
    assert r.status_code == 400 and "location" not in r.headers


def _code(stack: Stack, idp: Proc) -> tuple[Pending, str]:
    """A real authorization code and the pending login it belongs to."""
    assert stack.built.auth is not None
    client = stack.built.auth.oidc
    url, state = client.start("test", CALLBACK, "/ui/")
    pend = client.take(state)
    code = parse_qs(urlsplit(_idp_login(idp.url, url, "alice")).query)["code"][0]
    return pend, code


def test_pkce_verifier_and_nonce_are_checked(stack: Stack, idp: Proc) -> None:
    assert stack.built.auth is not None
    client = stack.built.auth.oidc
    pend, code = _code(stack, idp)
    wrong_verifier = Pending(
        pend.provider, pend.nonce, "x" * 64, pend.redirect_uri, pend.return_to, pend.created
    )
    with pytest.raises(Unauthenticated, match="refused the code"):
        client.finish(wrong_verifier, code)
    pend, code = _code(stack, idp)
    wrong_nonce = Pending(
        pend.provider, "another-nonce", pend.verifier, pend.redirect_uri, pend.return_to, pend.created
    )
    with pytest.raises(Unauthenticated, match="nonce"):
        client.finish(wrong_nonce, code)
    pend, code = _code(stack, idp)
    assert client.finish(pend, code).username == "alice@example.test"


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()


def test_forged_id_tokens_are_refused(stack: Stack, idp: Proc) -> None:
    assert stack.built.auth is not None
    client = stack.built.auth.oidc
    p = client.provider("test")
    kid = httpx.get(idp.url + "/jwks").json()["keys"][0]["kid"]
    claims = {
        "iss": idp.url,
        "sub": "alice",
        "aud": "clearsight",
        "exp": 4_000_000_000,
        "iat": 1_700_000_000,
        "nonce": "n",
        "email": "alice@example.test",
        "groups": ["sre"],
    }
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = [
        _b64({"alg": "none", "kid": kid}) + "." + _b64(claims) + ".",
        jwt.encode(
            claims, attacker, algorithm="RS256", headers={"kid": kid}
        ),  # the attacker's key, the IdP's kid
        jwt.encode(claims, b"clearsight-test-secret-padded-to-32b", algorithm="HS256", headers={"kid": kid}),
        "not.a.jwt",
    ]
    for token in forged:
        with pytest.raises(Unauthenticated, match="invalid ID token"):
            client.validate_id_token(p, token, "n")
