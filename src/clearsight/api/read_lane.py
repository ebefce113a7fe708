"""Reads take a shorter middleware chain: the layers that can only act on writes are left out.

Every request of a listener passes the same guard chain (``server._guarded``): admission, rate limits,
signed ingestion, authentication, CSRF, usage, audit, body limits, signatures, idempotency keys. For a
read (a dashboard's queries, nearly all requests) five of them provably do nothing:

- signed ingestion (``auth/signing.SignedIngestMiddleware``) acts only on a request with ``x-org-key``,
  and the signature check after the body limits (``SignatureVerifier``) only on one it admitted;
- idempotency keys (``auth/idempotency.py``) act only on a request with ``x-idempotency-key``;
- CSRF (``auth/csrf.py``) acts only on unsafe methods whose route needs more than ``*:read``;
- writes first (``api/writes_first.py``) acts only on a ``POST`` to a write path.

Each layer costs little, but a request's Python path is long and runs with cold processor caches
(a server answers other clients in between): measured in the real server, the guard chain was
~110-150 us of a ~550 us small query. ``ReadLane`` sends a request that none of these layers would
touch (``is_plain_read``) down a chain built without them, and everything else down the full chain.
Both chains are built by the same function from the same middleware objects' classes
(``server._guarded``), so a layer kept in the read chain is the very same code."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.auth.csrf import SAFE_METHODS
from clearsight.auth.route_permissions import requirement

# Headers that make a request something the read chain does not handle (signed ingestion, replays).
_WRITE_HEADERS = frozenset({b"x-org-key", b"x-idempotency-key"})


def is_plain_read(scope: Scope) -> bool:
    """True when the layers left out of the read chain would all pass ``scope`` through unchanged:
    an HTTP request with neither ``x-org-key`` nor ``x-idempotency-key``, whose method is safe
    (GET, HEAD, OPTIONS) or which is a ``POST`` to a route that needs only a ``*:read`` permission
    (Grafana sends its queries as form POSTs)."""
    if scope["type"] != "http":
        return False
    method = scope["method"]
    if method not in SAFE_METHODS and not (method == "POST" and requirement(method, scope["path"]).endswith(":read")):
        return False
    for name, _ in scope["headers"]:
        if name in _WRITE_HEADERS:
            return False
    return True


class ReadLane:
    """``read`` for plain reads (``is_plain_read``), ``full`` for everything else (also ``app``, as
    for any middleware: the chain a request may take, every layer included)."""

    def __init__(self, full: ASGIApp, read: ASGIApp) -> None:
        self.full = self.app = full
        self.read = read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.read if is_plain_read(scope) else self.full)(scope, receive, send)


__all__ = ["ReadLane", "is_plain_read"]
