"""api/admission.py: requests refused from their headers before any route runs."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from clearsight.api.admission import AdmissionMiddleware


def _app(seen: list[str]) -> Starlette:
    async def echo(request: Request) -> Response:
        seen.append(request.headers.get("x-scope-orgid", "default"))
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/x", echo, methods=["GET", "POST"])])


def _request(app: ASGIApp, method: str, headers: dict[str, str], host: str = "127.0.0.1:9800") -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}") as c:
            return await c.request(method, "/x", headers=headers, content=b"body")

    return asyncio.run(go())


def test_invalid_tenant_header_is_400_before_any_route() -> None:
    seen: list[str] = []
    app = AdmissionMiddleware(_app(seen), tenant_header="X-Scope-OrgID")
    for bad in ("../../etc", "x" * 8000, "..", "a b"):
        r = _request(app, "POST", {"X-Scope-OrgID": bad})
        assert r.status_code == 400
        assert r.json()["errorType"] == "bad_data" and "invalid tenant header" in r.json()["error"]
        assert r.headers["connection"] == "close"
    assert seen == []
    assert _request(app, "GET", {"X-Scope-OrgID": "team-a"}).status_code == 200
    assert seen == ["team-a"]


def test_tenant_header_ignored_when_not_trusted() -> None:
    seen: list[str] = []
    app = AdmissionMiddleware(_app(seen), tenant_header=None)
    assert _request(app, "GET", {"X-Scope-OrgID": "../../etc"}).status_code == 200
