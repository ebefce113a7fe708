"""Log and event ingest over HTTP: Loki push, OTLP/HTTP logs, Elasticsearch ``_bulk`` (and the probes
shippers send first), the native event API and Falco.

Every body is read with a size bound, then decoded *and* submitted in the server's ingest executor
(never on the event loop: a small gzip body can hold a large batch); the handler answers only
after the log store committed the batch. Nothing of a rejected request is written.

- ``POST /loki/api/v1/push``: 204; errors as Loki answers them (plain text, 400/413/415/429/503).
- ``POST /v1/logs``: OTLP/HTTP, 200 with an ``ExportLogsServiceResponse`` in the request's encoding;
  errors as a ``google.rpc.Status`` (the same shapes as ``/v1/metrics``).
- ``POST /_bulk``, ``POST /{index}/_bulk``: Elasticsearch's bulk response (per-item status,
  ``errors``); a malformed body or a refused write is one Elasticsearch error body.
  ``GET /``, ``/_license``, ``/_template/{name}``, ``/_index_template/{name}``: the probe answers.
- ``POST /api/v1/events``: 200 ``{"accepted": n, "ids": [...]}``; ``POST /api/v1/falco``: 200
  ``{"accepted": n}``; errors ``{"status": "error", "error": ..., "reason": ...}`` (400 naming the field).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.common import TenantOf, ingest_error_response, json_response, read_body
from clearsight.api.otlp_body import OtlpHttpBody
from clearsight.api.otlp_http import error_response as otlp_error_response
from clearsight.ingest import es_bulk, events, falco, loki_push, otlp_logs
from clearsight.ingest.log_common import LogLimits
from clearsight.ingest.otlp_common import media_type_of
from clearsight.model.logs import Event, LogBatch
from clearsight.pipeline.errors import IngestError
from clearsight.pipeline.event_entries import events_batch
from clearsight.pipeline.log_ingestor import LogIngestor
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.logs_interface import LogAppendResult

log = logging.getLogger("clearsight.api.logs")
Handler = Callable[[Request], Awaitable[Response]]
Submitted = tuple[Any, "concurrent.futures.Future[LogAppendResult] | None"]


class LogIngestSurfaces:
    """The handlers; ``routes()`` mounts them (main port), ``otlp_route()`` for the OTLP/HTTP port."""

    def __init__(self, ingestor: LogIngestor, tenant_of: TenantOf, metrics: SelfMetrics, *,
                 limits: LogLimits | None = None, executor: Executor | None = None,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.ingestor = ingestor
        self.tenant_of = tenant_of
        self.metrics = metrics
        self.limits = limits or LogLimits()
        self.executor = executor
        self.clock_ns = clock_ns

    # --- shared -----------------------------------------------------------------------------------

    async def _run(self, tenant: str, decode: Callable[[], tuple[Any, LogBatch]]) -> tuple[Any, LogAppendResult]:
        """Decodes and submits in the executor, then awaits the commit."""

        def work() -> Submitted:
            extra, batch = decode()
            return extra, (self.ingestor.submit(tenant, batch) if len(batch) else None)

        extra, fut = await asyncio.get_running_loop().run_in_executor(self.executor, work)
        result = await self.ingestor.wait(fut) if fut is not None else LogAppendResult()
        return extra, result

    def _ok(self, protocol: str, status: int, result: LogAppendResult) -> None:
        self.metrics.requests.labels(protocol, str(status)).inc()
        if result.entries_written:
            self.metrics.log_lines_ingested.labels(protocol).inc(result.entries_written)
            self.metrics.log_bytes_ingested.labels(protocol).inc(result.bytes_written)

    def _rejected(self, protocol: str, e: IngestError) -> None:
        self.metrics.rejected.labels(protocol, e.reason).inc()
        self.metrics.requests.labels(protocol, str(e.status)).inc()
        if e.status >= 500 or e.status == 429:
            log.warning("%s push rejected (%d): %s", protocol, e.status, e.message)

    # --- Loki -------------------------------------------------------------------------------------

    async def loki_push(self, request: Request) -> Response:
        """Loki push API (snappy protobuf or JSON, gzip): 204 after commit."""
        try:
            tenant = self.tenant_of(request)
            ctype = request.headers.get("content-type")
            loki_push.media_kind(ctype)  # 415 before the body is read
            body = await read_body(request, self.limits.max_body_bytes)
            enc = request.headers.get("content-encoding")
            _, result = await self._run(tenant, lambda: (None, loki_push.decode_push(body, ctype, enc, self.limits)))
        except IngestError as e:
            self._rejected("loki_push", e)
            return ingest_error_response(e)
        self._ok("loki_push", 204, result)
        return Response(status_code=204)

    # --- OTLP -------------------------------------------------------------------------------------

    async def otlp_logs(self, request: Request) -> Response:
        """OTLP/HTTP logs (protobuf or JSON, gzip/deflate): 200 after commit."""
        req = OtlpHttpBody()
        try:
            await req.read(request, self.tenant_of, self.limits.max_body_bytes)
            now = self.clock_ns()
            _, result = await self._run(req.tenant, lambda: (None, otlp_logs.decode_logs(
                req.body, req.content_type, req.content_encoding, now_ns=now, limits=self.limits)))
        except IngestError as e:
            self._rejected("otlp_logs_http", e)
            return otlp_error_response(e, req.encoding)
        self._ok("otlp_logs_http", 200, result)
        if req.encoding == "json":
            out = b"{}"
        else:
            out = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
        return Response(out, status_code=200, media_type=media_type_of(req.encoding))

    def otlp_logs_grpc(self, tenant: str, message: bytes) -> None:
        """OTLP/gRPC ``LogsService/Export``: decodes and commits in the calling (gRPC worker) thread;
        raises ``IngestError`` for the gRPC layer to map to a status."""
        try:
            batch = otlp_logs.convert_request(otlp_logs.parse_protobuf(message, self.limits), now_ns=self.clock_ns(),
                                              limits=self.limits)
            result = self.ingestor.ingest_blocking(tenant, batch) if len(batch) else LogAppendResult()
        except IngestError as e:
            self._rejected("otlp_logs_grpc", e)
            raise
        self._ok("otlp_logs_grpc", 200, result)

    # --- Elasticsearch ----------------------------------------------------------------------------

    def _es(self, obj: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(obj), status_code=status, media_type="application/json",
                        headers=es_bulk.PRODUCT_HEADERS)

    async def es_bulk(self, request: Request) -> Response:
        """Elasticsearch bulk API (NDJSON index/create actions): the bulk response after commit."""
        t0 = time.perf_counter()
        index = request.path_params.get("index")
        try:
            tenant = self.tenant_of(request)
            body = await read_body(request, self.limits.max_body_bytes)
            enc = request.headers.get("content-encoding")
            now = self.clock_ns()

            def decode() -> tuple[Any, LogBatch]:
                res = es_bulk.decode_bulk(body, now_ns=now, default_index=index, content_encoding=enc,
                                          limits=self.limits)
                return res, res.batch

            bulk, result = await self._run(tenant, decode)
        except es_bulk.EsBulkError as e:
            self._rejected("es_bulk", e)
            return self._es(e.response(), 400)
        except IngestError as e:
            self._rejected("es_bulk", e)
            etype = "es_rejected_execution_exception" if e.status in (429, 503) else "illegal_argument_exception"
            resp = self._es(es_bulk.error_response(etype, e.message, e.status), e.status)
            ra = getattr(e, "retry_after", None)
            if ra is not None:
                resp.headers["Retry-After"] = str(max(1, int(ra + 0.999)))
            return resp
        self._ok("es_bulk", 200, result)
        return self._es(bulk.response(int((time.perf_counter() - t0) * 1000)))

    async def es_root(self, request: Request) -> Response:
        """Elasticsearch probe: cluster and version information."""
        if request.method == "HEAD":
            return Response(status_code=200, headers=es_bulk.PRODUCT_HEADERS)
        return self._es(es_bulk.root_info())

    async def es_license(self, request: Request) -> Response:
        """Elasticsearch probe: an active basic license."""
        return self._es(es_bulk.license_info())

    async def es_template(self, request: Request) -> Response:
        """Elasticsearch probe: the template exists (shippers skip installing one)."""
        if request.method == "PUT":
            return self._es({"acknowledged": True})
        if request.method == "HEAD":
            return Response(status_code=200, headers=es_bulk.PRODUCT_HEADERS)
        return self._es(es_bulk.template_answer(request.path_params["name"]))

    # --- events -----------------------------------------------------------------------------------

    async def _events(self, request: Request, protocol: str,
                      decode: Callable[[bytes, int], list[Event]]) -> tuple[list[Event] | None, Response | None]:
        try:
            tenant = self.tenant_of(request)
            body = await read_body(request, self.limits.max_body_bytes)
            now = self.clock_ns()

            def work() -> tuple[Any, LogBatch]:
                evs = decode(body, now)
                return evs, events_batch(evs)

            evs, result = await self._run(tenant, work)
        except IngestError as e:
            self._rejected(protocol, e)
            return None, json_response({"status": "error", "error": e.message, "reason": e.reason}, e.status,
                                       headers=_retry_headers(e))
        self._ok(protocol, 200, result)
        return evs, None

    async def post_events(self, request: Request) -> Response:
        """Events (one object, an array, or {"events": [...]}): 200 with the ids after commit."""
        evs, err = await self._events(request, "events",
                                      lambda b, now: events.decode_events(b, now_ns=now, limits=self.limits))
        if err is not None or evs is None:
            return err or Response(status_code=500)
        return json_response({"accepted": len(evs), "ids": [ev.id for ev in evs]})

    def events_grpc(self, tenant: str, evs: list[Event]) -> None:
        """The event gRPC service's ``Log``/``LogStream`` (``api/events_grpc.py``): commits validated
        events in the calling (gRPC worker) thread; raises ``IngestError``."""
        try:
            result = self.ingestor.ingest_blocking(tenant, events_batch(evs))
        except IngestError as e:
            self._rejected("events_grpc", e)
            raise
        self._ok("events_grpc", 200, result)

    async def post_falco(self, request: Request) -> Response:
        """Falco / falcosidekick alerts (JSON object, array or NDJSON): 200 after commit."""
        evs, err = await self._events(request, "falco", lambda b, _now: falco.decode_falco(b, limits=self.limits))
        if err is not None or evs is None:
            return err or Response(status_code=500)
        return json_response({"accepted": len(evs)})

    # --- mounting ---------------------------------------------------------------------------------

    def otlp_route(self) -> Route:
        return Route("/v1/logs", self.otlp_logs, methods=["POST"], name="otlp_logs")

    def routes(self) -> list[Route]:
        return [
            Route("/loki/api/v1/push", self.loki_push, methods=["POST"], name="loki_push"),
            self.otlp_route(),
            Route("/_bulk", self.es_bulk, methods=["POST", "PUT"], name="es_bulk"),
            Route("/{index}/_bulk", self.es_bulk, methods=["POST", "PUT"], name="es_bulk_index"),
            Route("/", self.es_root, methods=["GET", "HEAD"], name="es_root"),
            Route("/_license", self.es_license, methods=["GET"], name="es_license"),
            Route("/_template/{name}", self.es_template, methods=["GET", "HEAD", "PUT"], name="es_template"),
            Route("/_index_template/{name}", self.es_template, methods=["GET", "HEAD", "PUT"],
                  name="es_index_template"),
            Route("/api/v1/events", self.post_events, methods=["POST"], name="post_events"),
            Route("/api/v1/falco", self.post_falco, methods=["POST"], name="post_falco"),
        ]


def _retry_headers(e: IngestError) -> dict[str, str] | None:
    ra = getattr(e, "retry_after", None)
    return {"Retry-After": str(max(1, int(ra + 0.999)))} if ra is not None else None
