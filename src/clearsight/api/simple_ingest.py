"""AegisGuard's simple JSON ingest shapes over HTTP (the decoders are ingest/simple_json.py):
``POST /api/v1/ingest/logs`` (``logs:write``), ``/api/v1/ingest/metrics`` (``metrics:write``),
``/api/v1/ingest/rum`` (``logs:write``: kept as log lines) and ``/api/v1/ingest/traces``
(``traces:write``: stored as spans, readable at ``GET /api/v1/traces/{trace_id}``). Paths of their own, so OTLP's ``/v1/logs`` and
``/v1/metrics`` keep their meaning. They are ingest endpoints like the others: API keys, HMAC
signed ingestion (``x-org-key``/``x-signature``) and ``x-idempotency-key`` work on them.

Answers: 200 ``{"success": true, "accepted": N}`` after the write is committed; 400 naming the bad
entry, 413 over the per-request count (1000/5000/1000/500) or the body limit, 415 without
``Content-Type: application/json``; nothing of a refused request is kept. For traces, ``accepted``
counts the spans stored: spans outside the time window (``pipeline/span_ingestor.py``) are dropped,
and the answer then also has ``"rejected": N`` and a ``"message"``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.common import TenantOf, ingest_error_response, read_body
from clearsight.api.traces import TraceSurfaces
from clearsight.ingest import simple_json
from clearsight.ingest.log_common import LogLimits
from clearsight.model.logs import LogBatch
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, UnsupportedMediaType
from clearsight.pipeline.log_ingestor import LogIngestor
from clearsight.store.interface import AppendResult

IngestMetrics = Callable[[str, SampleBatch], Awaitable[AppendResult]]


def _accepted(n: int) -> Response:
    return Response(orjson.dumps({"success": True, "accepted": n}), media_type="application/json")


def make_simple_ingest_routes(
    logs: LogIngestor, ingest_metrics: IngestMetrics, tenant_of: TenantOf, traces: TraceSurfaces,
    limits: LogLimits | None = None,
) -> list[Route]:
    lim = limits or LogLimits()

    async def body_of(request: Request) -> bytes:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise UnsupportedMediaType("expected Content-Type: application/json")
        return await read_body(request, lim.max_body_bytes)

    def log_route(
        decode: Callable[[bytes, LogLimits, int], LogBatch],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                tenant = tenant_of(request)
                body = await body_of(request)
                batch = await asyncio.get_running_loop().run_in_executor(
                    None, decode, body, lim, time.time_ns()
                )
                fut = await asyncio.get_running_loop().run_in_executor(None, logs.submit, tenant, batch)
                result = await logs.wait(fut)
            except IngestError as e:
                return ingest_error_response(e)
            return _accepted(result.entries_written)

        return handler

    async def metrics(request: Request) -> Response:
        try:
            tenant = tenant_of(request)
            body = await body_of(request)
            batch = simple_json.decode_metrics(body, int(time.time() * 1000))
            result = await ingest_metrics(tenant, batch)
        except IngestError as e:
            return ingest_error_response(e)
        return _accepted(result.samples_written)

    async def spans(request: Request) -> Response:
        try:
            tenant = tenant_of(request)
            body = await body_of(request)
        except IngestError as e:
            traces.rejected("simple_traces", e)
            return ingest_error_response(e)
        try:
            now = time.time_ns()
            result = await traces.ingest("simple_traces", tenant, lambda: simple_json.decode_traces(body, lim, now))
        except IngestError as e:
            return ingest_error_response(e)
        traces.ok("simple_traces", 200, result)
        if result.rejected:
            return Response(orjson.dumps({"success": True, "accepted": result.spans_written,
                                          "rejected": result.rejected, "message": result.message}),
                            media_type="application/json")
        return _accepted(result.spans_written)

    return [
        Route(
            "/api/v1/ingest/logs", log_route(simple_json.decode_logs), methods=["POST"], name="simple_logs"
        ),
        Route("/api/v1/ingest/rum", log_route(simple_json.decode_rum), methods=["POST"], name="simple_rum"),
        Route("/api/v1/ingest/metrics", metrics, methods=["POST"], name="simple_metrics"),
        Route("/api/v1/ingest/traces", spans, methods=["POST"], name="simple_traces"),
    ]
