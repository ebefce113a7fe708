"""Operational endpoints: ``/health`` (live), ``/ready``, ``/metrics``, build info."""

from __future__ import annotations

import platform
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from clearsight import __version__
from clearsight.api.common import json_response, success
from clearsight.selfmetrics import SelfMetrics

Handler = Callable[[Request], Awaitable[Response]]


def make_ops_handlers(metrics: SelfMetrics, readiness: Callable[[], tuple[bool, str]]) -> dict[str, Handler]:
    async def health(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def ready(request: Request) -> Response:
        ok, reason = readiness()
        if ok:
            return json_response({"status": "ready"})
        return json_response({"status": "not ready", "reason": reason}, status=503)

    async def self_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def buildinfo(request: Request) -> Response:
        # Grafana reads "version" to pick Prometheus features; we answer the API level we serve.
        return success({
            "version": "2.53.0",
            "revision": f"clearsight-{__version__}",
            "branch": "main",
            "buildUser": "clearsight",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
            "application": "clearsight",
            "clearsightVersion": __version__,
        })

    return {"health": health, "ready": ready, "metrics": self_metrics, "buildinfo": buildinfo}
