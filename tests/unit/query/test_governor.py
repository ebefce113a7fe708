"""Query admission (query/governor.py): bounded concurrency on the query pool, a bounded queue that
is fair between tenants, 'unavailable' when full or waited too long, slots held until the worker
thread is done."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable

import pytest

from clearsight.query.governor import (
    QUERY_THREAD_NICE,
    Overloaded,
    QueryGovernor,
    QueueTimeout,
    make_query_executor,
)


class Blocker:
    """A job that records that it started and its thread, then waits until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.thread = ""

    def __call__(self) -> str:
        self.thread = threading.current_thread().name
        self.started.set()
        assert self.release.wait(30)
        return "done"


async def _until(cond: Callable[[], bool]) -> None:
    for _ in range(3000):
        if cond():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


def governor(concurrency: int = 1, queue: int = 10, wait_s: float = 30.0) -> QueryGovernor:
    return QueryGovernor(make_query_executor(concurrency), concurrency, queue, wait_s)


def test_reads_run_on_the_query_pool_up_to_the_limit() -> None:
    async def main() -> None:
        gov = governor(concurrency=2)
        a, b, c = Blocker(), Blocker(), Blocker()
        ta = asyncio.create_task(gov.run("t", a))
        tb = asyncio.create_task(gov.run("t", b))
        tc = asyncio.create_task(gov.run("t", c))
        await _until(lambda: a.started.is_set() and b.started.is_set() and gov.stats().queued == 1)
        assert not c.started.is_set()  # the third waits for a slot
        assert gov.stats().running == 2
        a.release.set()
        assert await ta == "done"
        await _until(c.started.is_set)
        b.release.set()
        c.release.set()
        assert await tb == await tc == "done"
        assert gov.stats().running == 0
        assert a.thread.startswith("clearsight-query") and c.thread.startswith("clearsight-query")

    asyncio.run(main())


def test_full_queue_is_refused_at_once_with_retry_after() -> None:
    async def main() -> None:
        gov = governor(concurrency=1, queue=2, wait_s=4.0)
        first = Blocker()
        t0 = asyncio.create_task(gov.run("t", first))
        await _until(first.started.is_set)
        waiting = [asyncio.create_task(gov.run("t", lambda: "x")) for _ in range(2)]
        await _until(lambda: gov.stats().queued == 2)
        with pytest.raises(Overloaded, match=r"query queue is full \(query.max_queue=2") as ei:
            await gov.run("t", lambda: "refused")
        assert ei.value.retry_after == 4.0
        first.release.set()
        assert await t0 == "done"
        assert [await w for w in waiting] == ["x", "x"]
        assert gov.stats().rejected_full == 1

    asyncio.run(main())


def test_waiting_longer_than_max_queue_duration_is_refused_and_leaves_the_queue() -> None:
    async def main() -> None:
        gov = governor(concurrency=1, wait_s=0.05)
        first = Blocker()
        t0 = asyncio.create_task(gov.run("t", first))
        await _until(first.started.is_set)
        ran = []
        with pytest.raises(Overloaded, match=r"query\.max_queue_duration=0\.05s"):
            await gov.run("t", lambda: ran.append(1))
        assert gov.stats().queued == 0 and ran == []
        first.release.set()
        await t0
        assert gov.stats().running == 0

    asyncio.run(main())


def test_the_callers_deadline_in_the_queue_is_a_timeout() -> None:
    async def main() -> None:
        gov = governor(concurrency=1, wait_s=30)
        first = Blocker()
        t0 = asyncio.create_task(gov.run("t", first))
        await _until(first.started.is_set)
        with pytest.raises(QueueTimeout, match="query timed out in query queue"):
            await gov.run("t", lambda: None, timeout_s=0.01)
        first.release.set()
        await t0

    asyncio.run(main())


def test_tenants_take_turns() -> None:
    """Tenant a queues three reads before tenant b queues one: b's read runs second, not last."""

    async def main() -> None:
        gov = governor(concurrency=1)
        first = Blocker()
        t0 = asyncio.create_task(gov.run("a", first))
        await _until(first.started.is_set)
        order: list[str] = []
        tasks = []
        for name, tenant in (("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")):
            tasks.append(asyncio.create_task(gov.run(tenant, functools.partial(order.append, name))))
            queued = len(tasks)
            await _until(lambda: gov.stats().queued == queued)  # noqa: B023 (awaited within the iteration)
        assert gov.stats().queued_by_tenant == {"a": 3, "b": 1}
        first.release.set()
        await t0
        await asyncio.gather(*tasks)
        assert order == ["a1", "b1", "a2", "a3"]

    asyncio.run(main())


def test_a_slot_is_held_until_the_worker_finishes_even_if_the_caller_left() -> None:
    async def main() -> None:
        gov = governor(concurrency=1)
        first = Blocker()
        t0 = asyncio.create_task(gov.run("t", first))
        await _until(first.started.is_set)
        queued = asyncio.create_task(gov.run("t", lambda: "never"))
        await _until(lambda: gov.stats().queued == 1)
        queued.cancel()  # a caller gone while queued leaves the queue
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert gov.stats().queued == 0
        t0.cancel()  # the caller of the running read is gone, its thread is not
        with pytest.raises(asyncio.CancelledError):
            await t0
        assert gov.stats().running == 1
        second = Blocker()
        t2 = asyncio.create_task(gov.run("t", second))
        await _until(lambda: gov.stats().queued == 1)
        assert not second.started.is_set()
        first.release.set()  # the worker finishes: its slot goes to the next read
        await _until(second.started.is_set)
        second.release.set()
        assert await t2 == "done"
        assert gov.stats().running == 0

    asyncio.run(main())


def test_query_threads_run_at_a_lower_os_priority() -> None:
    import os

    pool = make_query_executor(1)
    nice = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result(30)
    pool.shutdown()
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + QUERY_THREAD_NICE)


@pytest.mark.parametrize(("cpus", "expected"), [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_default_concurrency_keeps_one_cpu_for_ingest(monkeypatch: pytest.MonkeyPatch, cpus: int,
                                                      expected: int) -> None:
    """Unset ``query.max_concurrency``: the CPUs the process may run on (its affinity, not the
    machine's count) less one for the event loop and the write path, at least one."""
    from clearsight.query import governor

    monkeypatch.setattr(governor.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.setattr(governor.os, "cpu_count", lambda: 64)
    assert governor.default_concurrency() == expected
