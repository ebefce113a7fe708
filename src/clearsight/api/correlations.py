"""``GET /api/v1/correlations``: stored correlations (``correlation/correlator.py``), newest first.

Parameters: ``resource`` (an id; only correlations on it), ``start``/``end`` (unix seconds or
RFC 3339; default the last 24 h, at most 31 days), ``limit`` (default 100, at most 1000).
Each item is the correlation event (``GET /api/v1/events`` shape) whose ``data`` holds ``cause``
and ``anomaly``.
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
from clearsight.pipeline.event_entries import event_json
from clearsight.resources.events import CORRELATION, EventReader
from clearsight.resources.model import valid_id

DAY_MS = 86400_000
MAX_RANGE_MS = 31 * DAY_MS
MAX_LIMIT = 1000


class CorrelationApi:
    def __init__(self, events: EventReader, tenant_of: TenantOf, clock: Callable[[], float] = time.time) -> None:
        self.events = events
        self.tenant_of = tenant_of
        self.clock = clock

    async def list_correlations(self, request: Request) -> Response:
        """Correlations of change/security events with metric anomalies (resource, start, end, limit)."""
        try:
            tenant = self.tenant_of(request)
            q = request.query_params
            now = int(self.clock() * 1000)
            end = time_param(q, "end", now)
            start = time_param(q, "start", end - DAY_MS)
            if end < start:
                raise ApiError("bad_data", 'invalid parameter "end": end timestamp must not be before start time')
            if end - start > MAX_RANGE_MS:
                raise ApiError("bad_data", "the time range exceeds the limit of 31 days")
            limit = limit_param(q) or 100
            if limit > MAX_LIMIT:
                raise ApiError("bad_data", f'invalid parameter "limit": at most {MAX_LIMIT}')
            rid = q.get("resource") or None
            if rid is not None and not valid_id(rid):
                raise ApiError("bad_data", f'invalid parameter "resource": {rid!r} is not a resource id')
            fetch = MAX_LIMIT * 10 if rid else limit
            evs = await run_blocking(lambda: self.events.events(tenant, (CORRELATION,), start * 1_000_000,
                                                                end * 1_000_000 + 999_999, fetch))
        except ApiError as e:
            return error_response(e)
        except ValueError as e:
            return error_response(ApiError("bad_data", str(e)))
        if rid is not None:
            evs = [e for e in evs if e.data.get("anomaly", {}).get("resource") == rid]
        return success({"correlations": [event_json(e) for e in evs[:limit]]})

    def routes(self) -> list[Route]:
        return [Route("/api/v1/correlations", self.list_correlations, methods=["GET"], name="correlations")]
