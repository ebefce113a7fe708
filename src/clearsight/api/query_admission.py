"""The HTTP side of query governance: every query and heavy read (query, query_range, series,
labels, label values, metadata, catalog, latest) goes through ``run_read``:

- it waits for a slot of the ``QueryGovernor`` (bounded, fair per tenant) and runs on the query
  pool, never on the default executor;
- no capacity: 503 with Prometheus' envelope (``errorType`` "unavailable") and ``Retry-After``;
- the request's deadline (``timeout`` parameter, at most ``query.timeout``) counts from arrival, so
  time spent queued is part of it ("query timed out in query queue");
- a client that disconnects sets the query's cancel event (the engine checks it at every node,
  store read and window loop) or, while the read still waits for a slot, takes it out of the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from clearsight.api.common import ApiError, error_response, json_response
from clearsight.config import QueryConfig, parse_duration_ms
from clearsight.query.budget import QueryCanceled
from clearsight.query.governor import (
    Overloaded,
    QueryGovernor,
    QueueTimeout,
    default_concurrency,
    make_query_executor,
)

T = TypeVar("T")
WATCH_AFTER_S = 0.02


class Unavailable(ApiError):
    """503 ``unavailable`` with a ``Retry-After`` (seconds)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__("unavailable", message)
        self.retry_after = retry_after


def api_error_response(err: ApiError) -> Response:
    """``common.error_response`` plus ``Retry-After`` for ``Unavailable``."""
    if isinstance(err, Unavailable):
        return json_response({"status": "error", "errorType": err.error_type, "error": err.message}, err.status,
                             headers={"Retry-After": str(max(1, math.ceil(err.retry_after)))})
    return error_response(err)


class Deadline:
    """A request's time budget, started when it arrived."""

    def __init__(self, timeout_s: float, start: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.timeout_s = timeout_s
        self.at = (clock() if start is None else start) + timeout_s

    def remaining(self) -> float:
        return self.at - self.clock()


NO_DEADLINE = float("inf")


async def run_read(governor: QueryGovernor, request: Request, tenant: str,
                   fn: Callable[[threading.Event, float], T], deadline: Deadline) -> T:
    """Runs ``fn(cancel, remaining_timeout_s)`` under admission control on the query pool, watching
    for the client to go away. Raises ``ApiError`` for overload, queue timeout and cancellation;
    whatever ``fn`` raises passes through."""
    cancel = threading.Event()
    started = threading.Event()

    def work() -> T:
        started.set()
        if cancel.is_set():
            raise QueryCanceled("query was canceled before it started")
        return fn(cancel, deadline.remaining())

    task: asyncio.Future[T] = asyncio.ensure_future(governor.run(tenant, work, deadline.remaining()))
    gone = False

    async def watch() -> None:
        # Waits on the ASGI receive channel: the request's parameters were read before the read
        # started, so what comes next is ``http.disconnect`` when the client goes away (the server
        # wakes this task then; no polling: dozens of queued reads cost the event loop nothing).
        nonlocal gone
        while not task.done():
            message = await request.receive()
            if message["type"] != "http.disconnect":
                continue  # an unread (empty) body
            if task.done():
                return
            gone = True
            cancel.set()
            governor.note_canceled()
            if not started.is_set():
                task.cancel()  # still queued: leave the queue now
            return

    # Most reads finish in a few milliseconds: the disconnect watcher starts only when the read is
    # still running after WATCH_AFTER_S.
    watcher: asyncio.Task[None] | None = None

    def start_watching() -> None:
        nonlocal watcher
        if not task.done():
            watcher = asyncio.create_task(watch())

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
    try:
        return await task
    except asyncio.CancelledError:
        if gone:
            raise ApiError("canceled", "query was canceled in query queue: the client went away") from None
        cancel.set()  # our own caller was canceled: stop the query too
        task.cancel()
        raise
    except Overloaded as e:
        raise Unavailable(e.message, e.retry_after) from None
    except QueueTimeout as e:
        raise ApiError("timeout", str(e)) from None
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher




def query_concurrency(cfg: QueryConfig) -> int:
    """``query.max_concurrency``, 0 meaning the number of CPUs."""
    return cfg.max_concurrency or default_concurrency()


def make_governor(cfg: QueryConfig, executor: Executor | None = None) -> QueryGovernor:
    """The governor for ``cfg``; ``executor`` is the query pool (server.py creates it; a pool of
    ``query_concurrency`` threads is made when none is given, for apps built without server.py)."""
    workers = query_concurrency(cfg)
    return QueryGovernor(executor if executor is not None else make_query_executor(workers), workers,
                         cfg.max_queue, parse_duration_ms(cfg.max_queue_duration) / 1000)




async def governed(governor: QueryGovernor, request: Request, tenant: str, fn: Callable[[], T]) -> T:
    """A store read without a query deadline (series, labels, catalog...) under admission control:
    bounded by ``query.max_queue_duration`` while queued; a client gone while queued leaves the queue."""
    return await run_read(governor, request, tenant, lambda _cancel, _remaining: fn(), Deadline(NO_DEADLINE))


__all__ = ["Deadline", "Unavailable", "api_error_response", "governed", "make_governor", "query_concurrency",
           "run_read"]
