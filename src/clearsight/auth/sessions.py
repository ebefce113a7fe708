"""Login sessions: a short-lived JWT access token and a rotating refresh token.

- The **access token** is a JWT (HS256, 5 minutes by default: ``auth.access_token_ttl``) signed with a
  random key kept in the state database (``server_secrets``, made at first start, shared by every
  server on the same database). Claims: ``iss`` "clearsight", ``sub`` (user id), ``org``, ``fam``
  (the refresh family), ``iat``, ``exp``, ``jti``. Only HS256 with that key verifies: ``alg: none``,
  another algorithm or another key are refused. Sent as cookie ``clearsight_session`` or
  ``Authorization: Bearer <jwt>``.
- The **refresh token** (``csr_`` + 32 random bytes, only its SHA-256 is stored) lives 7 days
  (``auth.session_ttl``) and is used once: ``refresh`` answers a new access token and a new refresh
  token of the same **family** (one sign-in). Presenting a refresh token that was already used
  (after ``auth.refresh_reuse_grace``, which covers a browser's parallel requests) is taken as theft:
  the whole family is revoked, and every access token of it stops working at once (their ``fam``
  is checked against the database when a token is first seen, then cached for ``auth.key_cache_ttl``).
- ``end`` (logout) revokes the family of an access or refresh token; ``end_all`` (sign out
  everywhere) every family of a user.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

import jwt
from sqlalchemy import delete, exists, select, update

from clearsight.auth.directory import Directory, now_ms
from clearsight.auth.errors import NotFound, Unauthenticated
from clearsight.auth.models import Membership, Organisation, RefreshFamily, RefreshToken, ServerSecret, User
from clearsight.auth.tokens import token_hash

log = logging.getLogger("clearsight.auth")

COOKIE = "clearsight_session"  # the access token (JWT)
REFRESH_COOKIE = "clearsight_refresh"
CSRF_COOKIE = "clearsight_csrf"  # readable by the UI's scripts (auth/csrf.py)
REFRESH_PREFIX = "csr_"
ISSUER = "clearsight"
ALGORITHM = "HS256"
ACCESS_TTL_MS = 5 * 60_000
REFRESH_TTL_MS = 7 * 86_400_000
MAX_JWT_LENGTH = 4096
_JWT_SECRET = "session_jwt_hs256"


@dataclass(frozen=True)
class SessionGrant:
    user_id: int
    username: str
    org: str
    role: str
    permissions: frozenset[str]
    expires_ms: int


@dataclass(frozen=True)
class SessionTokens:
    """What a sign-in or a refresh hands out. ``refresh`` is None for a reuse within the grace
    period (the client already holds the successor)."""

    access: str
    access_expires_ms: int
    refresh: str | None
    refresh_expires_ms: int
    family: str


def csrf_token(family: str) -> str:
    """The CSRF token of a sign-in (a hash of its refresh family id, which only the HttpOnly access
    cookie carries: unguessable without it, and stable while the access token rotates)."""
    return hashlib.sha256(b"clearsight-csrf\0" + family.encode()).hexdigest()[:40]


def looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2 and len(token) <= MAX_JWT_LENGTH


def family_of(token: str) -> str | None:
    """The ``fam`` claim of an access token, unverified (for the CSRF token: auth/csrf.py)."""
    if not looks_like_jwt(token):
        return None
    try:
        fam = jwt.decode(token, options={"verify_signature": False}).get("fam")
    except jwt.PyJWTError:
        return None
    return fam if isinstance(fam, str) else None


class Sessions:
    def __init__(self, directory: Directory, ttl_ms: int = REFRESH_TTL_MS, *, access_ttl_ms: int = ACCESS_TTL_MS,
                 reuse_grace_ms: int = 10_000) -> None:
        self.directory = directory
        self.db = directory.db
        self.ttl_ms = ttl_ms  # refresh token lifetime (cookies live as long)
        self.access_ttl_ms = access_ttl_ms
        self.reuse_grace_ms = reuse_grace_ms
        self._key = self._signing_key()

    def _signing_key(self) -> bytes:
        with self.db.session() as s, s.begin():
            row = s.get(ServerSecret, _JWT_SECRET)
            if row is None:
                row = ServerSecret(name=_JWT_SECRET, value=secrets.token_hex(32), created_ms=now_ms())
                s.add(row)
        with self.db.session() as s:  # another server may have written it first: read what won
            value = s.get(ServerSecret, _JWT_SECRET)
            assert value is not None
            return bytes.fromhex(value.value)

    # -- tokens
    def _access(self, user_id: int, org: str, family: str, t: int) -> tuple[str, int]:
        exp_s = -(-(t + self.access_ttl_ms) // 1000)  # whole seconds, rounded up: at least the TTL
        claims = {"iss": ISSUER, "sub": str(user_id), "org": org, "fam": family, "iat": t // 1000,
                  "exp": exp_s, "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), exp_s * 1000

    def _new_refresh(self, family: str, t: int) -> tuple[RefreshToken, str]:
        token = REFRESH_PREFIX + secrets.token_urlsafe(32)
        return RefreshToken(token_hash=token_hash(token), family_id=family, created_ms=t,
                            expires_ms=t + self.ttl_ms), token

    def create(self, user_id: int, org: str) -> SessionTokens:
        """A new sign-in of ``user_id`` acting in ``org``."""
        t = now_ms()
        family = secrets.token_hex(16)
        with self.db.session() as s, s.begin():
            o = s.scalar(select(Organisation).where(Organisation.name == org))
            if o is None:
                raise NotFound(f"organisation {org!r} not found")
            # housekeeping: expired refresh tokens, then families with none left
            s.execute(delete(RefreshToken).where(RefreshToken.expires_ms <= t))
            s.execute(delete(RefreshFamily).where(~exists().where(RefreshToken.family_id == RefreshFamily.id)))
            s.add(RefreshFamily(id=family, user_id=user_id, org_id=o.id, created_ms=t))
            s.flush()
            row, refresh = self._new_refresh(family, t)
            s.add(row)
        access, access_exp = self._access(user_id, org, family, t)
        return SessionTokens(access, access_exp, refresh, t + self.ttl_ms, family)

    def refresh(self, refresh_token: str) -> SessionTokens:
        """Rotates a refresh token. Unauthenticated when it is unknown, expired or revoked; a reuse
        after the grace period revokes the family first."""
        if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > 256:
            raise Unauthenticated("invalid refresh token")
        t = now_ms()
        with self.db.session() as s, s.begin():
            found = s.execute(
                select(RefreshToken, RefreshFamily, Organisation.name)
                .join(RefreshFamily, RefreshFamily.id == RefreshToken.family_id)
                .join(Organisation, Organisation.id == RefreshFamily.org_id)
                .where(RefreshToken.token_hash == token_hash(refresh_token))).first()
            if found is None:
                raise Unauthenticated("invalid refresh token")
            tok, fam, org = found
            if fam.revoked_ms is not None:
                raise Unauthenticated("this session was ended: sign in again")
            if tok.expires_ms <= t:
                raise Unauthenticated("refresh token expired: sign in again")
            if tok.used_ms is not None:
                if t - tok.used_ms > self.reuse_grace_ms:
                    fam.revoked_ms = t
                    reused = True
                else:  # a parallel request of the same client: a new access token, no new refresh token
                    access, access_exp = self._access(fam.user_id, org, fam.id, t)
                    return SessionTokens(access, access_exp, None, tok.expires_ms, fam.id)
            else:
                reused = False
                tok.used_ms = t
                row, new_refresh = self._new_refresh(fam.id, t)
                s.add(row)
            user_id, family = fam.user_id, fam.id
        if reused:
            log.warning("a used refresh token was presented again: sign-in %s of user %d revoked (stolen token?)",
                        family[:8], user_id)
            raise Unauthenticated("refresh token reused: every session of this sign-in was ended")
        access, access_exp = self._access(user_id, org, family, t)
        return SessionTokens(access, access_exp, new_refresh, t + self.ttl_ms, family)

    def _claims(self, token: str, *, verify_exp: bool = True) -> dict[str, object] | None:
        if not looks_like_jwt(token):
            return None
        try:
            claims: dict[str, object] = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "org", "fam"], "verify_exp": verify_exp})
        except jwt.PyJWTError:
            return None
        return claims

    def resolve(self, token: str, now: int) -> SessionGrant | None:
        """The grant of a valid, unexpired access token whose family is live, else None."""
        claims = self._claims(token, verify_exp=False)
        if claims is None:
            return None
        exp = claims["exp"]
        if not isinstance(exp, int) or exp * 1000 <= now:
            return None
        with self.db.session() as s:
            row = s.execute(
                select(RefreshFamily, User, Organisation.name, Membership.role)
                .join(User, User.id == RefreshFamily.user_id)
                .join(Organisation, Organisation.id == RefreshFamily.org_id)
                .join(Membership, (Membership.user_id == RefreshFamily.user_id)
                      & (Membership.org_id == RefreshFamily.org_id))
                .where(RefreshFamily.id == claims["fam"])).first()
        if row is None:
            return None
        fam, user, org, role = row
        if fam.revoked_ms is not None or user.disabled or str(user.id) != claims["sub"] or org != claims["org"]:
            return None
        perms = self.directory.role_permissions(org, role)
        if perms is None:
            return None
        return SessionGrant(user.id, user.username, org, role, perms, exp * 1000)

    # -- ending sessions
    def end(self, token: str) -> None:
        """Logout: revokes the family of an access token (expired ones too) or of a refresh token."""
        family: object = None
        if token.startswith(REFRESH_PREFIX):
            with self.db.session() as s:
                family = s.scalar(select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash(token)))
        else:
            claims = self._claims(token, verify_exp=False)
            family = claims.get("fam") if claims else None
        if isinstance(family, str):
            with self.db.session() as s, s.begin():
                s.execute(update(RefreshFamily).where(RefreshFamily.id == family, RefreshFamily.revoked_ms.is_(None))
                          .values(revoked_ms=now_ms()))

    def end_all(self, user_id: int) -> int:
        """Sign out everywhere: revokes every live family of ``user_id``; answers how many."""
        with self.db.session() as s, s.begin():
            res = s.execute(update(RefreshFamily)
                            .where(RefreshFamily.user_id == user_id, RefreshFamily.revoked_ms.is_(None))
                            .values(revoked_ms=now_ms()))
        return int(res.rowcount)  # type: ignore[attr-defined]
