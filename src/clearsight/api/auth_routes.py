"""Identity endpoints of the main port: who am I, login, refresh, logout (the web UI uses these).

``GET /api/v1/auth/me``: the principal (user, organisation, roles, permissions, anonymous flag).
``POST /api/v1/auth/login``: JSON ``{"username", "password", "org"?}`` -> a session (auth/sessions.py):
a JWT access token (cookie ``clearsight_session``) and a refresh token (cookie ``clearsight_refresh``),
both HttpOnly, SameSite=Strict, Secure over https; both are also in the body for API clients
(``Authorization: Bearer <token>``). ``POST /api/v1/auth/refresh`` (``{"refresh_token"}`` or the
cookie) rotates them; the auth middleware also refreshes cookie sessions by itself when the access
token has expired. ``POST /api/v1/auth/logout`` ends this sign-in, ``POST /api/v1/auth/logout_all``
every sign-in of the user ("sign out everywhere").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.common import json_response, read_body, success
from clearsight.api.sso_routes import make_sso_routes
from clearsight.auth.csrf import CSRF_COOKIE, csrf_token
from clearsight.auth.directory import Directory, LoginResult
from clearsight.auth.errors import (
    AuthError,
    Forbidden,
    InvalidInput,
    LockedOut,
    Unauthenticated,
    UnsupportedMediaType,
)
from clearsight.auth.middleware import CREDENTIAL_KEY, cookie_value, set_session_cookies
from clearsight.auth.oidc import OidcClient
from clearsight.auth.principal import SCOPE_KEY, Principal
from clearsight.auth.resolver import Authenticator, Credential
from clearsight.auth.sessions import COOKIE, REFRESH_COOKIE, Sessions, SessionTokens
from clearsight.auth.tokens import is_api_key
from clearsight.pipeline.errors import PayloadTooLarge

MAX_JSON_BYTES = 64 * 1024


def auth_error_response(e: AuthError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="clearsight"'} if e.status == 401 else {}
    if isinstance(e, LockedOut):
        headers["Retry-After"] = str(max(1, int(e.retry_after_s + 0.999)))
    return json_response({"status": "error", "errorType": e.error_type, "error": e.message}, e.status,
                         headers or None)


def principal_of(request: Request) -> Principal:
    p = request.scope.get("state", {}).get(SCOPE_KEY)
    if p is None:
        raise Unauthenticated("authentication required")
    assert isinstance(p, Principal)
    return p


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (415 for another Content-Type, 400 for bad JSON or a non-object)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/json"):
        raise UnsupportedMediaType("expected Content-Type: application/json")
    try:
        raw = await read_body(request, MAX_JSON_BYTES)
    except PayloadTooLarge as e:
        raise InvalidInput(e.message) from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"invalid JSON body: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be a JSON object")
    return doc


def str_field(doc: dict[str, Any], name: str, *, required: bool = True, default: str = "") -> str:
    v = doc.get(name)
    if v is None and not required:
        return default
    if not isinstance(v, str) or (required and not v):
        raise InvalidInput(f'field "{name}" must be a non-empty string')
    return v


def guarded(handler: Any) -> Any:
    """``handler`` with identity errors answered as JSON envelopes of their status."""

    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except AuthError as e:
            return auth_error_response(e)
        return response

    return endpoint


# A second factor between password and session (api/mfa_routes.py): given the password login and the
# organisation chosen, None (no second step) or the body to answer instead of a session.
SecondFactor = Callable[[LoginResult, str], Awaitable[dict[str, Any] | None]]


def token_body(t: SessionTokens) -> dict[str, Any]:
    return {"token": t.access, "expires": t.access_expires_ms / 1000, "refresh_token": t.refresh,
            "refresh_expires": t.refresh_expires_ms / 1000, "csrf_token": csrf_token(t.family)}


async def start_session(request: Request, sessions: Sessions, res: LoginResult, org: str) -> Response:
    """A new session of ``res`` in ``org``: the tokens in the body and the session and CSRF cookies."""
    t = await asyncio.get_running_loop().run_in_executor(None, sessions.create, res.user_id, org)
    body = {"username": res.username, "org": org, "role": res.orgs[org], "orgs": res.orgs, **token_body(t)}
    resp = success(body)
    set_session_cookies(resp, t, sessions.ttl_ms, request.url.scheme == "https")
    return resp


def _end_cookies(resp: Response) -> Response:
    for name in (COOKIE, REFRESH_COOKIE):
        resp.delete_cookie(name, path="/", httponly=True, samesite="strict")
    resp.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
    return resp


def make_auth_routes(directory: Directory, sessions: Sessions, authenticator: Authenticator,
                     second_factor: SecondFactor | None = None, sso: OidcClient | None = None) -> list[Route]:
    """The identity routes; with ``sso``, also the single sign-on ones (api/sso_routes.py)."""
    async def me(request: Request) -> Response:
        return success(principal_of(request).describe())

    async def login(request: Request) -> Response:
        doc = await json_body(request)
        username = str_field(doc, "username")
        password = str_field(doc, "password")
        org = str_field(doc, "org", required=False)
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(None, directory.login, username, password)
        if not res.orgs:
            raise Forbidden("this user belongs to no organisation")
        if org and org not in res.orgs:
            raise Forbidden(f"user {username!r} is not a member of organisation {org!r}")
        if not org:
            org = authenticator.default_org if authenticator.default_org in res.orgs else next(iter(res.orgs))
        if second_factor is not None:
            pending = await second_factor(res, org)
            if pending is not None:
                return success(pending)
        return await start_session(request, sessions, res, org)

    async def refresh(request: Request) -> Response:
        token = cookie_value(request.headers.get("cookie", ""), REFRESH_COOKIE)
        if request.headers.get("content-type", "").startswith("application/json") or token is None:
            token = str_field(await json_body(request), "refresh_token")
        try:
            t = await asyncio.get_running_loop().run_in_executor(None, sessions.refresh, token)
        except Unauthenticated as e:
            authenticator.forget_all()  # a revoked family: cached access tokens of it stop at once here
            return _end_cookies(auth_error_response(e))
        resp = success(token_body(t))
        set_session_cookies(resp, t, sessions.ttl_ms, request.url.scheme == "https")
        return resp

    async def logout(request: Request) -> Response:
        principal_of(request)
        cred = request.scope.get("state", {}).get(CREDENTIAL_KEY)
        if isinstance(cred, Credential) and cred.kind == "token" and not is_api_key(cred.secret):
            await asyncio.get_running_loop().run_in_executor(None, sessions.end, cred.secret)
            authenticator.forget(cred)
        return _end_cookies(success({"logged_out": True}))

    async def logout_all(request: Request) -> Response:
        p = principal_of(request)
        if p.kind != "user":
            raise Forbidden("sign out everywhere belongs to users: sign in with a username and password")
        ended = await asyncio.get_running_loop().run_in_executor(None, sessions.end_all, int(p.id))
        authenticator.forget_all()
        return _end_cookies(success({"logged_out": True, "sessions_ended": ended}))

    return [
        Route("/api/v1/auth/me", guarded(me), methods=["GET"]),
        Route("/api/v1/auth/login", guarded(login), methods=["POST"]),
        Route("/api/v1/auth/refresh", guarded(refresh), methods=["POST"]),
        Route("/api/v1/auth/logout", guarded(logout), methods=["POST"]),
        Route("/api/v1/auth/logout_all", guarded(logout_all), methods=["POST"]),
        *make_sso_routes(sso or OidcClient([]), directory, sessions, start_session, guarded),
    ]
