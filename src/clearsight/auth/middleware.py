"""The one HTTP seam: ``AuthMiddleware`` (pure ASGI, every HTTP listener) resolves the principal once
per request, enforces the route's requirement (route_permissions.py) and puts the principal into
``scope["state"]["principal"]``. Handlers read it (``tenant_of``, ``request.state.principal``);
none parses credentials.

- no credentials: the anonymous principal when ``auth.anonymous`` is ``loopback``, the peer is a
  loopback address and no proxy header (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) is
  present; otherwise 401 with ``WWW-Authenticate: Bearer``;
- wrong, expired, revoked or malformed credentials: always 401 (never the anonymous principal);
- a cookie session whose access token has expired (or whose access cookie is gone) but whose
  refresh cookie is valid is refreshed here (auth/sessions.py): the request goes on as that user and
  its response sets the new cookies, so the browser UI needs no refresh logic of its own;
- a principal lacking the route's permission, or naming another organisation in the tenant header
  without ``orgs:cross``: 403;
- a principal whose role is narrowed by label matchers: its reads are rewritten to see only what
  matches (auth/label_scope.py), and reads that cannot be narrowed are 403.

Refusals use Prometheus' JSON error envelope; the request body is never read.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.auth.errors import AuthError, Forbidden, LockedOut, Unauthenticated
from clearsight.auth.label_scope import narrow_request
from clearsight.auth.principal import SCOPE_KEY, Principal
from clearsight.auth.resolver import Authenticator, Credential, Entry, is_loopback, parse_authorization
from clearsight.auth.route_permissions import AUTHENTICATED, PUBLIC, requirement
from clearsight.auth.sessions import COOKIE, CSRF_COOKIE, REFRESH_COOKIE, SessionTokens, csrf_token
from clearsight.http_answer import Answer, send_answer

_PROXY_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})
_COOKIE_PREFIX = COOKIE + "="
PRESET_PRINCIPAL = "clearsight.principal"  # scope key: a principal resolved before this middleware
CREDENTIAL_KEY = "credential"  # scope["state"]: the Credential presented (logout ends its session)
_SET_COOKIES = "clearsight.set_cookies"  # scope key: Set-Cookie values of a session refreshed here


def denial(err: AuthError) -> Answer:
    """The refusal of a request whose principal could not be resolved or lacks a permission."""
    body = orjson.dumps({"status": "error", "errorType": err.error_type, "error": err.message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="clearsight"'))
    if isinstance(err, LockedOut):
        headers.append((b"retry-after", str(max(1, int(err.retry_after_s + 0.999))).encode()))
    return Answer(err.status, headers, body)


async def deny(send: Send, err: AuthError) -> None:
    await send_answer(send, denial(err))


@dataclass(slots=True)
class Presented:
    """What a request presented, read from its headers without I/O (``AuthMiddleware.presented``)."""

    cred: Credential | None  # the Authorization header's, or the session cookie's access token
    refresh: str | None  # the refresh cookie, when the request came with cookies
    refresh_first: bool  # cookies with a refresh token but no access token: refreshed before anything
    org: bytes | None  # the tenant header
    proxied: bool  # a proxy header is present (never the anonymous principal)
    host: str | None  # the peer address


@dataclass(slots=True)
class Resolution:
    """A principal decided without I/O (``AuthMiddleware.resolve_now``): what was presented and the
    cached entry of its credential, or the error parsing it raised (raised again by ``decide_now``,
    after the guards that come before authentication)."""

    presented: Presented | None
    entry: Entry | None
    error: AuthError | None
    now_ms: int


def cookie_value(cookie_header: str, name: str) -> str | None:
    prefix = name + "="
    for part in cookie_header.split(";"):
        part = part.strip()
        if part.startswith(prefix):
            return part[len(prefix):] or None
    return None


def session_cookie(cookie_header: str) -> str | None:
    return cookie_value(cookie_header, COOKIE)


def session_cookie_headers(t: SessionTokens, max_age_s: int, secure: bool) -> list[str]:
    """``Set-Cookie`` values of a session: access and refresh token (HttpOnly) and the CSRF token
    (readable by the UI's scripts); all SameSite=Strict, Secure when served over TLS. The refresh
    cookie is left as it is when ``t`` has no new refresh token."""
    tail = f"; Max-Age={max_age_s}; Path=/; SameSite=strict" + ("; Secure" if secure else "")
    out = [f"{COOKIE}={t.access}; HttpOnly{tail}", f"{CSRF_COOKIE}={csrf_token(t.family)}{tail}"]
    if t.refresh is not None:
        out.append(f"{REFRESH_COOKIE}={t.refresh}; HttpOnly{tail}")
    return out


def set_session_cookies(resp: Response, t: SessionTokens, max_age_ms: int, secure: bool) -> None:
    for value in session_cookie_headers(t, max_age_ms // 1000, secure):
        resp.headers.append("set-cookie", value)


class AuthMiddleware:
    def __init__(self, app: ASGIApp, auth: Authenticator, *, tenant_header: str = "X-Scope-OrgID") -> None:
        self.app = app
        self.auth = auth
        self.tenant_header = tenant_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            method = scope["method"]
        elif kind == "websocket":
            method = "WS"
        else:
            await self.app(scope, receive, send)
            return
        need = PUBLIC if method == "OPTIONS" else requirement(method, scope["path"])  # CORS preflights
        try:
            principal = await self._principal(scope, need)
            if principal is not None and principal.selector and need.endswith(":read"):
                receive = await narrow_request(scope, receive, principal.selector)  # auth/label_scope.py
        except AuthError as e:
            if need != PUBLIC:
                if kind == "websocket":  # closing before accept: the handshake is answered 403
                    await send({"type": "websocket.close", "code": 1008, "reason": e.message[:120]})
                else:
                    await deny(send, e)
                return
            principal = None  # a public path (e.g. login with a stale session cookie) needs no principal
        if principal is not None:
            state = scope.setdefault("state", {})
            state[SCOPE_KEY] = principal
            state[CREDENTIAL_KEY] = scope.pop("clearsight.credential", None)
        cookies = scope.pop(_SET_COOKIES, None)
        if cookies and kind == "http":
            extra = [(b"set-cookie", c.encode("latin-1")) for c in cookies]

            async def send_with_cookies(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)

            await self.app(scope, receive, send_with_cookies)
            return
        await self.app(scope, receive, send)

    def presented(self, scope: Scope) -> Presented:
        """The credential, tenant header and proxy headers of a request (Unauthenticated when the
        Authorization header is malformed)."""
        authz = cookie = org = None
        proxied = False
        th = self.tenant_header
        for name, value in scope["headers"]:
            if name == b"authorization":
                authz = value
            elif name == b"cookie":
                cookie = value
            elif name == th:
                org = value
            elif name in _PROXY_HEADERS:
                proxied = True
        client = scope.get("client")
        cred: Credential | None = None
        refresh: str | None = None
        refresh_first = False
        if authz is not None:
            cred = parse_authorization(authz.decode("latin-1"))
        elif cookie is not None:
            cookies = cookie.decode("latin-1")
            token = session_cookie(cookies)
            refresh = cookie_value(cookies, REFRESH_COOKIE)
            if token is not None:
                cred = Credential("token", token)
            elif refresh is not None:
                refresh_first = True
        return Presented(cred, refresh, refresh_first, org, proxied, client[0] if client else None)

    async def _principal(self, scope: Scope, need: str) -> Principal | None:
        pr = self.presented(scope)
        if pr.refresh_first and pr.refresh is not None:
            pr.cred = await self._refreshed(scope, pr.refresh)
        admitted: Principal | None = None
        if scope.get(PRESET_PRINCIPAL) is None and pr.cred is not None:
            try:
                admitted = await self._admit(pr.cred, pr.host)
            except Unauthenticated:
                if pr.refresh is None or scope.get(_SET_COOKIES):
                    raise
                pr.cred = await self._refreshed(scope, pr.refresh)
                admitted = await self._admit(pr.cred, pr.host)
        return self._decide(scope, pr, admitted, need)

    def _decide(self, scope: Scope, pr: Presented, admitted: Principal | None, need: str) -> Principal | None:
        """The request's principal from what it presented (``admitted``: its credential's principal,
        when it presented one), acting in the tenant header's organisation, or AuthError when it may
        not make this request (``need``); None for a public route without credentials."""
        auth = self.auth
        preset = scope.get(PRESET_PRINCIPAL)
        if preset is not None:  # a signed ingest request, resolved by auth/signing.py
            p = preset
            auth.check_org_network(p, pr.host)
        elif pr.cred is None:
            if auth.anonymous_allowed and not pr.proxied and is_loopback(pr.host):
                p = auth.anonymous_principal
            elif need == PUBLIC:
                return None
            else:
                raise Unauthenticated("authentication required: send an API key (Authorization: Bearer cs_...)")
        else:
            assert admitted is not None
            p = admitted
            scope["clearsight.credential"] = pr.cred
            if auth.flush_due():
                asyncio.get_running_loop().run_in_executor(None, auth.flush_last_used)
        if pr.org is not None:
            p = auth.act_in(p, pr.org.decode("latin-1"))
        if need not in (PUBLIC, AUTHENTICATED) and need not in p.permissions:
            raise Forbidden(f"permission {need} required")
        return p

    # -- the protocol's fast lane (api/fast_lane.py): the same decisions, without I/O
    def resolve_now(self, scope: Scope) -> Resolution | None:
        """What ``decide_now`` needs, found without I/O and without any effect, or None when the
        request needs what only the ASGI path does: a credential not in the cache (a database
        lookup), a session refresh, or a principal narrowed by label matchers (its query is
        rewritten: ``label_scope.narrow_request``)."""
        now_ms = int(time.time() * 1000)
        try:
            pr = self.presented(scope)
        except AuthError as e:
            return Resolution(None, None, e, now_ms)
        if pr.refresh_first:
            return None
        entry = None
        if pr.cred is not None:
            entry = self.auth.cached(pr.cred)
            if entry is None:
                return None
            p = entry.principal
            if pr.refresh is not None and (p is None or (entry.expires_ms is not None and entry.expires_ms <= now_ms)):
                return None  # admit refuses it: the ASGI path refreshes the session
            if p is not None and p.selector:
                return None
        return Resolution(pr, entry, None, now_ms)

    def decide_now(self, scope: Scope, r: Resolution, need: str) -> Principal:
        """The principal of ``r`` (``resolve_now``) for a request that needs ``need`` (not PUBLIC),
        put into the scope's state as ``__call__`` does; AuthError when it is refused."""
        if r.error is not None:
            raise r.error
        assert r.presented is not None
        admitted = None if r.entry is None else self.auth.admit(r.entry, r.presented.host, r.now_ms)
        p = self._decide(scope, r.presented, admitted, need)
        assert p is not None  # only PUBLIC routes answer None
        state = scope.setdefault("state", {})
        state[SCOPE_KEY] = p
        state[CREDENTIAL_KEY] = scope.pop("clearsight.credential", None)
        return p

    async def _admit(self, cred: Credential, host: str | None) -> Principal:
        entry = self.auth.cached(cred)
        if entry is None:
            entry = await asyncio.get_running_loop().run_in_executor(None, self.auth.lookup, cred)
        return self.auth.admit(entry, host)

    async def _refreshed(self, scope: Scope, refresh: str) -> Credential:
        """The credential of a cookie session's new access token (the refresh cookie rotated);
        its cookies go onto the response. Unauthenticated when the refresh token is no good."""
        sessions = self.auth.sessions
        t = await asyncio.get_running_loop().run_in_executor(None, sessions.refresh, refresh)
        scope[_SET_COOKIES] = session_cookie_headers(t, sessions.ttl_ms // 1000, scope.get("scheme") == "https")
        return Credential("token", t.access)
