"""Write requests are decoded in the injected ingest pool, not on the event loop: ``/health`` is
answered while a decode is held blocked, and a tiny gzip body of millions of empty data points is
refused by the data-point cap instead of being converted point by point. The one exception,
bounded: remote-write 1.0 bodies of at most ``inline_max_bytes`` decompressed decode on the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import threading
from collections.abc import Callable
from typing import Any

import cramjam
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clearsight.api import otlp_http, prometheus_write
from clearsight.api.otlp_http import make_otlp_metrics_route
from clearsight.api.prometheus_write import make_remote_write_handler
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request, snappy
from clearsight.ingest.prompb_encode import len_field as _field
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.ingestor import MetricsIngestor
from clearsight.pipeline.limits import WriteLimits
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.interface import AppendResult

PB = "application/x-protobuf"


class Gate:
    """Wraps a decode function: records the thread it ran on and holds it until released."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.started = threading.Event()
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.current_thread())
        self.started.set()
        assert self.release.wait(30)
        return self.fn(*args, **kwargs)


async def _health(_: Request) -> Response:
    return PlainTextResponse("ok")


async def _post_while_blocked(app: Starlette, url: str, content: bytes, gate: Gate) -> tuple[int, int, bool, int]:
    """POSTs, waits until the decode is held, asks /health; returns (health status, post status,
    whether the POST was still pending when /health answered, loop thread id)."""
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        post = asyncio.create_task(c.post(url, content=content, headers={"Content-Type": PB}))
        assert await loop.run_in_executor(None, gate.started.wait, 30)
        health = await c.get("/health")
        pending = not post.done()
        gate.release.set()
        resp = await post
    return health.status_code, resp.status_code, pending, threading.get_ident()


def _otlp_body() -> bytes:
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="g")
    m.gauge.data_points.add(time_unix_nano=1_700_000_000_000_000_000, as_double=1.5)
    return req.SerializeToString()


def test_otlp_decode_runs_in_the_ingest_pool_and_health_answers_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(otlp_http.decode_otlp_metrics_report)
    monkeypatch.setattr(otlp_http, "decode_otlp_metrics_report", gate)
    calls: list[SampleBatch] = []

    async def ingest(tenant: str, batch: SampleBatch) -> AppendResult:
        calls.append(batch)
        return AppendResult(samples_written=batch.num_samples)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ingest-test") as pool:
        route = make_otlp_metrics_route(ingest, WriteLimits(), lambda r: "t", executor=pool)
        app = Starlette(routes=[route, Route("/health", _health)])
        health, status, pending, loop_ident = asyncio.run(_post_while_blocked(app, "/v1/metrics", _otlp_body(), gate))
    assert health == 200 and pending  # answered while the decode was held
    assert status == 200 and calls[0].values.tolist() == [1.5]
    (thread,) = gate.threads
    assert thread.name.startswith("ingest-test") and thread.ident != loop_ident


class _Store:
    def __init__(self) -> None:
        self.batches: list[SampleBatch] = []

    def append(self, tenant: str, batch: SampleBatch) -> concurrent.futures.Future[AppendResult]:
        self.batches.append(batch)
        fut: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        fut.set_result(AppendResult(samples_written=batch.num_samples))
        return fut


def test_remote_write_decode_runs_in_the_ingest_pool_and_health_answers_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = Gate(prometheus_write.decode_write_request)
    monkeypatch.setattr(prometheus_write, "decode_write_request", gate)
    store = _Store()
    body = snappy(encode_write_request(WriteRequest(timeseries=[
        TimeSeries(labels=[("__name__", "up")], samples=[(1_700_000_000_000, 1.0)])])))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ingest-test") as pool:
        handler = make_remote_write_handler(MetricsIngestor(store), WriteLimits(),  # type: ignore[arg-type]
                                            lambda r: "t", SelfMetrics(), pool)
        app = Starlette(routes=[Route("/api/v1/write", handler, methods=["POST"]), Route("/health", _health)])
        health, status, pending, loop_ident = asyncio.run(_post_while_blocked(app, "/api/v1/write", body, gate))
    assert health == 200 and pending
    assert status == 204 and store.batches[0].values.tolist() == [1.0]
    (thread,) = gate.threads
    assert thread.name.startswith("ingest-test") and thread.ident != loop_ident


def test_tiny_gzip_of_three_million_empty_points_is_refused_by_the_point_cap() -> None:
    gauge = b"\x0a\x00" * 3_000_000  # Gauge.data_points: 3M empty NumberDataPoints
    metric = _field(1, b"g") + _field(5, gauge)
    raw = _field(1, _field(2, _field(2, metric)))  # resource_metrics.scope_metrics.metrics
    body = gzip.compress(raw, 9)
    assert len(body) < 10_000
    calls: list[SampleBatch] = []

    async def ingest(tenant: str, batch: SampleBatch) -> AppendResult:
        calls.append(batch)
        return AppendResult(samples_written=batch.num_samples)

    async def post() -> httpx.Response:
        app = Starlette(routes=[make_otlp_metrics_route(ingest, WriteLimits(), lambda r: "t")])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post("/v1/metrics", content=body,
                                headers={"Content-Type": PB, "Content-Encoding": "gzip"})

    r = asyncio.run(post())
    assert r.status_code == 400
    from google.rpc import status_pb2

    st = status_pb2.Status.FromString(r.content)
    assert "more than 2000000 data points" in st.message and "max_samples_per_request" in st.message
    assert calls == []


class _Spy:
    """Wraps a decode function and records the thread each call ran on."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.threads: list[threading.Thread] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.current_thread())
        return self.fn(*args, **kwargs)


def snappy_decompress(body: bytes) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(body))


def _rw_body(n_series: int) -> bytes:
    return snappy(encode_write_request(WriteRequest(timeseries=[
        TimeSeries(labels=[("__name__", "up"), ("instance", f"host-{i:05d}")], samples=[(1_700_000_000_000, 1.0)])
        for i in range(n_series)])))


def test_small_remote_write_bodies_decode_on_the_loop_and_larger_ones_in_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """server.inline_decode_max_bytes: a body declaring at most that many bytes decompressed is
    decoded on the event loop (no hand-off to the pool and back); a larger one in the pool; and
    a malformed small body still gets the decoder's precise 400 (from the pool)."""
    spy = _Spy(prometheus_write.decode_write_request)
    monkeypatch.setattr(prometheus_write, "decode_write_request", spy)
    store = _Store()
    small, large = _rw_body(10), _rw_body(2000)
    limit = 4096
    assert len(snappy_decompress(small)) <= limit < len(snappy_decompress(large))

    async def run() -> tuple[list[int], int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            statuses = [(await c.post("/api/v1/write", content=b, headers={"Content-Type": PB})).status_code
                        for b in (small, large, b"\xff\xff\xff\xff\xff\xff")]
        return statuses, threading.get_ident()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ingest-test") as pool:
        handler = make_remote_write_handler(MetricsIngestor(store), WriteLimits(),  # type: ignore[arg-type]
                                            lambda r: "t", SelfMetrics(), pool, inline_max_bytes=limit)
        app = Starlette(routes=[Route("/api/v1/write", handler, methods=["POST"])])
        statuses, loop_ident = asyncio.run(run())
    assert statuses == [204, 204, 400]
    assert [b.num_series for b in store.batches] == [10, 2000]
    on_loop, in_pool, bad = spy.threads
    assert on_loop.ident == loop_ident
    assert in_pool.name.startswith("ingest-test") and bad.name.startswith("ingest-test")
