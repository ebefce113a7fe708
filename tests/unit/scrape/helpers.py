"""Test helpers: a real HTTP exposition server in a thread, and an in-memory sink."""

from __future__ import annotations

import gzip
import math
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clearsight.model.labels import Labels
from clearsight.model.samples import MetricMetadata, SampleBatch, is_stale_nan
from clearsight.store.interface import AppendResult


@dataclass
class Exposition:
    body: str = ""
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    status: int = 200
    gzip: bool = False
    delay: float = 0.0


class ExpositionServer:
    """Serves ``exposition`` on 127.0.0.1 (free port); change it between scrapes."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.exposition = Exposition()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                e = outer.exposition
                if e.delay:
                    outer._release.wait(e.delay)
                data = e.body.encode()
                self.send_response(e.status)
                self.send_header("Content-Type", e.content_type)
                if e.gzip:
                    data = gzip.compress(data)
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@dataclass
class Point:
    labels: Labels
    ts: int
    value: float

    @property
    def stale(self) -> bool:
        return is_stale_nan(self.value)


@dataclass
class MemorySink:
    """Collects written batches as points; ``fail`` makes the next writes raise."""

    batches: list[list[Point]] = field(default_factory=list)
    metadata: list[MetricMetadata] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)
    fail: Exception | None = None

    async def __call__(self, tenant: str, batch: SampleBatch) -> AppendResult:
        if self.fail is not None:
            raise self.fail
        pts = []
        labels = [batch.decode_labels(k) for k in batch.keys]
        for i, t, v in zip(
            batch.series_idx.tolist(), batch.timestamps.tolist(), batch.values.tolist(), strict=True
        ):
            pts.append(Point(labels[i], t, v))
        self.batches.append(pts)
        self.metadata.extend(batch.metadata)
        self.tenants.append(tenant)
        return AppendResult(samples_written=len(pts))

    @property
    def points(self) -> list[Point]:
        return [p for b in self.batches for p in b]

    def last(self, name: str, **match: str) -> list[Point]:
        """Points of metric ``name`` (and label values) in the last batch."""
        return select(self.batches[-1], name, **match)


def select(points: list[Point], name: str, **match: str) -> list[Point]:
    out = []
    for p in points:
        d = dict(p.labels)
        if d.get("__name__") == name and all(d.get(k) == v for k, v in match.items()):
            out.append(p)
    return out


def value(points: list[Point]) -> float:
    assert len(points) == 1, points
    return points[0].value


def wait_for(cond: Callable[[], bool], deadline_s: float = 30.0) -> None:
    """Polls ``cond`` (a guard against hanging forever, not a timing assertion)."""
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def is_nan(v: float) -> bool:
    return math.isnan(v)


async def wait_for_async(cond: Callable[[], bool], deadline_s: float = 30.0) -> None:
    """Async polling of ``cond`` (a guard against hanging forever, not a timing assertion)."""
    import asyncio

    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)
