"""OTLP/gRPC receiver: ``MetricsService/Export``, ``LogsService/Export`` and ``TraceService/Export``
(spans stored through ``api/traces.py``; without ``traces_export`` grpcio answers UNIMPLEMENTED). The
same server mounts ``extra_handlers`` (the event service, ``api/events_grpc.py``).

Requests arrive as raw bytes (no generated servicer) and go through the same decoder as OTLP/HTTP.
Errors map to gRPC codes per the OTLP specification, with a ``google.rpc.Status`` in the
``grpc-status-details-bin`` trailer (and, when retryable, the ``RetryInfo`` alone in
``google.rpc.retryinfo-bin``, which the OpenTelemetry Python exporter reads):

- bad data -> INVALID_ARGUMENT with a ``BadRequest`` naming the field (clients do not retry);
- too large -> RESOURCE_EXHAUSTED without ``RetryInfo`` (not retried);
- store overloaded (HTTP 429) -> RESOURCE_EXHAUSTED with ``RetryInfo``; store not ready (503) ->
  UNAVAILABLE with ``RetryInfo`` (both retried after the delay).

The answer is sent after the batch is committed (``ingest_blocking`` returns), with
``partial_success`` when points were dropped. gRPC-level compression (gzip) is handled by grpcio;
the maximum message size is ``limits.max_decompressed_bytes``. At most ``max_concurrent_rpcs``
calls (default twice the worker threads) are admitted at once, each holding at most one message;
beyond it grpcio answers RESOURCE_EXHAUSTED at once (clients retry), so memory stays bounded.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from clearsight.api.otlp_http import (
    ExportOutcome,
    OnExport,
    grpc_code_of,
    partial_success,
    retry_after_seconds,
    status_message,
)
from clearsight.ingest.otlp_metrics import DEFAULT_OPTIONS, OtlpOptions, convert_protobuf
from clearsight.lazy_module import lazy_module
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, PayloadTooLarge
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.interface import AppendResult

if TYPE_CHECKING:
    import grpc
else:  # imported on first use: a server without a gRPC listener never loads grpcio (~12 MiB of RSS)
    grpc = lazy_module("grpc")

log = logging.getLogger("clearsight.api.otlp_grpc")

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
IngestBlocking = Callable[[str, SampleBatch], AppendResult]
# (tenant, ExportLogsServiceRequest bytes) -> None once committed; raises IngestError.
LogsExport = Callable[[str, bytes], None]
# (tenant, ExportTraceServiceRequest bytes) -> the serialized response once committed; raises IngestError.
TracesExport = Callable[[str, bytes], bytes]
# Called with the request's invocation metadata as (key, value) pairs (keys are lower case).
TenantOfMetadata = Callable[[Sequence[tuple[str, str | bytes]]], str]

@functools.cache
def _codes() -> dict[int, grpc.StatusCode]:
    return {sc.value[0]: sc for sc in grpc.StatusCode}
_MAX_GRPC_MESSAGE = 2**31 - 1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def abort_ingest(context: grpc.ServicerContext, e: IngestError) -> None:
    """Ends the call with the gRPC status of ``e`` and a ``google.rpc.Status`` trailer (+ RetryInfo)."""
    st = status_message(e)
    trailers: list[tuple[str, bytes]] = [("grpc-status-details-bin", st.SerializeToString())]
    delay = retry_after_seconds(e)
    if delay is not None:
        # The RetryInfo alone too: the Python SDK's exporter reads this trailer.
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=delay))
        trailers.append(("google.rpc.retryinfo-bin", info.SerializeToString()))
    context.set_trailing_metadata(tuple(trailers))
    context.abort(_codes()[grpc_code_of(e)], e.message)


class _RawExport:
    """Logs and traces: the message bytes go to ``export`` (which decodes and commits); its answer,
    or ``empty_response`` when it answers None, is the response."""

    def __init__(self, export: Callable[[str, bytes], bytes | None], limits: WriteLimits,
                 tenant_of_metadata: TenantOfMetadata, empty_response: bytes) -> None:
        self._export = export
        self._limits = limits
        self._tenant_of = tenant_of_metadata
        self._empty = empty_response

    def export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        out: bytes | None = None
        try:
            tenant = self._tenant_of([(m[0], m[1]) for m in (context.invocation_metadata() or ())])
            if len(request) > self._limits.max_decompressed_bytes:
                raise PayloadTooLarge(f"message of {len(request)} bytes exceeds the limit of "
                                      f"{self._limits.max_decompressed_bytes} bytes")
            out = self._export(tenant, request)
        except IngestError as e:
            abort_ingest(context, e)
        return self._empty if out is None else out


class _MetricsExport:
    def __init__(
        self,
        ingest_blocking: IngestBlocking,
        limits: WriteLimits,
        tenant_of_metadata: TenantOfMetadata,
        options: OtlpOptions,
        on_export: OnExport | None,
        clock_ms: Callable[[], int],
    ) -> None:
        self._ingest = ingest_blocking
        self._limits = limits
        self._tenant_of = tenant_of_metadata
        self._options = options
        self._on_export = on_export
        self._clock_ms = clock_ms

    def _report(self, outcome: ExportOutcome) -> None:
        if self._on_export is not None:
            try:
                self._on_export(outcome)
            except Exception:
                log.exception("on_export callback failed")

    def export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            metadata = [(m[0], m[1]) for m in (context.invocation_metadata() or ())]
            try:
                tenant = self._tenant_of(metadata)
            except IngestError:
                raise
            except Exception as e:
                self._report(ExportOutcome("otlp_grpc", 401, "unauthenticated"))
                context.abort(grpc.StatusCode.UNAUTHENTICATED, f"cannot determine the tenant: {e}")
            if len(request) > self._limits.max_decompressed_bytes:
                raise PayloadTooLarge(
                    f"message of {len(request)} bytes exceeds the limit of "
                    f"{self._limits.max_decompressed_bytes} bytes"
                )
            decoded = convert_protobuf(
                request, limits=self._limits, now_ms=self._clock_ms(), options=self._options
            )
            batch = decoded.batch
            result = self._ingest(tenant, batch) if batch.num_samples or batch.num_histograms else None
        except IngestError as e:
            if e.status >= 500 or e.status == 429:
                log.warning("OTLP/gRPC metrics export rejected (%d): %s", e.status, e.message)
            self._report(ExportOutcome("otlp_grpc", e.status, e.reason))
            abort_ingest(context, e)
        rejected, message = partial_success(decoded, result)
        self._report(
            ExportOutcome(
                "otlp_grpc",
                200,
                "",
                result.samples_written if result else 0,
                batch.num_series,
                rejected,
                batch.exemplars_dropped,
                batch.histograms_dropped,
            )
        )
        resp = metrics_service_pb2.ExportMetricsServiceResponse()
        if rejected or message:
            resp.partial_success.rejected_data_points = rejected
            resp.partial_success.error_message = message
        return resp.SerializeToString()


def start_otlp_grpc_server_on(
    ingest_blocking: IngestBlocking,
    limits: WriteLimits,
    listen: str,
    tenant_of_metadata: TenantOfMetadata,
    *,
    options: OtlpOptions = DEFAULT_OPTIONS,
    on_export: OnExport | None = None,
    credentials: grpc.ServerCredentials | None = None,
    max_workers: int = 8,
    clock_ms: Callable[[], int] = _now_ms,
    max_concurrent_rpcs: int | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    logs_export: LogsExport | None = None,
    traces_export: TracesExport | None = None,
    extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
) -> tuple[grpc.Server, int]:
    """Starts the server; returns it and the bound port (``listen`` may use port 0)."""
    max_msg = min(limits.max_decompressed_bytes, _MAX_GRPC_MESSAGE)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-grpc"),
        maximum_concurrent_rpcs=max_concurrent_rpcs or 2 * max_workers,
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", max_msg),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    svc = _MetricsExport(ingest_blocking, limits, tenant_of_metadata, options, on_export, clock_ms)
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(svc.export),
        },
    )
    handlers = [handler]
    raw: list[tuple[str, Callable[[str, bytes], bytes | None] | None, bytes]] = [
        (LOGS_SERVICE, logs_export, logs_service_pb2.ExportLogsServiceResponse().SerializeToString()),
        (TRACE_SERVICE, traces_export, b"")]
    for service, export, empty in raw:
        if export is not None:
            svc_raw = _RawExport(export, limits, tenant_of_metadata, empty)
            handlers.append(grpc.method_handlers_generic_handler(
                service, {"Export": grpc.unary_unary_rpc_method_handler(svc_raw.export)}))
    server.add_generic_rpc_handlers((*handlers, *extra_handlers))
    try:
        if credentials is not None:
            port = server.add_secure_port(listen, credentials)
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError as e:
        server.stop(None)
        raise OSError(f"cannot listen for OTLP/gRPC on {listen}: {e}") from e
    if not port:
        server.stop(None)
        raise OSError(f"cannot listen for OTLP/gRPC on {listen}")
    server.start()
    return server, port


def start_otlp_grpc_server(
    ingest_blocking: IngestBlocking,
    limits: WriteLimits,
    listen: str,
    tenant_of_metadata: TenantOfMetadata,
    *,
    options: OtlpOptions = DEFAULT_OPTIONS,
    on_export: OnExport | None = None,
    credentials: grpc.ServerCredentials | None = None,
    max_workers: int = 8,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    logs_export: LogsExport | None = None,
    traces_export: TracesExport | None = None,
    extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
) -> grpc.Server:
    """Starts an OTLP/gRPC server on ``listen`` (``host:port``); stop it with ``server.stop(grace)``."""
    server, _ = start_otlp_grpc_server_on(
        ingest_blocking,
        limits,
        listen,
        tenant_of_metadata,
        options=options,
        on_export=on_export,
        credentials=credentials,
        max_workers=max_workers,
        interceptors=interceptors,
        logs_export=logs_export,
        traces_export=traces_export,
        extra_handlers=extra_handlers,
    )
    return server
