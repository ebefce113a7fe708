"""CSRF protection for cookie-authenticated requests that change state.

A browser attaches the session cookie to any request a foreign page makes; such a request must
therefore also carry ``X-CSRF-Token`` equal to the session's CSRF token, which only a page of this
origin can read: login sets it in the ``clearsight_csrf`` cookie (readable by the UI's scripts, not
HttpOnly) and answers it in the body (``csrf_token``). The token is derived from the sign-in's
refresh family, which only the HttpOnly access token carries (``csrf_token`` in auth/sessions.py), so
nothing is stored, a token fits its sign-in only and stays the same while the access token rotates.
A cookie request with only the refresh cookie (no access token to take the family from) is refused.

Checked (403 when missing or wrong) for methods other than GET/HEAD/OPTIONS that authenticate with
the session cookie and whose route changes state (not ``PUBLIC``, e.g. login, and not a ``*:read``
permission, e.g. ``POST /api/v1/query``). Requests with an ``Authorization`` header (API keys,
bearer sessions, basic auth) and credential-less requests are exempt: a browser never adds those to
a cross-site request by itself.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.auth.errors import Forbidden
from clearsight.auth.middleware import cookie_value, deny, session_cookie
from clearsight.auth.route_permissions import PUBLIC, requirement
from clearsight.auth.sessions import CSRF_COOKIE, REFRESH_COOKIE, csrf_token, family_of

__all__ = ["CSRF_COOKIE", "CsrfMiddleware", "csrf_token", "needs_check"]

HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def needs_check(method: str, path: str) -> bool:
    if method in SAFE_METHODS:
        return False
    need = requirement(method, path)
    return need != PUBLIC and not need.endswith(":read")


class CsrfMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        cookie = header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                await self.app(scope, receive, send)
                return
            if name == b"cookie":
                cookie = value
            elif name == HEADER:
                header = value
        cookies = cookie.decode("latin-1") if cookie is not None else ""
        session = session_cookie(cookies)
        if (session is not None or cookie_value(cookies, REFRESH_COOKIE) is not None) and needs_check(
                scope["method"], scope["path"]):
            family = family_of(session) if session is not None else None
            expected = csrf_token(family).encode() if family is not None else None
            if header is None or expected is None or not hmac.compare_digest(header.strip(), expected):
                await deny(send, Forbidden("CSRF token missing or wrong: cookie-authenticated requests that "
                                           "change state need the X-CSRF-Token header (the clearsight_csrf cookie)"))
                return
        await self.app(scope, receive, send)
