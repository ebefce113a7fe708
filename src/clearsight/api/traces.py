"""Trace ingest and the minimal trace read over HTTP, and the OTLP/gRPC ``TraceService/Export`` body.

- ``POST /v1/traces`` (main port and the OTLP/HTTP port; ``traces:write``): OTLP/HTTP, protobuf or
  JSON, gzip/deflate. 200 with an ``ExportTraceServiceResponse`` in the request's encoding after the
  spans are committed, with ``partial_success`` (``rejected_spans``, a message) when spans were dropped
  for their time (``pipeline/span_ingestor.py``); errors as a ``google.rpc.Status`` (400 naming the
  field, 413, 415, 429/503 with Retry-After), the shapes of ``/v1/metrics`` and ``/v1/logs``.
- ``otlp_traces_grpc``: the same for gRPC (``api/otlp_grpc.py`` maps errors to gRPC codes).
- ``GET /api/v1/traces/{trace_id}`` (``traces:read``): the caller's organisation's spans of one
  trace (32 hex digits), ordered by start time: ``{"status": "success", "data": {"traceId", "spans":
  [...], "truncated"}}``: the earliest spans, at most ``MAX_SPANS_PER_TRACE`` and ``MAX_TRACE_BYTES``
  of them (``spans_interface``), ``truncated`` true when the trace has more; 400 for a malformed id,
  404 when the organisation has no span of it; run on the query pool under admission control (503 +
  Retry-After when its queue is full). This is the only trace read: no search, no Tempo or Jaeger
  API, no trace view in the UI yet (a later issue).

Bodies are decoded and submitted in the server's ingest executor, never on the event loop.
Self-metrics: ``clearsight_write_requests_total`` / ``clearsight_rejected_requests_total`` by
protocol (``otlp_traces_http``, ``otlp_traces_grpc``, ``simple_traces``), and the spans committed
and dropped, ``clearsight_ingested_spans_total`` / ``clearsight_rejected_spans_total``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.common import (
    ApiError,
    TenantOf,
    error_response,
    ingest_error_response,
    success,
)
from clearsight.api.otlp_body import OtlpHttpBody
from clearsight.api.otlp_http import error_response as otlp_error_response
from clearsight.api.query_admission import api_error_response, governed, make_governor
from clearsight.config import QueryConfig
from clearsight.ingest import otlp_traces
from clearsight.ingest.log_common import LogLimits
from clearsight.ingest.otlp_common import Encoding, media_type_of
from clearsight.model.spans import SPAN_KINDS, STATUS_CODES, TRACE_ID_BYTES, Span, SpanBatch
from clearsight.pipeline.errors import IngestError
from clearsight.pipeline.span_ingestor import SpanIngestor, SpanIngestResult
from clearsight.query.governor import QueryGovernor
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.spans_interface import SpanStore

log = logging.getLogger("clearsight.api.traces")


def span_json(s: Span) -> dict[str, Any]:
    """One span as the trace read answers it (ids in hex, times as decimal strings of ns)."""
    return {
        "traceId": s.trace_id.hex(), "spanId": s.span_id.hex(), "parentSpanId": s.parent_span_id.hex(),
        "name": s.name, "kind": SPAN_KINDS[s.kind],
        "startTimeUnixNano": str(s.start_ns), "endTimeUnixNano": str(s.end_ns), "durationNs": s.duration_ns,
        "status": {"code": STATUS_CODES[s.status_code], "message": s.status_message},
        "serviceName": s.service_name,
        "attributes": dict(zip(s.attr_keys, s.attr_values, strict=True)),
        "resource": dict(zip(s.resource_keys, s.resource_values, strict=True)),
        "scope": {"name": s.scope_name, "version": s.scope_version},
        "traceState": s.trace_state, "events": s.events, "links": s.links,
    }


def parse_trace_id(text: str) -> bytes:
    """A trace id from a path: 32 hex digits, not all zero; ``ApiError`` (400) otherwise."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != TRACE_ID_BYTES or len(text) != 2 * TRACE_ID_BYTES:
        raise ApiError("bad_data", f"trace id must be {2 * TRACE_ID_BYTES} hex digits, got {text[:80]!r}")
    if raw == bytes(TRACE_ID_BYTES):
        raise ApiError("bad_data", "trace id must not be all zero")
    return raw


def otlp_success(result: SpanIngestResult, encoding: Encoding) -> Response:
    if encoding == "json":
        obj: dict[str, Any] = {}
        if result.rejected or result.message:
            obj["partialSuccess"] = {"rejectedSpans": str(result.rejected), "errorMessage": result.message}
        body = orjson.dumps(obj)
    else:
        body = export_response(result)
    return Response(body, status_code=200, media_type=media_type_of(encoding))


def export_response(result: SpanIngestResult) -> bytes:
    """The serialized ``ExportTraceServiceResponse`` (protobuf; OTLP/HTTP and gRPC)."""
    resp = trace_service_pb2.ExportTraceServiceResponse()
    if result.rejected or result.message:
        resp.partial_success.rejected_spans = result.rejected
        resp.partial_success.error_message = result.message
    return resp.SerializeToString()


class TraceSurfaces:
    """The trace handlers; ``routes()`` mounts them on the main port, ``otlp_route()`` on :4318."""

    def __init__(self, ingestor: SpanIngestor, store: SpanStore, tenant_of: TenantOf, metrics: SelfMetrics, *,
                 limits: LogLimits | None = None, executor: Executor | None = None,
                 governor: QueryGovernor | None = None) -> None:
        self.ingestor = ingestor
        self.governor = governor if governor is not None else make_governor(QueryConfig())
        self.store = store
        self.tenant_of = tenant_of
        self.metrics = metrics
        self.limits = limits or LogLimits()
        self.executor = executor

    # --- self-metrics (also used by api/simple_ingest.py) -------------------------------------------

    def ok(self, protocol: str, status: int, result: SpanIngestResult) -> None:
        self.metrics.requests.labels(protocol, str(status)).inc()
        if result.spans_written:
            self.metrics.spans_ingested.labels(protocol).inc(result.spans_written)
        if result.rejected:
            self.metrics.spans_rejected.labels(protocol).inc(result.rejected)

    def rejected(self, protocol: str, e: IngestError, spans: int = 0) -> None:
        self.metrics.rejected.labels(protocol, e.reason).inc()
        self.metrics.requests.labels(protocol, str(e.status)).inc()
        if spans:
            self.metrics.spans_rejected.labels(protocol).inc(spans)
        if e.status >= 500 or e.status == 429:
            log.warning("%s export rejected (%d): %s", protocol, e.status, e.message)

    async def ingest(self, protocol: str, tenant: str, decode: Callable[[], SpanBatch]) -> SpanIngestResult:
        """Decodes in the executor, submits, awaits the commit; counts the outcome."""
        batch: SpanBatch | None = None
        try:
            batch = await asyncio.get_running_loop().run_in_executor(self.executor, decode)
            result = await self.ingestor.ingest(tenant, batch, self.executor)
        except IngestError as e:
            self.rejected(protocol, e, len(batch) if batch is not None else 0)
            raise
        return result

    # --- OTLP -------------------------------------------------------------------------------------

    async def otlp_traces(self, request: Request) -> Response:
        """OTLP/HTTP traces (protobuf or JSON, gzip/deflate): 200 after commit."""
        req = OtlpHttpBody()
        try:
            await req.read(request, self.tenant_of, self.limits.max_body_bytes)
        except IngestError as e:
            self.rejected("otlp_traces_http", e)
            return otlp_error_response(e, req.encoding)
        try:
            result = await self.ingest("otlp_traces_http", req.tenant, lambda: otlp_traces.decode_traces(
                req.body, req.content_type, req.content_encoding, limits=self.limits))
        except IngestError as e:
            return otlp_error_response(e, req.encoding)
        self.ok("otlp_traces_http", 200, result)
        return otlp_success(result, req.encoding)

    def otlp_traces_grpc(self, tenant: str, message: bytes) -> bytes:
        """OTLP/gRPC ``TraceService/Export``: decodes and commits in the calling (gRPC worker) thread;
        answers the serialized response, raises ``IngestError`` for the gRPC layer to map."""
        batch: SpanBatch | None = None
        try:
            batch = otlp_traces.convert_request(otlp_traces.parse_protobuf(message, self.limits), limits=self.limits)
            result = self.ingestor.ingest_blocking(tenant, batch)
        except IngestError as e:
            self.rejected("otlp_traces_grpc", e, len(batch) if batch is not None else 0)
            raise
        self.ok("otlp_traces_grpc", 200, result)
        return export_response(result)

    # --- the read ---------------------------------------------------------------------------------

    async def get_trace(self, request: Request) -> Response:
        """The spans of one trace of the caller's organisation, ordered by start time (the earliest,
        within the bounds of ``SpanStore.read_trace``)."""
        text = request.path_params["trace_id"]
        try:
            tenant = self.tenant_of(request)
            trace_id = parse_trace_id(text)
            read = await governed(self.governor, request, tenant, lambda: self.store.read_trace(tenant, trace_id))
        except IngestError as e:
            return ingest_error_response(e)
        except ApiError as e:
            return api_error_response(e)
        if not read.spans:
            return error_response(ApiError("not_found", f"trace {text.lower()} not found"))
        return success({"traceId": trace_id.hex(), "spans": [span_json(s) for s in read.spans],
                        "truncated": read.truncated})

    # --- mounting ---------------------------------------------------------------------------------

    def otlp_route(self) -> Route:
        return Route("/v1/traces", self.otlp_traces, methods=["POST"], name="otlp_traces")

    def routes(self) -> list[Route]:
        return [self.otlp_route(),
                Route("/api/v1/traces/{trace_id}", self.get_trace, methods=["GET"], name="trace_by_id")]
