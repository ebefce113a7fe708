"""Query governance at the HTTP surface: admission (503 'unavailable' with Retry-After for query,
query_range and the heavy reads), timeouts enforced by the engine between store reads (503
'timeout'), and a disconnected client's query stopped (the engine sees the cancellation, the
worker is freed, a queued read leaves the queue)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.discovery import make_discovery_handlers
from clearsight.api.prometheus_query import make_query_handlers
from clearsight.api.prometheus_read import make_read_handlers
from clearsight.config import QueryConfig
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SeriesData
from clearsight.query.governor import QueryGovernor, make_query_executor
from clearsight.store.memory import MemorySeriesSelector

H = 3_600_000


class GatedStore:
    """The parts of a MetricsStore the read handlers use. Every read records its thread and waits
    on ``gate`` (set by default); ``entered`` is set when a read starts."""

    def __init__(self) -> None:
        self.mem = MemorySeriesSelector()
        ts = np.arange(0, H + 1, 15_000, dtype=np.int64)
        for i in range(3):
            self.mem.add((("__name__", "a"), ("i", str(i))), ts, np.arange(ts.size, dtype=np.float64))
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.reads: list[str] = []

    def _wait(self) -> None:
        self.reads.append(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(30)

    def querier(self, tenant: str) -> Any:
        store = self

        class Q:
            def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
                store._wait()
                return store.mem.select(matchers, start_ms, end_ms)

        return Q()

    def series(self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int,
               limit: int | None = None) -> list[Labels]:
        self._wait()
        return []

    def label_names(self, tenant: str, *a: Any) -> list[str]:
        self._wait()
        return []

    def label_values(self, tenant: str, *a: Any) -> list[str]:
        self._wait()
        return []

    def metadata(self, tenant: str, *a: Any) -> dict[str, Any]:
        self._wait()
        return {}


def app_for(store: GatedStore, cfg: QueryConfig, gov: QueryGovernor) -> Starlette:
    tenant: Callable[[Request], str] = lambda r: r.headers.get("x-scope-orgid", "default")  # noqa: E731
    q = make_query_handlers(store, cfg, tenant, gov)  # type: ignore[arg-type]
    r = make_read_handlers(store, tenant, gov)  # type: ignore[arg-type]
    d = make_discovery_handlers(store, tenant, gov)  # type: ignore[arg-type]

    async def health(_: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[
        Route("/health", health), Route("/api/v1/query", q["query"]), Route("/api/v1/query_range", q["query_range"]),
        Route("/api/v1/series", r["series"]), Route("/api/v1/labels", r["labels"]),
        Route("/api/v1/label/{name}/values", r["label_values"]), Route("/api/v1/catalog", d["catalog"]),
    ])


def test_queries_and_heavy_reads_get_503_unavailable_with_retry_after_when_the_queue_is_full() -> None:
    store = GatedStore()
    cfg = QueryConfig(max_concurrency=1, max_queue=0, max_queue_duration="7s")
    gov = QueryGovernor(make_query_executor(1), 1, 0, 7.0)
    app = app_for(store, cfg, gov)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            store.gate.clear()
            first = asyncio.create_task(c.get("/api/v1/query", params={"query": "a", "time": "3600"}))
            assert await loop.run_in_executor(None, store.entered.wait, 30)
            refused = [await c.get("/api/v1/query", params={"query": "a", "time": "3600"}),
                       await c.get("/api/v1/query_range", params={"query": "a", "start": "0", "end": "3600",
                                                                  "step": "60"}),
                       await c.get("/api/v1/series", params={"match[]": "a"}),
                       await c.get("/api/v1/labels"),
                       await c.get("/api/v1/label/i/values"),
                       await c.get("/api/v1/catalog")]
            health = await c.get("/health")
            store.gate.set()
            ok = await first
        for resp in refused:
            assert resp.status_code == 503
            body = resp.json()
            assert body["status"] == "error" and body["errorType"] == "unavailable"
            assert "query.max_queue=0" in body["error"]
            assert resp.headers["retry-after"] == "7"
        assert health.status_code == 200
        assert ok.status_code == 200 and len(ok.json()["data"]["result"]) == 3
        assert store.reads == ["clearsight-query_0"]  # the refused reads never touched the store
        assert gov.stats().rejected_full == 6

    asyncio.run(main())


def test_timeout_is_enforced_between_store_reads_as_503_timeout() -> None:
    """The store read outlives the 500 ms deadline: the engine stops right after it (no aggregation,
    no 200), for the ``timeout`` parameter and for the server's ``query.timeout`` alike. (500 ms, not
    less: the request must reach the store read before the deadline, also on a loaded CI machine.)"""
    for cfg, params in ((QueryConfig(), {"timeout": "500ms"}), (QueryConfig(timeout="500ms"), {"timeout": "1m"})):
        store = GatedStore()
        gov = QueryGovernor(make_query_executor(1), 1, 10, 10.0)
        app = app_for(store, cfg, gov)

        async def main(params: dict[str, str] = params, store: GatedStore = store,
                       app: Starlette = app) -> httpx.Response:
            loop = asyncio.get_running_loop()
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                store.gate.clear()
                task = asyncio.create_task(c.get("/api/v1/query", params={"query": "sum(a)", "time": "3600", **params}))
                assert await loop.run_in_executor(None, store.entered.wait, 30)
                await asyncio.sleep(0.8)  # the deadline passes while the store read is held
                store.gate.set()
                return await task

        resp = asyncio.run(main())
        assert resp.status_code == 503
        assert resp.json()["errorType"] == "timeout"
        assert resp.json()["error"].startswith("query timed out in expression evaluation")
        assert len(store.reads) == 1


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _send_get(port: int, path: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return s


def _until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not cond():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


def test_a_disconnected_clients_query_stops_and_frees_its_worker() -> None:
    store = GatedStore()
    gov = QueryGovernor(make_query_executor(1), 1, 10, 30.0)
    app = app_for(store, QueryConfig(), gov)
    with serve(app) as port:
        store.gate.clear()
        running = _send_get(port, "/api/v1/query?query=a%20%2B%20a&time=3600")
        assert store.entered.wait(30)
        queued = _send_get(port, "/api/v1/series?match[]=a")
        _until(lambda: gov.stats().queued == 1)
        queued.close()  # gone while waiting for a slot: leaves the queue without running
        _until(lambda: gov.stats().queued == 0)
        running.close()  # gone while its query reads the store
        _until(lambda: gov.stats().canceled == 2)
        store.gate.set()
        _until(lambda: gov.stats().running == 0)  # the worker is free again
        # The engine saw the cancellation after the first read: the right side of a + b was never
        # read, and the series read never ran.
        assert len(store.reads) == 1
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            assert c.get("/api/v1/query", params={"query": "a", "time": "3600"}).status_code == 200
