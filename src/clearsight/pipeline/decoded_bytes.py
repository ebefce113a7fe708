"""Decompressed request bytes held at once, by every write request being decoded together.

``BodyLimitMiddleware`` bounds the *compressed* bytes of the bodies in flight
(``server.max_inflight_body_bytes``), but a body grows when it is decompressed: a 32 MiB snappy or
gzip body may expand to ``limits.max_decompressed_bytes`` (256 MiB), and each of the
``server.ingest_workers`` threads may hold one. ``DecodedBytes`` is the global cap over what the
decoders hold (``server.max_inflight_decoded_bytes``): a snappy body (remote-write, Loki push)
holds its declared length before it is decompressed; a gzip or deflate body (OTLP/HTTP, logs)
holds its output as it is inflated, each step of at most 16 MiB once made and before the next.
A request that cannot get its bytes now is answered 503 with ``Retry-After``, and nothing of it is
written. The hold ends when the pool's call returns (the body has been parsed), or, for a batch
queued for the store from within that call (remote-write: ``MetricsIngestor.submit`` calls
``keep_until``), when the batch is committed: a queued batch is about as large as its
decompressed body.

Thread-safe: decoders run on the ingest pool, small bodies on the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

from clearsight.pipeline.errors import Overloaded

SETTING = "server.max_inflight_decoded_bytes"


class DecodedBytes:
    """The global cap; ``limit`` 0 means unbounded (bytes are still counted)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        self.refused = 0  # requests answered 503 by this cap
        self._lock = threading.Lock()

    def hold(self, n: int = 0) -> Hold:
        """A hold of ``n`` bytes (more can be added with ``Hold.grow``), released when the ``with``
        block it is used in ends. Raises ``Overloaded`` (503) when ``n`` does not fit now."""
        h = Hold(self)
        h.grow(n)
        return h

    def _take(self, n: int) -> None:
        with self._lock:
            if self.limit and self.held + n > self.limit and self.held:
                # A request alone is never refused here: its size is bounded by
                # max_decompressed_bytes, which the configuration keeps at or below the cap.
                self.refused += 1
                raise Overloaded(
                    f"too many decompressed request bytes in flight (limit {self.limit} bytes, {SETTING}): "
                    "retry later", retry_after=1.0, status=503)
            self.held += n
            if self.held > self.peak:
                self.peak = self.held

    def _give_back(self, n: int) -> None:
        with self._lock:
            self.held -= n


class Hold:
    """Bytes one request holds; a context manager that gives them back on exit."""

    __slots__ = ("_budget", "bytes")

    def __init__(self, budget: DecodedBytes) -> None:
        self._budget = budget
        self.bytes = 0

    def grow(self, n: int) -> None:
        """Holds ``n`` more bytes, or raises ``Overloaded`` (what is held stays held until exit)."""
        if n > 0:
            self._budget._take(n)
            self.bytes += n

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.bytes:
            self._budget._give_back(self.bytes)
            self.bytes = 0


_current: ContextVar[Hold | None] = ContextVar("decoded_bytes_hold", default=None)


def grow_current(n: int) -> None:
    """Holds ``n`` more bytes for the request decoded on this thread (``HoldingPool``), if any:
    called by the decompressors just before they create that output."""
    hold = _current.get()
    if hold is not None:
        hold.grow(n)


def keep_until(fut: Future[Any]) -> None:
    """The current hold's bytes stay held until ``fut`` is done, past the end of the pool's call:
    the batch decoded from them waits in the store's write queue until its commit, and is about as
    large as the decompressed body (its label bytes, its samples)."""
    hold = _current.get()
    if hold is None or not hold.bytes:
        return
    n, hold.bytes = hold.bytes, 0
    budget = hold._budget
    fut.add_done_callback(lambda _f: budget._give_back(n))


T = TypeVar("T")


class HoldingPool(Executor):
    """The ingest pool: each call runs in a hold of its own, made current for the decompressors
    (``grow_current``) and released when the call returns. Requests decoded on the event loop
    (bodies of at most ``server.inline_decode_max_bytes``) hold nothing."""

    def __init__(self, pool: Executor, budget: DecodedBytes) -> None:
        self.pool = pool
        self.budget = budget

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        budget = self.budget

        def held() -> T:
            with budget.hold() as hold:
                token = _current.set(hold)
                try:
                    return fn(*args, **kwargs)
                finally:
                    _current.reset(token)

        return self.pool.submit(held)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


__all__ = ["SETTING", "DecodedBytes", "Hold", "HoldingPool", "grow_current", "keep_until"]
