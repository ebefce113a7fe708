"""Credentials -> principal: API keys (Bearer or basic-auth password), sessions (cookie or Bearer),
basic-auth user passwords, and the anonymous principal. Shared by the HTTP middleware and the gRPC
interceptor; neither parses credentials any other way.

Verified credentials are cached for ``cache_ttl_s`` (keyed by the SHA-256 of the credential), so a
request with a known key costs a hash and a dict lookup; revoking a key or ending a session takes
effect within that TTL (``forget`` ends it at once in this process). Key last-use times are
collected in memory and written in one transaction at most every ``flush_interval_s``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from clearsight.auth.directory import Directory, LoginResult
from clearsight.auth.errors import Forbidden, InvalidInput, Unauthenticated
from clearsight.auth.keys import ApiKeys, Network
from clearsight.auth.org_networks import OrgNetworks
from clearsight.auth.principal import Principal
from clearsight.auth.sessions import Sessions
from clearsight.auth.tokens import is_api_key
from clearsight.pipeline.tenant import tenant_error

log = logging.getLogger("clearsight.auth")

MAX_CACHE = 20_000
LOOPBACK_PREFIXES = ("127.", "::1", "::ffff:127.")


def is_loopback(host: str | None) -> bool:
    return bool(host) and host.startswith(LOOPBACK_PREFIXES)  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request presented: ``kind`` is "token" (key or session) or "basic" (user + password)."""

    kind: str
    secret: str
    username: str = ""

    @property
    def cache_key(self) -> bytes:
        return hashlib.sha256(f"{self.kind}\0{self.username}\0{self.secret}".encode()).digest()


def parse_authorization(value: str) -> Credential:
    """An ``Authorization`` header value; raises Unauthenticated when it is malformed."""
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    s = scheme.lower()
    if s == "bearer" and rest and len(rest) <= 4096:
        return Credential("token", rest)
    if s == "basic" and rest and len(rest) <= 4096:
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep or not password:
            raise Unauthenticated("malformed basic credentials (expected user:password)")
        if is_api_key(password):
            return Credential("token", password)
        return Credential("basic", password, user)
    raise Unauthenticated("unsupported authorization scheme (use Bearer <API key> or basic auth)")


@dataclass(slots=True)
class Entry:
    principal: Principal | None  # None: known bad credential
    networks: tuple[Network, ...]
    expires_ms: int | None
    key_id: int | None
    valid_until: float


class Authenticator:
    def __init__(self, directory: Directory, keys: ApiKeys, sessions: Sessions, *, default_org: str,
                 anonymous: bool, anonymous_role: str, trust_tenant_header: bool, cache_ttl_s: float,
                 flush_interval_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 org_networks: OrgNetworks | None = None) -> None:
        self.directory = directory
        self.keys = keys
        self.sessions = sessions
        self.default_org = default_org
        self.anonymous_allowed = anonymous
        perms = directory.role_permissions(default_org, anonymous_role)
        if perms is None:
            raise ValueError(f"auth.anonymous_role: unknown role {anonymous_role!r}")
        self.anonymous_principal = Principal("anonymous", "anonymous", "anonymous", default_org,
                                             (anonymous_role,), perms)
        self.trust_tenant_header = trust_tenant_header
        self.cache_ttl_s = cache_ttl_s
        self.flush_interval_s = flush_interval_s
        self.org_networks = org_networks  # per-organisation IP allowlists (auth/org_networks.py)
        self.clock = clock
        self._cache: dict[bytes, Entry] = {}
        self._used: dict[int, int] = {}
        self._used_lock = threading.Lock()
        self._last_flush = clock()
        # (user id, organisation) -> True when a password alone may not authenticate (MFA: auth/totp.py)
        self.needs_second_factor: Callable[[int, str], bool] | None = None

    # -- the fast path (event loop): no I/O
    def cached(self, cred: Credential) -> Entry | None:
        e = self._cache.get(cred.cache_key)
        if e is None or e.valid_until < self.clock():
            return None
        return e

    def admit(self, entry: Entry, client_host: str | None, now_ms: int | None = None) -> Principal:
        """The principal of a cached/looked-up credential, after expiry and IP allowlist checks
        (expiry judged at ``now_ms``, default now)."""
        p = entry.principal
        if p is None:
            raise Unauthenticated("invalid credentials")
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if entry.expires_ms is not None and entry.expires_ms <= now:
            raise Unauthenticated("credentials expired")
        if entry.networks:
            try:
                ip = ipaddress.ip_address(client_host or "")
            except ValueError:
                raise Forbidden("this API key may not be used from this address") from None
            if not any(ip in n for n in entry.networks):
                raise Forbidden("this API key may not be used from this address")
        self.check_org_network(p, client_host)
        if entry.key_id is not None:
            self._used[entry.key_id] = now
        return p

    def check_org_network(self, p: Principal, client_host: str | None) -> None:
        """Forbidden when ``p``'s own organisation has an IP allowlist without ``client_host``."""
        if self.org_networks is not None and not self.org_networks.allows(p.home_org or p.org, client_host):
            raise Forbidden(f"organisation {p.home_org or p.org!r} does not accept requests from this address")

    def act_in(self, p: Principal, org_header: str | None) -> Principal:
        """The principal acting in the organisation a tenant header names, or Forbidden."""
        if not org_header or org_header == p.org:
            return p
        if p.may_cross_org or (p.anonymous and self.trust_tenant_header):
            err = tenant_error(org_header)
            if err is not None:
                raise InvalidInput(f"invalid tenant header: {err}")
            return p.in_org(org_header)
        if p.anonymous:  # legacy: the header is ignored unless trusted
            return p
        raise Forbidden("this principal may not act in another organisation (X-Scope-OrgID needs orgs:cross)")

    # -- the slow path (a worker thread): the state database
    def lookup(self, cred: Credential) -> Entry:
        """Looks a credential up in the state database and caches the outcome (bad ones too, except
        failed password logins, which count towards the lockout)."""
        now = int(time.time() * 1000)
        if self.org_networks is not None:
            self.org_networks.refresh_if_due()
        entry: Entry
        if cred.kind == "basic":
            res = self.directory.login(cred.username, cred.secret)  # raises Unauthenticated / LockedOut
            entry = self._user_entry(res)
        elif is_api_key(cred.secret):
            g = self.keys.grant(hashlib.sha256(cred.secret.encode()).hexdigest(), now)
            entry = Entry(None, (), None, None, 0.0) if g is None else Entry(
                Principal("apikey", str(g.id), g.name, g.org, (g.role,), g.permissions,
                          selector=self.directory.role_selector(g.org, g.role)),
                g.networks, g.expires_ms, g.id, 0.0)
        else:
            sg = self.sessions.resolve(cred.secret, now)
            entry = Entry(None, (), None, None, 0.0) if sg is None else Entry(
                Principal("user", str(sg.user_id), sg.username, sg.org, (sg.role,), sg.permissions,
                          selector=self.directory.role_selector(sg.org, sg.role)),
                (), sg.expires_ms, None, 0.0)
        entry.valid_until = self.clock() + self.cache_ttl_s
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        self._cache[cred.cache_key] = entry
        return entry

    def _user_entry(self, res: LoginResult) -> Entry:
        if not res.orgs:
            raise Unauthenticated("this user belongs to no organisation")
        org = self.default_org if self.default_org in res.orgs else next(iter(res.orgs))
        if self.needs_second_factor is not None and self.needs_second_factor(res.user_id, org):
            raise Unauthenticated("this user signs in with a second factor: POST /api/v1/auth/login, then use the session")
        role = res.orgs[org]
        perms = self.directory.role_permissions(org, role) or frozenset()
        selector = self.directory.role_selector(org, role)
        return Entry(Principal("user", str(res.user_id), res.username, org, (role,), perms, selector=selector), (),
                      None, None, 0.0)

    def forget(self, cred: Credential) -> None:
        self._cache.pop(cred.cache_key, None)

    def forget_all(self) -> None:
        """Drops every cached credential (after a revocation or role change through the API)."""
        self._cache.clear()

    # -- key last-use, batched
    def flush_due(self) -> bool:
        return bool(self._used) and self.clock() - self._last_flush >= self.flush_interval_s

    def flush_last_used(self) -> None:
        with self._used_lock:
            used, self._used = self._used, {}
            self._last_flush = self.clock()
        try:
            self.keys.record_last_used(used)
        except Exception:
            log.exception("recording API key last use failed")
