"""Security headers on every HTTP response (API, UI and errors alike), added to the response start
in pure ASGI; a header the handler set itself is kept.

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY``;
- ``Content-Security-Policy``: ``default-src 'none'; frame-ancestors 'none'`` for non-HTML answers;
  HTML (the UI) may load its own scripts, styles, images and connect to its own origin (WebSockets
  included); ``/docs`` and ``/redoc`` (FastAPI's pages) may also load from cdn.jsdelivr.net;
- ``Strict-Transport-Security: max-age=31536000`` when the request came over TLS.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY")]
CSP_API = b"default-src 'none'; frame-ancestors 'none'"
CSP_UI = (b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          b"connect-src 'self' ws: wss:; font-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; "
          b"form-action 'self'; object-src 'none'")
CSP_DOCS = (b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
            b"frame-ancestors 'none'; base-uri 'self'; object-src 'none'")
HSTS = (b"strict-transport-security", b"max-age=31536000")
_DOCS = ("/docs", "/redoc")


def security_additions(headers: Iterable[tuple[bytes, bytes]], path: str, tls: bool) -> list[tuple[bytes, bytes]]:
    """The security headers a response with ``headers`` gets (appended after them) for a request
    for ``path`` (over TLS when ``tls``)."""
    html = own = False  # a handler with its own policy (the UI page) sets all of them
    names = []
    for n, v in headers:
        n = n.lower()
        names.append(n)
        if n == b"content-type":
            html = v.startswith(b"text/html")
        elif n == b"content-security-policy" or n == b"x-frame-options":
            own = True
    if own:
        added = [h for h in BASE if h[0] not in names]
    else:
        added = [*BASE, (b"content-security-policy", _csp(path, html))]
    if tls:
        added.append(HSTS)
    return added


def with_security_headers(headers: Iterable[tuple[bytes, bytes]], path: str, tls: bool) -> list[tuple[bytes, bytes]]:
    """A response's ``headers`` (a new list) with the security headers of a request for ``path``
    (over TLS when ``tls``) added."""
    headers = list(headers)
    return headers + security_additions(headers, path, tls)


def security_lines(headers: Iterable[tuple[bytes, bytes]], path: str, tls: bool) -> bytes:
    """``security_additions`` as the header lines of an HTTP/1.1 head (``name: value\r\n`` each),
    the usual ones (no policy of the handler's own) encoded once."""
    html = False
    for n, v in headers:
        n = n.lower()
        if n == b"content-type":
            html = v.startswith(b"text/html")
        elif n == b"content-security-policy" or n == b"x-frame-options":
            return b"".join(b"%s: %s\r\n" % h for h in security_additions(headers, path, tls))
    return _LINES[_csp(path, html), tls]


def _csp(path: str, html: bool) -> bytes:
    return CSP_DOCS if path.startswith(_DOCS) else CSP_UI if html else CSP_API


_LINES = {(csp, tls): b"".join(b"%s: %s\r\n" % h for h in [*BASE, (b"content-security-policy", csp),
                                                              *([HSTS] if tls else [])])
          for csp in (CSP_API, CSP_UI, CSP_DOCS) for tls in (False, True)}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", ()), path, tls)
            await send(message)

        await self.app(scope, receive, send_with_headers)
