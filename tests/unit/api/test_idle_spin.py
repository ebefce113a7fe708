"""The event loop's idle spin (api/idle_spin.py): the native poll, the backoff, the loop hook."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import pytest
import uvloop
from clearsight.api._idle_spin import spin

from clearsight.api import idle_spin
from clearsight.api.idle_spin import IdleSpin


def test_spin_sees_a_readable_descriptor_at_once() -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        assert spin(r, 10_000_000_000) is True  # returns at once, not after 10 s
    finally:
        os.close(r)
        os.close(w)


def test_spin_gives_up_after_its_budget() -> None:
    r, w = os.pipe()
    try:
        assert spin(r, 200_000) is False
        assert spin(r, 0) is False
    finally:
        os.close(r)
        os.close(w)


def test_spin_releases_the_gil() -> None:
    """Another thread writes to the pipe while the spin runs: only possible without the GIL held."""
    r, w = os.pipe()
    started = threading.Event()

    def writer() -> None:
        started.wait()
        os.write(w, b"x")

    t = threading.Thread(target=writer)
    t.start()
    try:
        started.set()
        assert spin(r, 30_000_000_000) is True
    finally:
        t.join()
        os.close(r)
        os.close(w)


class _Spy:
    """A stand-in for the native spin: records calls, answers from a script."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, int]] = []

    def __call__(self, fd: int, budget_ns: int) -> bool:
        self.calls.append((fd, budget_ns))
        return self.answers.pop(0) if self.answers else False


def _run_answers(s: IdleSpin, loop: asyncio.AbstractEventLoop, n: int) -> None:
    for _ in range(n):
        s.after_answer(loop)
        loop.run_until_complete(asyncio.sleep(0))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = uvloop.new_event_loop()
    yield lp
    lp.close()


def test_one_spin_per_loop_pass_on_the_loops_epoll_descriptor(loop: asyncio.AbstractEventLoop) -> None:
    s = IdleSpin(50)
    spy = _Spy([True] * 10)
    s._spin = spy
    s.after_answer(loop)
    s.after_answer(loop)  # a second answer in the same pass: still one spin
    loop.run_until_complete(asyncio.sleep(0))
    assert spy.calls == [(loop._get_backend_id(), 50_000)]  # type: ignore[attr-defined]  # uvloop's
    assert (s.spun, s.fruitful) == (1, 1)


def test_fruitless_spins_pause_then_try_again(loop: asyncio.AbstractEventLoop) -> None:
    s = IdleSpin(50)
    s._spin = _Spy([False] * idle_spin.WINDOW)
    _run_answers(s, loop, idle_spin.WINDOW)
    assert s.spun == idle_spin.WINDOW and s.fruitful == 0
    _run_answers(s, loop, idle_spin.PAUSE)  # paused: no spin
    assert s.spun == idle_spin.WINDOW
    _run_answers(s, loop, 1)  # then it tries again
    assert s.spun == idle_spin.WINDOW + 1


def test_fruitful_spins_keep_spinning(loop: asyncio.AbstractEventLoop) -> None:
    s = IdleSpin(50)
    half = idle_spin.WINDOW // 2
    s._spin = _Spy(([True, False] * half) * 3)
    _run_answers(s, loop, 3 * idle_spin.WINDOW)
    assert s.spun == 3 * idle_spin.WINDOW and s.fruitful == 3 * half


def test_no_spin_without_uvloop_or_budget() -> None:
    loop = asyncio.new_event_loop()  # the selector loop has no epoll descriptor to watch
    try:
        s = IdleSpin(50)
        _run_answers(s, loop, 3)
        assert s.spun == 0
    finally:
        loop.close()
    off = IdleSpin(0)
    assert off._spin is None
