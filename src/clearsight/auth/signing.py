"""Signed ingestion: an organisation's signing secrets and the two middlewares that check
``x-org-key`` + ``x-timestamp`` + ``x-signature`` on ingest endpoints, as an alternative to a key.

A client sends
    x-org-key: csk_...            (the signing key's public id; names the organisation)
    x-timestamp: <unix seconds>
    x-signature: sha256=<hex HMAC-SHA256(secret, "<x-timestamp>." + raw body)>
on any endpoint whose route needs a ``*:write`` permission (remote write, OTLP/HTTP, Loki push,
_bulk, events). The timestamp is inside the signed bytes: a body-only signature (AegisGuard's form)
could be replayed forever with a fresh timestamp header, so it is not accepted. A timestamp more
than ``auth.signature_window`` (5 min) from the server's clock is refused, and a signature already
seen within the window is refused as a replay (401), so each signed request is accepted once.
Retries re-sign (new timestamp) or use ``x-idempotency-key`` (auth/idempotency.py).

``SignedIngestMiddleware`` (before the auth middleware) checks the headers only: the key id (401
when unknown or revoked), the timestamp, the signature's form, no ``Authorization`` beside them;
it hands the auth middleware an ``ingest`` principal of the key's organisation. ``SignatureVerifier``
(after the body limits, so ``limits.max_body_bytes`` and the in-flight cap apply unchanged) computes
the HMAC over the body the limits middleware read and answers 401 before the route runs when it
does not match: nothing of a rejected request is written.

Secrets: 32 random bytes, shown once at creation. The server must hold the secret to compute the
HMAC, so it is stored as is in the state database (like the TOTP secrets); the database is the
thing to protect. Rotation: create a new secret, move clients, revoke the old one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.auth.directory import now_ms
from clearsight.auth.errors import AuthError, Conflict, InvalidInput, NotFound, Unauthenticated
from clearsight.auth.middleware import PRESET_PRINCIPAL, deny
from clearsight.auth.models import Organisation, SigningSecret
from clearsight.auth.permissions import BUILTIN_ROLES
from clearsight.auth.principal import Principal
from clearsight.auth.replay import replay_body
from clearsight.auth.route_permissions import requirement
from clearsight.auth.state import StateDb

KEY_ID_PREFIX = "csk_"
SECRET_PREFIX = "cssig_"
PENDING = "clearsight.signature"  # scope key: what SignatureVerifier must check
MAX_SEEN = 200_000
REPLAYED = "clearsight.signature_replayed"
REPLAYED_MESSAGE = "replayed signature: sign each request anew (new x-timestamp)"
IDEMPOTENCY_HEADER = b"x-idempotency-key"
CACHE_TTL_S = 10.0


@dataclass(frozen=True)
class SecretView:
    id: int
    org: str
    name: str
    key_id: str
    created_ms: int
    revoked_ms: int | None


@dataclass(frozen=True)
class _Grant:
    org: str
    secret: bytes
    valid_until: float


class SigningSecrets:
    def __init__(self, db: StateDb) -> None:
        self.db = db

    def create(self, org: str, name: str) -> tuple[SecretView, str]:
        if not name or len(name) > 128:
            raise InvalidInput("name must be 1 to 128 characters")
        key_id = KEY_ID_PREFIX + secrets.token_hex(10)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        t = now_ms()
        try:
            with self.db.session() as s, s.begin():
                o = s.scalar(select(Organisation).where(Organisation.name == org))
                if o is None:
                    raise NotFound(f"organisation {org!r} not found")
                row = SigningSecret(org_id=o.id, name=name, key_id=key_id, secret=secret, created_ms=t)
                s.add(row)
                s.flush()
                return SecretView(row.id, org, name, key_id, t, None), secret
        except IntegrityError:
            raise Conflict("key id collision: retry") from None

    def list(self, org: str) -> list[SecretView]:
        with self.db.session() as s:
            rows = s.execute(select(SigningSecret).join(Organisation, Organisation.id == SigningSecret.org_id)
                             .where(Organisation.name == org).order_by(SigningSecret.id))
            return [SecretView(r.id, org, r.name, r.key_id, r.created_ms, r.revoked_ms) for (r,) in rows]

    def revoke(self, org: str, secret_id: int) -> SecretView:
        with self.db.session() as s, s.begin():
            row = s.scalar(select(SigningSecret).join(Organisation, Organisation.id == SigningSecret.org_id)
                           .where(Organisation.name == org, SigningSecret.id == secret_id))
            if row is None:
                raise NotFound(f"signing secret {secret_id} not found")
            if row.revoked_ms is None:
                s.execute(update(SigningSecret).where(SigningSecret.id == secret_id).values(revoked_ms=now_ms()))
                row.revoked_ms = now_ms()
            return SecretView(row.id, org, row.name, row.key_id, row.created_ms, row.revoked_ms)

    def lookup(self, key_id: str) -> tuple[str, bytes] | None:
        """(organisation, secret) of a live key id."""
        with self.db.session() as s:
            row = s.execute(select(Organisation.name, SigningSecret.secret, SigningSecret.revoked_ms)
                            .join(Organisation, Organisation.id == SigningSecret.org_id)
                            .where(SigningSecret.key_id == key_id)).first()
        if row is None or row.revoked_ms is not None:
            return None
        return row.name, row.secret.encode()


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """What a client puts into ``x-signature``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Verifier:
    """Key-id cache, timestamp window and the replay memory, shared by both middlewares."""

    def __init__(self, secrets_: SigningSecrets, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.secrets = secrets_
        self.window_s = window_s
        self.clock = clock
        self._cache: dict[str, _Grant | None] = {}
        self._cache_until: dict[str, float] = {}
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self.ingest_permissions = BUILTIN_ROLES["ingest"]

    def forget(self) -> None:
        self._cache.clear()
        self._cache_until.clear()

    def grant(self, key_id: str) -> _Grant | None:
        if self._cache_until.get(key_id, 0.0) > time.monotonic():
            return self._cache.get(key_id)
        found = self.secrets.lookup(key_id)
        g = None if found is None else _Grant(found[0], found[1], 0.0)
        if len(self._cache) > 10_000:
            self.forget()
        self._cache[key_id] = g
        self._cache_until[key_id] = time.monotonic() + CACHE_TTL_S
        return g

    def cached(self, key_id: str) -> tuple[bool, _Grant | None]:
        if self._cache_until.get(key_id, 0.0) > time.monotonic():
            return True, self._cache.get(key_id)
        return False, None

    def check_time(self, ts: str) -> None:
        try:
            t = float(ts)
        except ValueError:
            raise Unauthenticated("x-timestamp must be unix seconds") from None
        if not abs(self.clock() - t) <= self.window_s:
            raise Unauthenticated(f"x-timestamp is outside the replay window of {self.window_s:g}s")

    def first_use(self, sig: bytes) -> bool:
        """True the first time a signature is seen within the window (then remembered)."""
        now = self.clock()
        with self._lock:
            while self._seen:
                t = next(iter(self._seen.values()))
                if t > now - 2 * self.window_s and len(self._seen) < MAX_SEEN:
                    break
                self._seen.popitem(last=False)
            if sig in self._seen:
                return False
            self._seen[sig] = now
            return True


class SignedIngestMiddleware:
    """Before the auth middleware: signed requests get an ``ingest`` principal of the key's organisation."""

    def __init__(self, app: ASGIApp, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key_id = ts = sig = None
        authz = False
        for name, value in scope["headers"]:
            if name == b"x-org-key":
                key_id = value.decode("latin-1").strip()
            elif name == b"x-timestamp":
                ts = value.decode("latin-1").strip()
            elif name == b"x-signature":
                sig = value.strip()
            elif name == b"authorization":
                authz = True
        if key_id is None:
            await self.app(scope, receive, send)
            return
        try:
            principal, secret = await self._admit(scope, key_id, ts, sig, authz)
        except AuthError as e:
            await deny(send, e)
            return
        scope[PRESET_PRINCIPAL] = principal
        scope[PENDING] = (secret, ts, sig)
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, key_id: str, ts: str | None, sig: bytes | None,
                     authz: bool) -> tuple[Principal, bytes]:
        if authz:
            raise InvalidInput("send either Authorization or x-org-key/x-signature, not both")
        if not requirement(scope["method"], scope["path"]).endswith(":write"):
            raise InvalidInput("x-org-key signatures are accepted on ingest endpoints only")
        if ts is None or sig is None:
            raise Unauthenticated("signed requests need x-org-key, x-timestamp and x-signature")
        if not sig.startswith(b"sha256=") or len(sig) != 71:
            raise Unauthenticated("x-signature must be sha256=<64 hex digits>")
        if not key_id.startswith(KEY_ID_PREFIX) or len(key_id) > 64:
            raise Unauthenticated("unknown x-org-key")
        self.verifier.check_time(ts)
        hit, g = self.verifier.cached(key_id)
        if not hit:
            g = await asyncio.get_running_loop().run_in_executor(None, self.verifier.grant, key_id)
        if g is None:
            raise Unauthenticated("unknown or revoked x-org-key")
        p = Principal("apikey", key_id, f"signed:{key_id}", g.org, ("ingest",), self.verifier.ingest_permissions)
        return p, g.secret


class SignatureVerifier:
    """After the body limits: the HMAC of the body read, before the route runs."""

    def __init__(self, app: ASGIApp, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pending = scope.get(PENDING)
        if pending is None:
            await self.app(scope, receive, send)
            return
        secret, ts, sig = pending
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # the client went away
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        if not hmac.compare_digest(signature(secret, ts, body).encode(), sig):
            await deny(send, Unauthenticated("x-signature does not match the body"))
            return
        if not self.verifier.first_use(sig):
            if not any(n == IDEMPOTENCY_HEADER for n, _ in scope["headers"]):
                await deny(send, Unauthenticated(REPLAYED_MESSAGE))
                return
            scope[REPLAYED] = True  # auth/idempotency.py acknowledges a stored key, refuses otherwise
        await self.app(scope, replay_body(body, receive), send)
