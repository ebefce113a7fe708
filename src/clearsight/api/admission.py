"""Admission: whether a request is let in at all, decided from its headers before any route runs.

``AdmissionMiddleware`` (ASGI, outermost, on every HTTP listener) refuses:

- a tenant header that is not a valid tenant id (``pipeline/tenant.py``), when the tenant header
  is trusted: 400 (``bad_data``), so no surface, read or write, ever sees an invalid tenant.

Refusals are answered with Prometheus' JSON error envelope and ``Connection: close``; the request
body is never read.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.pipeline.tenant import tenant_error


async def refuse(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answers ``status`` with the JSON error envelope and closes the connection afterwards."""
    body = orjson.dumps({"status": "error", "errorType": "bad_data", "error": message})
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"), *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, tenant_header: str | None) -> None:
        """``tenant_header``: the trusted tenant header's name, or None when it is not trusted
        (then every request uses the default tenant and the header is ignored)."""
        self.app = app
        self.tenant_header = tenant_header.lower().encode("latin-1") if tenant_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.tenant_header is not None:
            for name, value in scope["headers"]:
                if name == self.tenant_header and value:
                    err = tenant_error(value.decode("latin-1"))
                    if err is not None:
                        await refuse(send, 400, f"invalid tenant header: {err}")
                        return
        await self.app(scope, receive, send)
