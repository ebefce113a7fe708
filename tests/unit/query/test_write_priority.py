"""Writes first (query/write_priority.py): a registered query thread blocks at its checkpoints
while a write is in flight, at most ``max_pause_s`` at a time and then not again for as long;
other threads never pause. On the event loop, a large answer's sender steps aside alike
(``step_aside``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from clearsight.query.budget import QueryBudget
from clearsight.query.governor import make_query_executor
from clearsight.query.write_priority import (
    WritePriority,
    current_priority,
    pause_for_writes,
    register_query_thread,
)


def in_query_thread(priority: WritePriority, fn: Callable[[], None]) -> tuple[threading.Thread, threading.Event]:
    """Runs ``fn`` on a new thread registered as a query thread; the event is set once it returned."""
    done = threading.Event()

    def run() -> None:
        register_query_thread(priority)
        fn()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done


def test_a_query_thread_waits_at_its_checkpoint_until_the_write_is_answered() -> None:
    wp = WritePriority(max_pause_s=30.0)
    wp.begin()
    budget = QueryBudget(1000, time.monotonic() + 60)
    t, done = in_query_thread(wp, budget.check)
    assert not done.wait(0.2)  # blocked: the write is still in flight
    assert wp.in_flight == 1
    wp.end()
    t.join(30)
    assert done.is_set()
    assert (wp.pauses, wp.capped) == (1, 0)
    assert budget.checks == 1


@pytest.mark.parametrize(("max_pause_s", "writes_in_flight"), [(30.0, 0), (0.0, 1)])
def test_no_pause_without_a_write_in_flight_or_with_pausing_off(max_pause_s: float, writes_in_flight: int) -> None:
    wp = WritePriority(max_pause_s=max_pause_s)
    wp.begin()
    if not writes_in_flight:
        wp.end()
    t, done = in_query_thread(wp, pause_for_writes)
    t.join(30)
    assert done.is_set() and wp.pauses == 0
    assert wp.in_flight == writes_in_flight


def test_threads_that_are_not_query_threads_never_pause() -> None:
    """The event loop (cheap queries run there) and in-process callers: no registration, no wait."""
    wp = WritePriority(max_pause_s=30.0)
    wp.begin()
    QueryBudget(1000, time.monotonic() + 60).check()  # this thread never registered
    assert wp.pauses == 0
    wp.end()


def test_a_pause_is_bounded_and_a_capped_thread_runs_on_for_as_long() -> None:
    """Writes back to back cannot starve queries: a pause ends after max_pause_s, and the thread is
    then exempt for max_pause_s (its next checkpoints do not pause)."""
    wp = WritePriority(max_pause_s=0.05)
    wp.begin()  # never answered
    calls: list[float] = []

    def two_checkpoints() -> None:
        pause_for_writes()
        calls.append(wp.pauses)
        pause_for_writes()  # right after the capped pause: exempt
        calls.append(wp.pauses)

    t, done = in_query_thread(wp, two_checkpoints)
    t.join(30)
    assert done.is_set()
    assert (wp.pauses, wp.capped) == (1, 1)
    assert calls == [1, 1]


def test_query_pool_threads_are_registered() -> None:
    wp = WritePriority(max_pause_s=30.0)
    pool = make_query_executor(1, wp)
    try:
        wp.begin()
        fut = pool.submit(pause_for_writes)
        assert not fut.done() and wp.in_flight == 1
        time.sleep(0.1)
        assert not fut.done()  # paused on the pool thread
        wp.end()
        fut.result(30)
        assert wp.pauses == 1
        plain = make_query_executor(1)  # without a WritePriority: never pauses
        wp.begin()
        plain.submit(pause_for_writes).result(30)
        wp.end()
        plain.shutdown()
        assert wp.pauses == 1
    finally:
        pool.shutdown()


# The event loop's side: a large answer's sending task steps aside between two messages.


def test_the_loop_steps_aside_until_the_write_is_answered() -> None:
    wp = WritePriority(max_pause_s=30.0)

    async def scenario() -> list[str]:
        seen: list[str] = []
        await wp.step_aside()  # nothing in flight: no wait
        assert wp.loop_pauses == 0
        wp.begin()
        waiting = asyncio.ensure_future(wp.step_aside())
        for _ in range(5):
            await asyncio.sleep(0)
        seen.append("waiting" if not waiting.done() else "done")
        wp.end()  # the write answered: the sender goes on
        await asyncio.wait_for(waiting, 30)
        seen.append("done")
        return seen

    assert asyncio.run(scenario()) == ["waiting", "done"]
    assert (wp.loop_pauses, wp.loop_capped) == (1, 0)


def test_the_loop_waits_at_most_max_pause_then_runs_on_for_as_long() -> None:
    wp = WritePriority(max_pause_s=0.05)

    async def scenario() -> None:
        wp.begin()  # never answered
        await asyncio.wait_for(wp.step_aside(), 30)  # capped after max_pause_s
        assert (wp.loop_pauses, wp.loop_capped) == (1, 1)
        await wp.step_aside()  # exempt right after a capped wait
        assert wp.loop_pauses == 1
        wp.end()

    asyncio.run(scenario())


def test_no_loop_wait_with_pausing_off() -> None:
    wp = WritePriority(max_pause_s=0.0)

    async def scenario() -> None:
        wp.begin()
        await asyncio.wait_for(wp.step_aside(), 30)
        wp.end()

    asyncio.run(scenario())
    assert wp.loop_pauses == 0


def test_an_answer_encoded_on_a_query_thread_carries_its_priority() -> None:
    wp = WritePriority(max_pause_s=30.0)
    got: list[WritePriority | None] = []
    t, done = in_query_thread(wp, lambda: got.append(current_priority()))
    t.join(30)
    assert done.is_set() and got == [wp]
    assert current_priority() is None  # this thread never registered
