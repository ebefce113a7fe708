"""Query admission: at most ``max_concurrency`` reads run at once, on their own bounded worker
pool; the others wait in a bounded queue that is fair between tenants.

Like Prometheus' ``--query.max-concurrency`` and VictoriaMetrics' ``-search.maxConcurrentRequests``
/ ``-search.maxQueueDuration``, with Mimir's per-tenant fairness:

- a slot is free: the read starts at once on the query pool (never the default executor, so the
  write path's threads never wait behind queries);
- all slots busy: the read waits in its tenant's queue. When a slot frees, tenants take turns
  (round-robin between the tenants that have waiting reads; first come first served within one
  tenant), so one tenant's burst cannot starve another tenant's single query;
- the queue already holds ``max_queue`` reads: ``Overloaded`` at once;
- a read waited ``max_queue_duration``: ``Overloaded`` (it leaves the queue);
- the caller's own deadline passes while waiting: ``QueueTimeout``.

A slot is held until the worker thread has finished, not until the caller stopped waiting: a
canceled query keeps its slot until the engine notices the cancellation and returns, so the pool
can never run more than ``max_concurrency`` reads.

The governor lives on one event loop (all its methods run there); the work runs in the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from clearsight.query.write_priority import WritePriority, register_query_thread
from clearsight.threads import lower_priority

T = TypeVar("T")


class Overloaded(Exception):
    """No capacity for this read now; retry after ``retry_after`` seconds (HTTP 503 unavailable)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class QueueTimeout(Exception):
    """The caller's deadline passed while the read was waiting for a slot."""


def default_concurrency() -> int:
    """``query.max_concurrency`` when it is not set: the CPUs the process may run on, less one that
    stays for ingest (the event loop and the write path's threads), and at least 1. With every CPU
    running a query thread, a write's acknowledgement waited for a core and then for the GIL behind
    them: on 2 CPUs, remote-write p99 under 20 heavy query clients was x2.0-x2.7 its idle value with
    2 query threads and x1.3-x1.8 with 1, the queries answered the same (bench/governance.py,
    docs/promql.md "Queries beside ingest")."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus - 1)


# Query threads run this much nicer than the process (Linux schedules threads as tasks): when a
# write-path thread and a query thread are both ready (e.g. both waiting for the GIL), the OS
# prefers the write path. Measured with bench/governance.py (docs/promql.md).
QUERY_THREAD_NICE = 10


def make_query_executor(workers: int, writes: WritePriority | None = None) -> ThreadPoolExecutor:
    """The bounded pool queries and heavy reads run on (one thread per concurrency slot), at a
    lower OS priority than the rest of the process (``QUERY_THREAD_NICE``); with ``writes``, its
    threads pause at their checkpoints while a write request is in flight (write_priority.py)."""
    return ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="clearsight-query",
                              initializer=functools.partial(_init_query_thread, writes))


def _init_query_thread(writes: WritePriority | None) -> None:
    lower_priority(QUERY_THREAD_NICE)
    if writes is not None:
        register_query_thread(writes)


@dataclass
class GovernorStats:
    running: int = 0
    queued: int = 0
    admitted: int = 0
    rejected_full: int = 0
    rejected_wait: int = 0
    timed_out_in_queue: int = 0
    canceled: int = 0
    queued_by_tenant: dict[str, int] = field(default_factory=dict)


class QueryGovernor:
    def __init__(self, executor: Executor, max_concurrency: int, max_queue: int,
                 max_queue_duration_s: float) -> None:
        self.executor = executor
        self.max_concurrency = max(1, max_concurrency)
        self.max_queue = max(0, max_queue)
        self.max_queue_duration_s = max_queue_duration_s
        self._running = 0
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()  # tenants with waiting reads, in round-robin order
        self._queued = 0
        self.admitted = 0
        self.rejected_full = 0
        self.rejected_wait = 0
        self.timed_out_in_queue = 0
        self.canceled = 0  # reads whose caller went away (note_canceled)

    @property
    def retry_after(self) -> float:
        return max(1.0, math.ceil(self.max_queue_duration_s))

    def stats(self) -> GovernorStats:
        return GovernorStats(self._running, self._queued, self.admitted, self.rejected_full, self.rejected_wait,
                             self.timed_out_in_queue, self.canceled, {t: len(q) for t, q in self._queues.items()})

    def note_canceled(self) -> None:
        """The caller of a read went away (its query was told to stop)."""
        self.canceled += 1

    async def run(self, tenant: str, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        """Waits for a slot (fairly, bounded), then runs ``fn`` on the query pool. ``timeout_s`` is
        the caller's remaining deadline: waiting longer raises ``QueueTimeout``."""
        await self._acquire(tenant, timeout_s)
        loop = asyncio.get_running_loop()
        try:
            work = self.executor.submit(fn)
        except BaseException:
            self._release()
            raise

        def done(_f: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to hand over
                loop.call_soon_threadsafe(self._release)

        # The slot is released when the worker thread finishes (or the job is canceled before it
        # started), not when our caller stops waiting.
        work.add_done_callback(done)
        return await asyncio.wrap_future(work)

    async def _acquire(self, tenant: str, timeout_s: float | None) -> None:
        if self._running < self.max_concurrency and self._queued == 0:
            self._running += 1
            self.admitted += 1
            return
        if self._queued >= self.max_queue:
            self.rejected_full += 1
            raise Overloaded(f"too many queries waiting: the query queue is full (query.max_queue={self.max_queue}, "
                             f"query.max_concurrency={self.max_concurrency})", self.retry_after)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        q = self._queues.get(tenant)
        if q is None:
            q = self._queues[tenant] = deque()
            self._turns.append(tenant)
        q.append(waiter)
        self._queued += 1
        wait = self.max_queue_duration_s
        by_deadline = timeout_s is not None and timeout_s < wait
        if by_deadline:
            assert timeout_s is not None
            wait = max(0.0, timeout_s)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), wait)
        except BaseException as e:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed to us just as we gave up: pass it on.
                self._release()
            else:
                waiter.cancel()
                self._forget(tenant, waiter)
            if isinstance(e, TimeoutError):
                if by_deadline:
                    self.timed_out_in_queue += 1
                    raise QueueTimeout("query timed out in query queue") from None
                self.rejected_wait += 1
                raise Overloaded(f"query waited longer than query.max_queue_duration={self.max_queue_duration_s:g}s "
                                 f"for one of query.max_concurrency={self.max_concurrency} slots",
                                 self.retry_after) from None
            raise
        self.admitted += 1

    def _forget(self, tenant: str, waiter: asyncio.Future[None]) -> None:
        q = self._queues.get(tenant)
        if q is None:
            return
        try:
            q.remove(waiter)
        except ValueError:
            return
        self._queued -= 1
        if not q:
            del self._queues[tenant]
            self._turns.remove(tenant)

    def _release(self) -> None:
        """A slot freed: hand it to the next tenant in turn, or give it back."""
        while self._turns:
            tenant = self._turns.popleft()
            q = self._queues[tenant]
            waiter = q.popleft()
            self._queued -= 1
            if q:
                self._turns.append(tenant)  # its next read waits for its next turn
            else:
                del self._queues[tenant]
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: _running unchanged
                return
        self._running -= 1


__all__ = ["GovernorStats", "Overloaded", "QueryGovernor", "QueueTimeout", "default_concurrency",
           "make_query_executor"]
