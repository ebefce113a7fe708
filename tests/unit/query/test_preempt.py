"""Preemption for writes (query/_preempt.pyx, WritePriority(preempt=True)): a query thread busy in
the PromQL engine pauses at its next safe call once a write begins, not only at a checkpoint; a
thread whose stack holds code outside the safe files (a store read, a lock holder) is never
paused there; arming leaves another profiler alone and ``end`` disarms what is left."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from clearsight.query import _preempt  # type: ignore[attr-defined]
from clearsight.query.governor import make_query_executor
from clearsight.query.promql.engine import Engine
from clearsight.query.write_priority import WritePriority, register_query_thread, safe_files
from clearsight.store.memory import MemorySeriesSelector

H = 3_600_000
QUERY = "sum(max_over_time(rate(req_total[5m])[30m:15s]))"


@pytest.fixture
def store() -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    ts = np.arange(0, 3 * H + 1, 15_000, dtype=np.int64)
    for i in range(60):
        s.add((("__name__", "req_total"), ("instance", f"i{i}")), ts, np.cumsum(np.full(ts.size, i % 7 + 1.0)))
    return s


def _evaluate(store: MemorySeriesSelector) -> list[tuple[float, ...]]:
    res = Engine().range(store, QUERY, H, 3 * H, 15_000)
    return [tuple(s.values.tolist()) for s in res.series]


def _wait_for(check: Callable[[], bool], limit: float = 30.0) -> bool:
    """Polls ``check`` until it holds (False after ``limit`` seconds: the test fails there)."""
    event = threading.Event()
    for _ in range(int(limit / 0.001)):
        if check():
            return True
        event.wait(0.001)
    return False


@pytest.fixture
def priority() -> Iterator[WritePriority]:
    wp = WritePriority(max_pause_s=30.0, preempt=True)
    yield wp
    while wp.in_flight:
        wp.end()


def test_the_engine_files_are_safe_and_the_lock_holders_are_not() -> None:
    names = {f.rsplit("/", 1)[-1] for f in safe_files() if "/clearsight/" in f}
    assert {"engine.py", "fn_range.py", "aggregations.py", "prometheus_query.py", "budget.py"} <= names
    assert not names & {"prepared.py", "parser.py", "write_priority.py"}  # they take locks
    assert not any("/clearsight/store/" in f for f in safe_files())


def test_a_busy_query_thread_pauses_at_its_next_safe_call(store: MemorySeriesSelector,
                                                          priority: WritePriority) -> None:
    expected = _evaluate(store)
    pool = make_query_executor(1, priority)
    try:
        ident = pool.submit(threading.get_ident).result()
        running = pool.submit(_evaluate, store)
        preempted_before = _preempt.counts()[0]
        priority.begin()  # a write arrives while the query runs
        assert _wait_for(lambda: _preempt.counts()[0] > preempted_before or running.done())
        assert not running.done(), "the query finished before it was preempted: make it heavier"
        assert priority.pauses >= 1 and not _preempt.armed(ident)  # disarmed itself, now waiting
        priority.end()
        assert running.result(60) == expected  # the same answer, paused or not
    finally:
        pool.shutdown(wait=True)


def test_a_stack_outside_the_safe_files_is_never_paused(priority: WritePriority) -> None:
    stop = threading.Event()
    ready = threading.Event()
    lock = threading.Lock()  # as a store read would hold its lock

    def busy_holding_a_lock() -> None:  # this test file is not a safe file
        register_query_thread(priority)
        ready.set()
        with lock:
            while not stop.is_set():
                np.sum(np.arange(10))  # calls: events for the profile function

    t = threading.Thread(target=busy_holding_a_lock, daemon=True)
    t.start()
    assert ready.wait(30)
    refused_before = _preempt.counts()[1]
    priority.begin()
    assert _preempt.armed(t.ident or 0)
    assert _wait_for(lambda: _preempt.counts()[1] > refused_before)  # checked, and refused
    assert priority.pauses == 0 and _preempt.armed(t.ident or 0)
    priority.end()
    assert not _preempt.armed(t.ident or 0)  # end() disarmed it
    stop.set()
    t.join(30)
    assert not lock.locked()


def test_arming_leaves_another_profiler_alone_and_needs_preempt_on() -> None:
    seen: list[str] = []
    ready, stop = threading.Event(), threading.Event()
    off = WritePriority(max_pause_s=30.0, preempt=False)
    on = WritePriority(max_pause_s=30.0, preempt=True)

    def profiled() -> None:
        register_query_thread(on)
        register_query_thread(off)
        import sys
        sys.setprofile(lambda frame, event, arg: seen.append(event) if len(seen) < 10 else None)
        ready.set()
        stop.wait(30)
        sys.setprofile(None)

    t = threading.Thread(target=profiled, daemon=True)
    t.start()
    assert ready.wait(30)
    off.begin()
    assert not _preempt.armed(t.ident or 0)  # preempt off: nothing armed
    off.end()
    assert _preempt.arm({t.ident}) == 0  # its own profiler stays
    on.begin()
    assert not _preempt.armed(t.ident or 0)
    on.end()
    stop.set()
    t.join(30)
    assert seen  # the other profiler kept receiving events
