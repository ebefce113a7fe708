"""Login sessions: an opaque random token (cookie ``clearsight_session`` or ``Bearer css_...``) whose
SHA-256 is stored with the user, organisation and expiry.

The interface a later JWT access/refresh implementation replaces: ``create(user_id, org) -> token``,
``resolve(token) -> SessionGrant | None``, ``end(token)``, ``end_all(user_id)``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from clearsight.auth.directory import Directory, now_ms
from clearsight.auth.errors import NotFound
from clearsight.auth.models import Membership, Organisation, Session, User
from clearsight.auth.tokens import SESSION_PREFIX, new_session_token, token_hash

COOKIE = "clearsight_session"


@dataclass(frozen=True)
class SessionGrant:
    user_id: int
    username: str
    org: str
    role: str
    permissions: frozenset[str]
    expires_ms: int


class Sessions:
    def __init__(self, directory: Directory, ttl_ms: int) -> None:
        self.directory = directory
        self.db = directory.db
        self.ttl_ms = ttl_ms

    def create(self, user_id: int, org: str) -> tuple[str, int]:
        """A new session of ``user_id`` acting in ``org``: ``(token, expires_ms)``."""
        token = new_session_token()
        t = now_ms()
        with self.db.session() as s, s.begin():
            o = s.scalar(select(Organisation).where(Organisation.name == org))
            if o is None:
                raise NotFound(f"organisation {org!r} not found")
            s.execute(delete(Session).where(Session.expires_ms <= t))  # housekeeping
            s.add(Session(token_hash=token_hash(token), user_id=user_id, org_id=o.id, created_ms=t,
                          expires_ms=t + self.ttl_ms))
        return token, t + self.ttl_ms

    def resolve(self, token: str, now: int) -> SessionGrant | None:
        if not token.startswith(SESSION_PREFIX) or len(token) > 256:
            return None
        with self.db.session() as s:
            row = s.execute(
                select(Session, User, Organisation.name, Membership.role)
                .join(User, User.id == Session.user_id)
                .join(Organisation, Organisation.id == Session.org_id)
                .join(Membership, (Membership.user_id == Session.user_id) & (Membership.org_id == Session.org_id))
                .where(Session.token_hash == token_hash(token))).first()
        if row is None:
            return None
        sess, user, org, role = row
        if sess.expires_ms <= now or user.disabled:
            return None
        perms = self.directory.role_permissions(org, role)
        if perms is None:
            return None
        return SessionGrant(user.id, user.username, org, role, perms, sess.expires_ms)

    def end(self, token: str) -> None:
        with self.db.session() as s, s.begin():
            s.execute(delete(Session).where(Session.token_hash == token_hash(token)))

    def end_all(self, user_id: int) -> None:
        with self.db.session() as s, s.begin():
            s.execute(delete(Session).where(Session.user_id == user_id))
