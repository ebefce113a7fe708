"""Admission: whether a request is let in at all, decided from its headers before any route runs.

``AdmissionMiddleware`` (ASGI, outermost, on every HTTP listener) refuses:

- a ``Host`` header naming a host this server does not serve: 421 (Misdirected Request). This
  defends against DNS rebinding: a web page on ``evil.example`` whose name is re-pointed at
  127.0.0.1 makes the browser send ``Host: evil.example``. Served: ``localhost``, ``127.0.0.1``,
  ``::1``, the hosts of the configured listen addresses, ``server.allowed_hosts`` (``*`` serves
  every host) and any IP literal (a browser only sends an IP as Host when the page's own origin is
  that IP, which rebinding cannot produce). A request without ``Host`` (HTTP/1.0) is let in;
- a tenant header that is not a valid tenant id (``pipeline/tenant.py``), when the tenant header
  is trusted: 400 (``bad_data``), so no surface, read or write, ever sees an invalid tenant.

Refusals are answered with Prometheus' JSON error envelope and ``Connection: close``; the request
body is never read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.http_answer import Answer, Headers, send_answer
from clearsight.pipeline.tenant import tenant_error


def refusal(status: int, message: str, headers: Headers | None = None) -> Answer:
    """``status`` with the JSON error envelope, closing the connection afterwards."""
    body = orjson.dumps({"status": "error", "errorType": "bad_data", "error": message})
    return Answer(status, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                           (b"connection", b"close"), *(headers or [])], body)


async def refuse(send: Send, status: int, message: str, headers: Headers | None = None) -> None:
    """Answers ``status`` with the JSON error envelope and closes the connection afterwards."""
    await send_answer(send, refusal(status, message, headers))


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def served_hosts(listen_hosts: Iterable[str], allowed_hosts: str) -> frozenset[str] | None:
    """The host names a server answers for (lower case), or None when every host is served
    (``*`` in the comma-separated ``allowed_hosts``)."""
    extra = [h.strip().lower() for h in allowed_hosts.split(",") if h.strip()]
    if "*" in extra:
        return None
    names = {*LOOPBACK_NAMES, *extra, *(h.strip("[]").lower() for h in listen_hosts if h)}
    return frozenset(n.rstrip(".") for n in names)


def host_is_served(host: str, served: frozenset[str] | None) -> bool:
    """Whether a ``Host`` header value (``name``, ``name:port``, ``[v6]:port``) names a served host."""
    if served is None:
        return True
    h = host.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        if end < 0 or (h[end + 1:] and not (h[end + 1] == ":" and h[end + 2:].isdigit())):
            return False
        name = h[1:end]
    elif ":" in h:
        name, _, port = h.rpartition(":")
        if not port.isdigit():
            return False
    else:
        name = h
    name = name.rstrip(".")
    if name in served:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, tenant_header: str | None,
                 served: frozenset[str] | None = None) -> None:
        """``tenant_header``: the trusted tenant header's name, or None when it is not trusted
        (then every request uses the default tenant and the header is ignored). ``served``: from
        ``served_hosts``; None serves every host."""
        self.app = app
        self.tenant_header = tenant_header.lower().encode("latin-1") if tenant_header else None
        self.served = served
        self._last_served: bytes | None = None  # the last Host value found served (clients send the same)

    def check(self, headers: Headers) -> Answer | None:
        """The refusal of a request with these headers (421 or 400), or None when it is let in."""
        if self.served is not None:
            for name, value in headers:
                if name == b"host" and value != self._last_served:
                    host = value.decode("latin-1")
                    if not host_is_served(host, self.served):
                        return refusal(421, f"Host {host[:256]!r} is not served here (DNS rebinding "
                                            "protection): add it to server.allowed_hosts")
                    self._last_served = value
        if self.tenant_header is not None:
            for name, value in headers:
                if name == self.tenant_header and value:
                    err = tenant_error(value.decode("latin-1"))
                    if err is not None:
                        return refusal(400, f"invalid tenant header: {err}")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.check(scope["headers"])
            if refused is not None:
                await send_answer(send, refused)
                return
        await self.app(scope, receive, send)
