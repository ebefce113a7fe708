"""``POST /api/v1/write``: Prometheus remote-write 1.0 and 2.0 receiver, chosen by Content-Type
(``application/x-protobuf;proto=io.prometheus.write.v2.Request`` is 2.0, the rest goes to 1.0's checks).
2.0 answers carry the ``X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`` headers.

204 on success (after commit); 400 for malformed input (clients do not retry); 413 oversize;
415 for a missing Content-Type and unknown content types (checked before the body
is read: a browser cannot send application/x-protobuf without a CORS preflight); 429/503 with
Retry-After when overloaded.
400 naming the count when samples were older than the out-of-order window (the rest is committed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from starlette.requests import Request
from starlette.responses import Response

from clearsight.api.common import TenantOf, ingest_error_response, read_body
from clearsight.ingest.remote_write import (
    NATIVE_AVAILABLE,
    check_content_type,
    decode_write_request,
    snappy_declared_len,
)
from clearsight.ingest.remote_write2 import decode_write_request_v2, is_v2_content_type
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, UnsupportedMediaType
from clearsight.pipeline.ingestor import MetricsIngestor
from clearsight.pipeline.limits import WriteLimits
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.interface import AppendResult

log = logging.getLogger("clearsight.api.remote_write")
PROTOCOL = "remote_write"


def make_remote_write_handler(ingestor: MetricsIngestor, limits: WriteLimits, tenant_of: TenantOf,
                              metrics: SelfMetrics, executor: Executor | None = None,
                              inline_max_bytes: int = 0) -> Callable[[Request], Awaitable[Response]]:
    """Decoding runs in ``executor`` (the server's bounded ingest pool, apart from the pool queries
    use; the loop's default executor when None), except for remote-write 1.0 bodies that declare
    at most ``inline_max_bytes`` decompressed (``server.inline_decode_max_bytes``): those are decoded
    on the event loop by the compiled walk, a bounded cost (2-3 us per KiB) below that of handing
    the request to the pool and back: two thread wake-ups that each have to win the GIL from busy
    query threads."""

    async def remote_write(request: Request) -> Response:
        v2 = False
        try:
            tenant = tenant_of(request)
            content_type = request.headers.get("content-type")
            if not (content_type or "").strip():
                # Prometheus always sends it; a browser cannot send it without a CORS preflight.
                raise UnsupportedMediaType("missing Content-Type: remote-write 1.0 expects 'application/x-protobuf'")
            v2 = is_v2_content_type(content_type)
            if not v2:
                check_content_type(content_type)  # 415 before the body is read
            body = await read_body(request, limits.max_body_bytes)
            decode = functools.partial(
                decode_write_request_v2 if v2 else decode_write_request, body,
                content_encoding=request.headers.get("content-encoding"),
                content_type=content_type, limits=limits)

            def decode_and_submit() -> tuple[SampleBatch, concurrent.futures.Future[AppendResult]]:
                # On the pool (the compiled walk releases the GIL for bodies over 64 KiB), or inline
                # on the loop for a small body (_inline).
                batch = decode()
                return batch, ingestor.submit(tenant, batch)

            if not v2 and _inline(body, inline_max_bytes):
                batch, fut = decode_and_submit()
            else:
                batch, fut = await asyncio.get_running_loop().run_in_executor(executor, decode_and_submit)
            result = await ingestor.wait(fut)
        except IngestError as e:
            metrics.rejected.labels(PROTOCOL, e.reason).inc()
            metrics.requests.labels(PROTOCOL, str(e.status)).inc()
            if e.status >= 500 or e.status == 429:
                log.warning("remote write rejected: %s", e.message)
            resp = ingest_error_response(e)
            if v2:
                resp.headers.update(_written(AppendResult()))
            return resp
        metrics.samples_ingested.labels(PROTOCOL).inc(result.samples_written)
        metrics.series_ingested.labels(PROTOCOL).inc(batch.num_series)
        if batch.exemplars_dropped:
            metrics.exemplars_dropped.labels(PROTOCOL).inc(batch.exemplars_dropped)
        if batch.histograms_dropped:
            metrics.histograms_dropped.labels(PROTOCOL).inc(batch.histograms_dropped)
        if result.out_of_bounds:
            # Prometheus' receiver answers 400 for out-of-bounds samples, so the sender counts the loss
            # and does not retry; the request's other samples ARE committed (as in Prometheus).
            metrics.requests.labels(PROTOCOL, "400").inc()
            return Response(f"out of bounds: {result.out_of_bounds} sample(s) older than the out-of-order window "
                            f"were dropped; the other {result.samples_written} sample(s) were written\n",
                            status_code=400, media_type="text/plain; charset=utf-8",
                            headers=_written(result) if v2 else None)
        metrics.requests.labels(PROTOCOL, "204").inc()
        return Response(status_code=204, headers=_written(result) if v2 else None)

    return remote_write


def _inline(body: bytes, max_bytes: int) -> bool:
    """A remote-write 1.0 body small enough to decode on the event loop (compiled walk only)."""
    if not NATIVE_AVAILABLE or len(body) > max_bytes:
        return False
    try:
        return snappy_declared_len(body) <= max_bytes
    except IngestError:
        return False  # the pool's decode answers it with the precise error


def _written(result: AppendResult) -> dict[str, str]:
    """Remote-write 2.0's response headers: float samples, native histogram samples, exemplars."""
    return {"X-Prometheus-Remote-Write-Samples-Written": str(result.samples_written - result.histograms_written),
            "X-Prometheus-Remote-Write-Histograms-Written": str(result.histograms_written),
            "X-Prometheus-Remote-Write-Exemplars-Written": str(result.exemplars_written)}
