"""JWT access tokens and rotating refresh tokens (auth/sessions.py) on SQLite and PostgreSQL: the
claims, rotation, reuse detection revoking the family, the grace for parallel requests, logout and
sign out everywhere, and forged tokens (alg none, another key, another algorithm, expired, edited
claims) refused."""

from __future__ import annotations

import base64
import time

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clearsight.auth.directory import Directory, now_ms
from clearsight.auth.errors import Unauthenticated
from clearsight.auth.sessions import ISSUER, REFRESH_PREFIX, Sessions, csrf_token, family_of

PW = "correct horse battery staple"


def _b64(doc: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.fixture
def user(directory: Directory) -> int:
    return directory.create_user("erin", PW, "team-b", "editor").id


def test_access_token_claims_and_lifetimes(directory: Directory, user: int) -> None:
    sessions = Sessions(directory, ttl_ms=7 * 86_400_000, access_ttl_ms=300_000)
    before = now_ms()
    t = sessions.create(user, "team-b")
    header = jwt.get_unverified_header(t.access)
    assert header["alg"] == "HS256"
    c = _claims(t.access)
    assert c["iss"] == ISSUER and c["sub"] == str(user) and c["org"] == "team-b" and c["fam"] == t.family
    assert isinstance(c["exp"], int) and isinstance(c["iat"], int)
    assert 300 <= c["exp"] - c["iat"] <= 301  # 5 minutes (iat rounded down, exp up)
    assert t.refresh is not None and t.refresh.startswith(REFRESH_PREFIX)
    assert before + 7 * 86_400_000 <= t.refresh_expires_ms <= now_ms() + 7 * 86_400_000  # 7 days
    g = sessions.resolve(t.access, now_ms())
    assert g is not None and (g.username, g.org, g.role) == ("erin", "team-b", "editor")
    assert family_of(t.access) == t.family
    # the signing key is kept in the database: a second instance (another server) verifies the token
    assert Sessions(directory).resolve(t.access, now_ms()) is not None


def test_refresh_rotates_and_a_replayed_token_revokes_the_family(
    directory: Directory, user: int, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = Sessions(directory, reuse_grace_ms=0)
    t0 = sessions.create(user, "team-b")
    assert t0.refresh is not None
    t1 = sessions.refresh(t0.refresh)
    assert t1.refresh is not None and t1.refresh != t0.refresh and t1.access != t0.access
    assert t1.family == t0.family
    t2 = sessions.refresh(t1.refresh)
    assert t2.refresh is not None and sessions.resolve(t2.access, now_ms()) is not None
    time.sleep(0.01)
    # t0's refresh token was used already: replaying it ends the whole sign-in
    with pytest.raises(Unauthenticated, match="reused"):
        sessions.refresh(t0.refresh)
    assert any(
        "refresh token was presented again" in r.getMessage() and r.levelname == "WARNING"
        for r in caplog.records
    )
    for access in (t0.access, t1.access, t2.access):
        assert sessions.resolve(access, now_ms()) is None
    with pytest.raises(Unauthenticated, match="ended"):
        sessions.refresh(t2.refresh)  # the newest refresh token of the family is dead too
    # another sign-in of the same user is untouched
    other = sessions.create(user, "team-b")
    assert other.refresh is not None and sessions.refresh(other.refresh).refresh is not None


def test_parallel_reuse_within_the_grace_gets_an_access_token_only(directory: Directory, user: int) -> None:
    sessions = Sessions(directory, reuse_grace_ms=60_000)
    t0 = sessions.create(user, "team-b")
    assert t0.refresh is not None
    t1 = sessions.refresh(t0.refresh)
    again = sessions.refresh(t0.refresh)  # a second browser request that raced the first
    assert again.refresh is None and sessions.resolve(again.access, now_ms()) is not None
    assert (
        t1.refresh is not None and sessions.resolve(sessions.refresh(t1.refresh).access, now_ms()) is not None
    )


@pytest.mark.parametrize("bad", ["", "csr_", "csr_" + "A" * 43, "cs_" + "A" * 43, "x" * 300, "eyJ.a.b"])
def test_unknown_refresh_tokens(directory: Directory, user: int, bad: str) -> None:
    with pytest.raises(Unauthenticated):
        Sessions(directory).refresh(bad)


def test_expired_refresh_token(directory: Directory, user: int) -> None:
    sessions = Sessions(directory, ttl_ms=1)
    t = sessions.create(user, "team-b")
    time.sleep(0.01)
    assert t.refresh is not None
    with pytest.raises(Unauthenticated, match="expired"):
        sessions.refresh(t.refresh)


def test_logout_and_sign_out_everywhere(directory: Directory, user: int) -> None:
    sessions = Sessions(directory)
    a, b, c = (sessions.create(user, "team-b") for _ in range(3))
    sessions.end(a.access)
    assert sessions.resolve(a.access, now_ms()) is None
    assert a.refresh is not None
    with pytest.raises(Unauthenticated):
        sessions.refresh(a.refresh)
    assert c.refresh is not None
    sessions.end(c.refresh)  # logout by refresh token
    assert sessions.resolve(c.access, now_ms()) is None
    assert sessions.resolve(b.access, now_ms()) is not None
    assert sessions.end_all(user) == 1
    assert sessions.resolve(b.access, now_ms()) is None


def test_disabled_user_and_role_changes(directory: Directory, user: int) -> None:
    sessions = Sessions(directory)
    t = sessions.create(user, "team-b")
    directory.set_membership("erin", "team-b", "viewer")
    g = sessions.resolve(t.access, now_ms())
    assert g is not None and g.role == "viewer"
    directory.disable_user("erin")
    assert sessions.resolve(t.access, now_ms()) is None


def test_forged_access_tokens_are_refused(directory: Directory, user: int) -> None:
    sessions = Sessions(directory)
    t = sessions.create(user, "team-b")
    good = _claims(t.access)
    now = now_ms()
    # alg none: the same claims, no signature
    none_token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(good) + "."
    assert sessions.resolve(none_token, now) is None
    none_lib = jwt.encode(good, None, algorithm="none")  # type: ignore[arg-type]
    assert sessions.resolve(none_lib, now) is None
    # signed with another key
    assert sessions.resolve(jwt.encode(good, b"k" * 32, algorithm="HS256"), now) is None
    # another algorithm: RS256 with the attacker's own key; HS512 with a guessed key
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert sessions.resolve(jwt.encode(good, pem, algorithm="RS256"), now) is None
    assert sessions.resolve(jwt.encode(good, b"k" * 64, algorithm="HS512"), now) is None
    # a valid signature over edited claims: the payload swapped into a genuine token
    head, _, sig = t.access.split(".")
    edited = head + "." + _b64({**good, "org": "default"}) + "." + sig
    assert sessions.resolve(edited, now) is None
    # expired (5 minutes later), and a JWT of another issuer
    assert sessions.resolve(t.access, int(good["exp"]) * 1000 + 1) is None  # type: ignore[call-overload]
    other = Sessions(directory, access_ttl_ms=1)
    expired = other.create(user, "team-b").access
    time.sleep(1.1)
    assert other.resolve(expired, now_ms()) is None
    # truncated, garbage, oversized
    for bad in (
        t.access[:-5],
        "eyJ" + "a" * 20,
        "eyJ." * 3,
        t.access + "." + t.access,
        "eyJa.b." + "c" * 5000,
    ):
        assert sessions.resolve(bad, now) is None


def test_csrf_token_follows_the_family(directory: Directory, user: int) -> None:
    sessions = Sessions(directory, reuse_grace_ms=0)
    t0 = sessions.create(user, "team-b")
    assert t0.refresh is not None
    t1 = sessions.refresh(t0.refresh)
    assert csrf_token(t0.family) == csrf_token(t1.family)
    assert csrf_token(sessions.create(user, "team-b").family) != csrf_token(t0.family)
