"""Runs a blocking ``fn(now_ms)`` every ``interval_s`` in a worker thread, from the event loop.

A failing run is logged and the next one happens on schedule; ``stop()`` cancels the wait and lets
a run in progress finish. Used by the server for discovery, health evaluation and correlation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

log = logging.getLogger("clearsight.resources")


class PeriodicTask:
    def __init__(self, name: str, interval_s: float, fn: Callable[[int], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.fn, int(self.clock() * 1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", self.name)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
