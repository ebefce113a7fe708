"""Time for the notifier: a real clock, and a virtual one that tests advance by hand.

Every part of ``notify/`` reads time and sleeps through a ``Clock``, so a test can state
Alertmanager's timing (group_wait, group_interval, repeat_interval, retries) exactly: it advances
the virtual clock and checks what was delivered, with no real sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when ``advance`` is awaited.

    Sleepers wake in time order; after each wake-up the event loop runs until it is idle (every
    ready task ran), so work a timer triggers (a flush, a delivery to an in-process receiver)
    happens at exactly the virtual instant of the timer.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + max(0.0, seconds), next(self._seq), fut))
        await fut

    async def settle(self, rounds: int = 50) -> None:
        """Lets ready tasks run (a few dozen scheduler rounds)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Moves time forward by ``seconds``, waking every sleeper due on the way, in order."""
        target = self._now + seconds
        await self.settle()
        while True:
            while self._timers and self._timers[0][2].done():  # canceled sleepers
                heapq.heappop(self._timers)
            if not self._timers or self._timers[0][0] > target:
                break
            when, _, fut = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            fut.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()
