"""Single sign-on over HTTP (auth/oidc.py holds the protocol): all three are public paths.

- ``GET /api/v1/auth/sso/providers``: ``[{"name", "display_name", "login_url"}]`` for the sign-in
  page's "Sign in with ..." buttons (empty when none is configured);
- ``GET /api/v1/auth/sso/{name}/login?return_to=/ui/...``: 302 to the provider's authorization
  endpoint (code flow, PKCE S256, state, nonce); the state is also set in the cookie
  ``clearsight_sso`` (HttpOnly, SameSite=Lax so the provider's redirect back carries it), binding the
  callback to the browser that started it;
- ``GET /api/v1/auth/sso/{name}/callback?code&state``: checks the state (query = cookie = a pending
  login, used once), exchanges the code, validates the ID token, maps the role, makes the user just
  in time, starts a session (api/auth_routes.py ``start_session``: JWT + refresh cookies) and
  answers 303 to ``return_to`` (a path on this server, default ``/ui/``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clearsight.api.common import success
from clearsight.auth.directory import Directory
from clearsight.auth.errors import InvalidInput, Unauthenticated
from clearsight.auth.oidc import OidcClient, sign_in
from clearsight.auth.sessions import Sessions

STATE_COOKIE = "clearsight_sso"
STATE_COOKIE_PATH = "/api/v1/auth/sso/"
DEFAULT_RETURN = "/ui/"


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def safe_return_to(value: str | None) -> str:
    """A path on this server only (no scheme, host or ``//``: no open redirect)."""
    if not value:
        return DEFAULT_RETURN
    if not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 512:
        raise InvalidInput("return_to must be a path on this server")
    if any(ord(c) < 0x20 for c in value):
        raise InvalidInput("return_to must be a path on this server")
    return value


def make_sso_routes(
    client: OidcClient,
    directory: Directory,
    sessions: Sessions,
    start_session: Callable[..., Any],
    guarded: Callable[[Any], Any],
) -> list[Route]:
    async def providers(request: Request) -> Response:
        return success(
            [
                {
                    "name": p.name,
                    "display_name": p.display_name,
                    "login_url": f"/api/v1/auth/sso/{p.name}/login",
                }
                for p in client.providers.values()
            ]
        )

    def redirect_uri(request: Request, name: str) -> str:
        p = client.provider(name)
        return p.redirect_uri or str(request.base_url).rstrip("/") + f"/api/v1/auth/sso/{name}/callback"

    async def login(request: Request) -> Response:
        name = request.path_params["name"]
        return_to = safe_return_to(request.query_params.get("return_to"))
        url, state = await _run(client.start, name, redirect_uri(request, name), return_to)
        resp = RedirectResponse(url, status_code=302)
        resp.set_cookie(
            STATE_COOKIE,
            state,
            max_age=600,
            httponly=True,
            samesite="lax",
            path=STATE_COOKIE_PATH,
            secure=request.url.scheme == "https",
        )
        return resp

    async def callback(request: Request) -> Response:
        name = request.path_params["name"]
        p = client.provider(name)
        q = request.query_params
        state = q.get("state", "")
        error = q.get("error", "")
        if error:
            if state and state == request.cookies.get(STATE_COOKIE):
                try:
                    await _run(client.take, state)  # that login is over
                except Unauthenticated:
                    pass
            raise Unauthenticated(f"the SSO provider refused the sign-in: {error[:100]}")
        code = q.get("code", "")
        if not state or not code or len(state) > 256 or len(code) > 4096:
            raise InvalidInput("the callback needs code and state")
        if state != request.cookies.get(STATE_COOKIE):
            raise Unauthenticated("the SSO state does not match this browser's: start the sign-in again")
        pend = await _run(client.take, state)
        if pend.provider != name:
            raise Unauthenticated("the SSO state belongs to another provider")
        ident = await _run(client.finish, pend, code)
        res = await _run(sign_in, directory, p, ident)
        resp: Response = await start_session(request, sessions, res, p.org)
        out = RedirectResponse(pend.return_to, status_code=303)
        for k, v in resp.raw_headers:
            if k == b"set-cookie":
                out.raw_headers.append((k, v))
        out.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH, httponly=True, samesite="lax")
        return out

    return [
        Route("/api/v1/auth/sso/providers", guarded(providers), methods=["GET"]),
        Route("/api/v1/auth/sso/{name}/login", guarded(login), methods=["GET"]),
        Route("/api/v1/auth/sso/{name}/callback", guarded(callback), methods=["GET"]),
    ]
