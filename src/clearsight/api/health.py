"""Resource health over HTTP (scoped to the request's tenant).

- ``GET /api/v1/resources/{id}/health``: the latest evaluation (status, reason, signals); a resource
  registered since the last pass is evaluated on the spot; 404 for an unknown resource.
- ``GET /api/v1/resources/{id}/health/history``: status transitions in ``[start, end]`` (unix
  seconds or RFC 3339; default the last 24 h), newest first, at most ``limit`` (default 100, at
  most 1000), and the uptime over that range.
- ``GET /api/v1/health/map``: every resource with its latest health and the *runs on* edges between
  them (``health/graph.py``); ``limit`` nodes at most (default 500, at most 5000), most severe first.
- ``GET /status``: the Failsight status page (``health/status.py``), ``window`` (default 24h).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.common import (
    ApiError,
    TenantOf,
    error_response,
    limit_param,
    run_blocking,
    success,
    time_param,
)
from clearsight.api.resources import resource_id_param
from clearsight.config import parse_duration_ms
from clearsight.health.graph import health_map
from clearsight.health.history import HealthHistory
from clearsight.health.monitor import HealthMonitor
from clearsight.health.status import status_page
from clearsight.resources.registry import ResourceRegistry

DAY_MS = 86400_000
MAX_HISTORY = 1000
MAX_WINDOW_MS = 90 * DAY_MS
MAP_LIMIT, MAX_MAP_LIMIT = 500, 5000


class HealthApi:
    def __init__(self, registry: ResourceRegistry, monitor: HealthMonitor, history: HealthHistory,
                 tenant_of: TenantOf, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.monitor = monitor
        self.history = history
        self.tenant_of = tenant_of
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def health(self, request: Request) -> Response:
        """Health of one resource: healthy|warning|critical, the reason and the contributing signals."""
        try:
            tenant = self.tenant_of(request)
            rid = resource_id_param(request)
            now = self._now_ms()
            h = await run_blocking(lambda: self.monitor.health(tenant, rid, now))
            if h is None:
                raise ApiError("not_found", f"resource {rid!r} not found")
        except ApiError as e:
            return error_response(e)
        except ValueError as e:
            return error_response(ApiError("bad_data", str(e)))
        return success(h.to_json())

    async def history_route(self, request: Request) -> Response:
        """Status transitions of one resource (start, end, limit) and its uptime over that range."""
        try:
            tenant = self.tenant_of(request)
            rid = resource_id_param(request)
            q = request.query_params
            now = self._now_ms()
            end = time_param(q, "end", now)
            start = time_param(q, "start", end - DAY_MS)
            if end < start:
                raise ApiError("bad_data", 'invalid parameter "end": end timestamp must not be before start time')
            limit = limit_param(q) or 100
            if limit > MAX_HISTORY:
                raise ApiError("bad_data", f'invalid parameter "limit": at most {MAX_HISTORY}')
            if self.registry.get(tenant, rid) is None:
                raise ApiError("not_found", f"resource {rid!r} not found")
            items = self.history.transitions(tenant, rid, start, end, limit)
            up = self.history.uptime(tenant, rid, start, end)
        except ApiError as e:
            return error_response(e)
        except ValueError as e:
            return error_response(ApiError("bad_data", str(e)))
        return success({"resource": rid, "transitions": [t.to_json() for t in items],
                        "uptime_percent": None if up is None else round(up * 100, 3)})

    async def health_map(self, request: Request) -> Response:
        """The health map: resources with their health (nodes) and what runs on what (edges)."""
        try:
            tenant = self.tenant_of(request)
            limit = limit_param(request.query_params) or MAP_LIMIT
            if limit > MAX_MAP_LIMIT:
                raise ApiError("bad_data", f'invalid parameter "limit": at most {MAX_MAP_LIMIT}')
            now = self._now_ms()
            graph = await run_blocking(lambda: health_map(self.registry, self.monitor, tenant, now, limit))
        except ApiError as e:
            return error_response(e)
        except ValueError as e:
            return error_response(ApiError("bad_data", str(e)))
        return success(graph)

    async def status(self, request: Request) -> Response:
        """Failsight status page: overall health, health and uptime by service, resources by status."""
        try:
            tenant = self.tenant_of(request)
            raw = request.query_params.get("window") or "24h"
            try:
                window = parse_duration_ms(raw)
            except ValueError as e:
                raise ApiError("bad_data", f'invalid parameter "window": {e}') from None
            if not 0 < window <= MAX_WINDOW_MS:
                raise ApiError("bad_data", 'invalid parameter "window": must be longer than 0s and at most 90d')
            now = self._now_ms()
            page = status_page(self.registry, self.monitor, self.history, tenant, now, window)
        except ApiError as e:
            return error_response(e)
        except ValueError as e:
            return error_response(ApiError("bad_data", str(e)))
        return success(page)

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/resources/{id}/health", self.health, methods=["GET"], name="resource_health"),
            Route("/api/v1/resources/{id}/health/history", self.history_route, methods=["GET"],
                  name="resource_health_history"),
            Route("/api/v1/health/map", self.health_map, methods=["GET"], name="health_map"),
            Route("/status", self.status, methods=["GET"], name="status_page"),
        ]
