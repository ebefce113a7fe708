"""The one HTTP seam: ``AuthMiddleware`` (pure ASGI, every HTTP listener) resolves the principal once
per request, enforces the route's requirement (route_permissions.py) and puts the principal into
``scope["state"]["principal"]``. Handlers read it (``tenant_of``, ``request.state.principal``);
none parses credentials.

- no credentials: the anonymous principal when ``auth.anonymous`` is ``loopback``, the peer is a
  loopback address and no proxy header (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) is
  present; otherwise 401 with ``WWW-Authenticate: Bearer``;
- wrong, expired, revoked or malformed credentials: always 401 (never the anonymous principal);
- a principal lacking the route's permission, or naming another organisation in the tenant header
  without ``orgs:cross``: 403.

Refusals use Prometheus' JSON error envelope; the request body is never read.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.auth.errors import AuthError, Forbidden, LockedOut, Unauthenticated
from clearsight.auth.principal import SCOPE_KEY, Principal
from clearsight.auth.resolver import Authenticator, Credential, is_loopback, parse_authorization
from clearsight.auth.route_permissions import AUTHENTICATED, PUBLIC, requirement
from clearsight.auth.sessions import COOKIE

_PROXY_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})
_COOKIE_PREFIX = COOKIE + "="
PRESET_PRINCIPAL = "clearsight.principal"  # scope key: a principal resolved before this middleware
CREDENTIAL_KEY = "credential"  # scope["state"]: the Credential presented (logout ends its session)


async def deny(send: Send, err: AuthError) -> None:
    body = orjson.dumps({"status": "error", "errorType": err.error_type, "error": err.message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="clearsight"'))
    if isinstance(err, LockedOut):
        headers.append((b"retry-after", str(max(1, int(err.retry_after_s + 0.999))).encode()))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def session_cookie(cookie_header: str) -> str | None:
    for part in cookie_header.split(";"):
        part = part.strip()
        if part.startswith(_COOKIE_PREFIX):
            return part[len(_COOKIE_PREFIX):] or None
    return None


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
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope, need: str) -> Principal | None:
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
        auth = self.auth
        client = scope.get("client")
        host = client[0] if client else None
        cred: Credential | None = None
        if authz is not None:
            cred = parse_authorization(authz.decode("latin-1"))
        elif cookie is not None:
            token = session_cookie(cookie.decode("latin-1"))
            if token is not None:
                cred = Credential("token", token)
        preset = scope.get(PRESET_PRINCIPAL)
        if preset is not None:  # a signed ingest request, resolved by auth/signing.py
            p = preset
        elif cred is None:
            if auth.anonymous_allowed and not proxied and is_loopback(host):
                p = auth.anonymous_principal
            elif need == PUBLIC:
                return None
            else:
                raise Unauthenticated("authentication required: send an API key (Authorization: Bearer cs_...)")
        else:
            entry = auth.cached(cred)
            if entry is None:
                entry = await asyncio.get_running_loop().run_in_executor(None, auth.lookup, cred)
            p = auth.admit(entry, host)
            scope["clearsight.credential"] = cred
            if auth.flush_due():
                asyncio.get_running_loop().run_in_executor(None, auth.flush_last_used)
        if org is not None:
            p = auth.act_in(p, org.decode("latin-1"))
        if need not in (PUBLIC, AUTHENTICATED) and need not in p.permissions:
            raise Forbidden(f"permission {need} required")
        return p
