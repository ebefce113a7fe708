"""``POST /v1/metrics``: OTLP/HTTP metrics receiver (binary protobuf and JSON, gzip/deflate).

Answers per the OTLP/HTTP specification:

- 200 with an ``ExportMetricsServiceResponse`` in the request's encoding, after the batch is
  committed; ``partial_success`` is set when points were dropped (points without a value,
  exponential histograms when configured to drop them, samples older than the store's
  out-of-order window) and says why;
- 400 (bad data: never retried by clients), 413 (too large), 415 (unsupported Content-Type or
  Content-Encoding) with a ``google.rpc.Status`` body (``BadRequest`` detail naming the field);
- 429/503 with ``Retry-After`` and a ``RetryInfo`` detail when the store is overloaded or not ready
  (clients retry).

The body of an error answer is encoded like the request (JSON for ``application/json``, binary
protobuf otherwise).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.common import read_body
from clearsight.ingest.events import EventValidationError
from clearsight.ingest.otlp_common import Encoding, OtlpInvalidInput, encoding_of, media_type_of
from clearsight.ingest.otlp_metrics import (
    DEFAULT_OPTIONS,
    DecodedMetrics,
    OtlpOptions,
    decode_otlp_metrics_report,
)
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, Overloaded
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.interface import AppendResult

log = logging.getLogger("clearsight.api.otlp")

IngestFunc = Callable[[str, SampleBatch], Awaitable[AppendResult]]
TenantOf = Callable[[Request], str]


@dataclass
class ExportOutcome:
    """What one export request did, for self-metrics (``on_export`` callback)."""

    protocol: str  # "otlp_http" or "otlp_grpc"
    status: int  # HTTP status answered (the gRPC surface reports the equivalent HTTP status)
    reason: str = ""  # IngestError.reason when rejected
    samples_written: int = 0
    series: int = 0
    rejected_points: int = 0
    exemplars_dropped: int = 0
    histograms_dropped: int = 0


OnExport = Callable[[ExportOutcome], None]


def grpc_code_of(err: IngestError) -> int:
    """The gRPC status code an ingest error maps to (OTLP: INVALID_ARGUMENT is never retried;
    RESOURCE_EXHAUSTED with RetryInfo and UNAVAILABLE are)."""
    if isinstance(err, Overloaded):
        return code_pb2.UNAVAILABLE if err.status == 503 else code_pb2.RESOURCE_EXHAUSTED
    if err.status == 413:
        return code_pb2.RESOURCE_EXHAUSTED  # without RetryInfo: not retryable
    if err.status in (415, 501):
        return code_pb2.UNIMPLEMENTED
    return code_pb2.INVALID_ARGUMENT


def retry_after_seconds(err: IngestError) -> int | None:
    ra = getattr(err, "retry_after", None)
    if ra is None:
        return None
    return max(1, math.ceil(float(ra)))


def status_message(err: IngestError) -> status_pb2.Status:
    """``google.rpc.Status`` for an error, with BadRequest or RetryInfo details."""
    st = status_pb2.Status(code=grpc_code_of(err), message=err.message)
    if isinstance(err, OtlpInvalidInput | EventValidationError):  # the latter: the event gRPC service
        br = error_details_pb2.BadRequest()
        br.field_violations.add(field=err.field, description=err.description)
        detail = any_pb2.Any()
        detail.Pack(br)
        st.details.append(detail)
    ra = retry_after_seconds(err)
    if ra is not None:
        ri = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=ra))
        detail = any_pb2.Any()
        detail.Pack(ri)
        st.details.append(detail)
    return st


def _status_json(err: IngestError) -> bytes:
    obj: dict[str, Any] = {"code": grpc_code_of(err), "message": err.message}
    details: list[dict[str, Any]] = []
    if isinstance(err, OtlpInvalidInput):
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": err.field, "description": err.description}],
            }
        )
    ra = retry_after_seconds(err)
    if ra is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{ra}s"})
    if details:
        obj["details"] = details
    return orjson.dumps(obj)


def error_response(err: IngestError, encoding: Encoding) -> Response:
    headers: dict[str, str] = {}
    ra = retry_after_seconds(err)
    if ra is not None:
        headers["Retry-After"] = str(ra)
    body = _status_json(err) if encoding == "json" else status_message(err).SerializeToString()
    return Response(body, status_code=err.status, media_type=media_type_of(encoding), headers=headers)


def partial_success(decoded: DecodedMetrics, result: AppendResult | None) -> tuple[int, str]:
    """(rejected data points, error message) for the response; (0, "") when all was accepted."""
    rejected = decoded.rejected_points
    messages = list(decoded.messages)
    if result is not None and result.out_of_bounds:
        rejected += result.out_of_bounds
        messages.append(
            f"{result.out_of_bounds} sample(s) older than the store's out-of-order window were dropped"
        )
    return rejected, "; ".join(messages)


def success_response(rejected: int, message: str, encoding: Encoding) -> Response:
    if encoding == "json":
        obj: dict[str, Any] = {}
        if rejected or message:
            obj["partialSuccess"] = {"rejectedDataPoints": str(rejected), "errorMessage": message}
        body = orjson.dumps(obj)
    else:
        resp = metrics_service_pb2.ExportMetricsServiceResponse()
        if rejected or message:
            resp.partial_success.rejected_data_points = rejected
            resp.partial_success.error_message = message
        body = resp.SerializeToString()
    return Response(body, status_code=200, media_type=media_type_of(encoding))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_otlp_metrics_handler(
    ingest: IngestFunc,
    limits: WriteLimits,
    tenant_of: TenantOf,
    *,
    options: OtlpOptions = DEFAULT_OPTIONS,
    on_export: OnExport | None = None,
    clock_ms: Callable[[], int] = _now_ms,
    executor: Executor | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """The request handler behind ``make_otlp_metrics_route`` (for mounting it elsewhere).

    Every body is decompressed and decoded in ``executor`` (the server's bounded ingest pool; the
    loop's default executor when None), never on the event loop: the cost of a body cannot be told
    from its compressed size (8.6 KB of gzip can hold 3 million data points)."""

    def report(outcome: ExportOutcome) -> None:
        if on_export is not None:
            try:
                on_export(outcome)
            except Exception:
                log.exception("on_export callback failed")

    async def otlp_metrics(request: Request) -> Response:
        encoding: Encoding = "protobuf"
        try:
            tenant = tenant_of(request)
            content_type = request.headers.get("content-type", "")
            encoding = encoding_of(content_type)
            body = await read_body(request, limits.max_body_bytes)
            decode = functools.partial(
                decode_otlp_metrics_report,
                body,
                content_type=content_type,
                limits=limits,
                now_ms=clock_ms(),
                content_encoding=request.headers.get("content-encoding"),
                options=options,
            )
            decoded = await asyncio.get_running_loop().run_in_executor(executor, decode)
            batch = decoded.batch
            result = await ingest(tenant, batch) if batch.num_samples or batch.num_histograms else None
        except IngestError as e:
            if e.status >= 500 or e.status == 429:
                log.warning("OTLP metrics export rejected (%d): %s", e.status, e.message)
            report(ExportOutcome("otlp_http", e.status, e.reason))
            return error_response(e, encoding)
        rejected, message = partial_success(decoded, result)
        report(
            ExportOutcome(
                "otlp_http",
                200,
                "",
                result.samples_written if result else 0,
                batch.num_series,
                rejected,
                batch.exemplars_dropped,
                batch.histograms_dropped,
            )
        )
        return success_response(rejected, message, encoding)

    return otlp_metrics


def make_otlp_metrics_route(
    ingest: IngestFunc,
    limits: WriteLimits,
    tenant_of: TenantOf,
    *,
    path: str = "/v1/metrics",
    options: OtlpOptions = DEFAULT_OPTIONS,
    on_export: OnExport | None = None,
    clock_ms: Callable[[], int] = _now_ms,
    executor: Executor | None = None,
) -> Route:
    """``POST /v1/metrics`` as a Starlette route; mount it on any app (main port, :4318)."""
    handler = make_otlp_metrics_handler(
        ingest, limits, tenant_of, options=options, on_export=on_export, clock_ms=clock_ms,
        executor=executor,
    )
    return Route(path, handler, methods=["POST"], name="otlp_metrics")

