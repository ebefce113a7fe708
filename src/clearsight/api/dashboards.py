"""Saved dashboards over HTTP, always in the caller's organisation (dashboards/store.py).

- ``GET /api/v1/dashboards``: summaries (id, title, version, updated, updated_by, panels).
- ``GET /api/v1/dashboards/{id}``: one dashboard (404 when it is not in the caller's organisation).
- ``POST /api/v1/dashboards``: create from ``{"title", "panels", "variables"}`` (dashboards/model.py);
  200 with the stored dashboard.
- ``PUT /api/v1/dashboards/{id}``: replace; with ``"version"`` in the body, 409 if someone saved since.
- ``DELETE /api/v1/dashboards/{id}``.

Reads need ``metrics:read``, changes ``dashboards:manage`` (auth/route_permissions.py). Bad input is a
400 naming the field and writes nothing; a body other than JSON is 415.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.auth_routes import guarded, json_body, principal_of
from clearsight.api.common import success
from clearsight.api.stored import hex_id, in_thread
from clearsight.auth.errors import Conflict, InvalidInput, NotFound
from clearsight.dashboards.model import DashboardError, parse_dashboard
from clearsight.dashboards.store import DashboardLimit, DashboardNotFound, DashboardStore, VersionConflict

_ERRORS = {DashboardNotFound: NotFound, VersionConflict: Conflict, DashboardLimit: InvalidInput}


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return await in_thread(fn, *args, errors=_ERRORS)


def _id(request: Request) -> str:
    return hex_id(request, "dashboard")


async def _parsed(request: Request) -> tuple[Any, int | None]:
    body = await json_body(request)
    version = body.pop("version", None)
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise InvalidInput("version: must be an integer")
    for derived in ("id", "created", "updated", "updated_by"):  # echoed back from a GET: ignored
        body.pop(derived, None)
    try:
        return parse_dashboard(body), version
    except DashboardError as e:
        raise InvalidInput(str(e)) from None


def make_dashboard_routes(store: DashboardStore) -> list[Route]:
    async def list_dashboards(request: Request) -> Response:
        p = principal_of(request)
        return success([d.summary() for d in await _run(store.list, p.org)])

    async def get_dashboard(request: Request) -> Response:
        p = principal_of(request)
        return success((await _run(store.get, p.org, _id(request))).to_json())

    async def create_dashboard(request: Request) -> Response:
        p = principal_of(request)
        d, _ = await _parsed(request)
        return success((await _run(store.create, p.org, d, p.name)).to_json())

    async def update_dashboard(request: Request) -> Response:
        p = principal_of(request)
        did = _id(request)
        d, version = await _parsed(request)
        return success((await _run(store.update, p.org, did, d, p.name, version)).to_json())

    async def delete_dashboard(request: Request) -> Response:
        p = principal_of(request)
        await _run(store.delete, p.org, _id(request))
        return success(None)

    return [
        Route("/api/v1/dashboards", guarded(list_dashboards), methods=["GET"], name="dashboards_list"),
        Route("/api/v1/dashboards", guarded(create_dashboard), methods=["POST"], name="dashboards_create"),
        Route("/api/v1/dashboards/{id}", guarded(get_dashboard), methods=["GET"], name="dashboards_get"),
        Route(
            "/api/v1/dashboards/{id}", guarded(update_dashboard), methods=["PUT"], name="dashboards_update"
        ),
        Route(
            "/api/v1/dashboards/{id}", guarded(delete_dashboard), methods=["DELETE"], name="dashboards_delete"
        ),
    ]
