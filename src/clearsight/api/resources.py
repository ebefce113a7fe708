"""The resource registry over HTTP (scoped to the request's tenant).

- ``POST /api/v1/resources/heartbeat``: an agent heartbeat (``resources/heartbeat.py`` has the
  contract); ``Content-Type: application/json`` is required (415 otherwise: a browser form cannot
  post it); 200 ``{"status": "success", "data": {"id": ..., "resources": n}}``; 400 naming the field;
  413 over the size limit; 429 when the tenant's registry is full. A rejected heartbeat records nothing.
- ``GET /api/v1/resources``: ``kind``, ``status`` (up|stale|down) and ``tag=key=value`` (repeatable,
  all must hold) filters; ``{"status": "success", "data": [resource...]}``.
- ``GET /api/v1/resources/{id}``: one resource, 404 when unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.common import ApiError, TenantOf, error_response, read_body, run_blocking, success
from clearsight.pipeline.errors import PayloadTooLarge
from clearsight.resources.heartbeat import MAX_BODY_BYTES, HeartbeatError, parse_heartbeat
from clearsight.resources.model import KINDS, STATUSES, valid_id
from clearsight.resources.registry import RegistryFull, ResourceFilter, ResourceRegistry


def resource_id_param(request: Request) -> str:
    rid = str(request.path_params["id"])
    if not valid_id(rid):
        raise ApiError("bad_data", f'invalid resource id "{rid}": expected host:<name>, container:<id> or '
                       "service:<name>")
    return rid


class ResourceApi:
    def __init__(self, registry: ResourceRegistry, tenant_of: TenantOf, *, heartbeat_interval_ms: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.tenant_of = tenant_of
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def heartbeat(self, request: Request) -> Response:
        """An agent heartbeat: registers or refreshes the host and its containers."""
        try:
            tenant = self.tenant_of(request)
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise ApiError("bad_data", f"unsupported content type {ctype or 'none'!r}: send application/json",
                               status=415)
            try:
                body = await read_body(request, MAX_BODY_BYTES)
            except PayloadTooLarge as e:
                raise ApiError("bad_data", str(e), status=413) from None
            try:
                sightings = parse_heartbeat(body, self._now_ms(), self.heartbeat_interval_ms)
            except HeartbeatError as e:
                raise ApiError("bad_data", f"invalid heartbeat: {e}") from None
            try:
                self.registry.observe(tenant, sightings)
            except RegistryFull as e:
                raise ApiError("bad_data", str(e), status=429) from None
        except ApiError as e:
            return error_response(e)
        except ValueError as e:  # an invalid tenant
            return error_response(ApiError("bad_data", str(e)))
        return success({"id": sightings[0].id, "resources": len(sightings)})

    async def list_resources(self, request: Request) -> Response:
        """Resources of the tenant (kind, status, tag=key=value filters)."""
        try:
            tenant = self.tenant_of(request)
            q = request.query_params
            kind = q.get("kind") or None
            if kind is not None and kind not in KINDS:
                raise ApiError("bad_data", f'invalid parameter "kind": {kind!r} (expected {", ".join(KINDS)})')
            status = q.get("status") or None
            if status is not None and status not in STATUSES:
                raise ApiError("bad_data", f'invalid parameter "status": {status!r} (expected {", ".join(STATUSES)})')
            tags = []
            for t in q.getlist("tag"):
                k, sep, v = t.partition("=")
                if not sep or not k:
                    raise ApiError("bad_data", f'invalid parameter "tag": {t!r} (expected key=value)')
                tags.append((k, v))
            now = self._now_ms()
            found = await run_blocking(lambda: self.registry.list(tenant, now, ResourceFilter(kind, status, tuple(tags))))
        except ApiError as e:
            return error_response(e)
        except ValueError as e:
            return error_response(ApiError("bad_data", str(e)))
        return success([r.to_json(now, self.registry.liveness) for r in found])

    async def get(self, request: Request) -> Response:
        """One resource by id (host:<name>, container:<id>, service:<name>)."""
        try:
            tenant = self.tenant_of(request)
            rid = resource_id_param(request)
            r = self.registry.get(tenant, rid)
            if r is None:
                raise ApiError("not_found", f"resource {rid!r} not found")
        except ApiError as e:
            return error_response(e)
        except ValueError as e:
            return error_response(ApiError("bad_data", str(e)))
        return success(r.to_json(self._now_ms(), self.registry.liveness))

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/resources/heartbeat", self.heartbeat, methods=["POST"], name="resources_heartbeat"),
            Route("/api/v1/resources", self.list_resources, methods=["GET"], name="resources_list"),
            Route("/api/v1/resources/{id}", self.get, methods=["GET"], name="resources_get"),
        ]
