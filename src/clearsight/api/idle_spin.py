"""The event loop polls for the next request for a moment before it sleeps.

A sleeping thread on an idle core costs a wake-up when the next request arrives: on the 2-vCPU
virtual machines these benchmarks run on (a halted vCPU is woken by the hypervisor) that is
~20-30 us of every small query's latency, more than its whole evaluation. Go's scheduler, and so
Prometheus, spins for a while looking for work before it parks a thread; ``IdleSpin`` does the
same for the one thread that answers small queries: after the event loop answered a request in
the fast lane (api/fast_lane.py), it polls its own epoll descriptor, with the GIL released, for
up to ``server.idle_spin_us`` before going back to sleep. Anything the loop waits for (a socket, a
thread's call_soon_threadsafe) ends the spin at once; callbacks queued on the loop meanwhile wait
at most the budget. The cost is up to that much CPU per answered request when no request follows.

Spinning pays only when a request does follow within the budget and a core is free for the
client meanwhile. So it backs off by itself: after ``WINDOW`` spins, if fewer than half of them
saw something to do, the next ``PAUSE`` answers do not spin (then it tries again). A machine whose
cores are busy, or clients that send one request now and then, so cost little.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

WINDOW = 32  # spins judged together
PAUSE = 512  # answers without a spin after a window of mostly fruitless spins


class IdleSpin:
    def __init__(self, budget_us: int) -> None:
        self.budget_ns = budget_us * 1000
        self._fd: int | None = None
        self._armed = False
        self._spins = 0  # in the current window
        self._hits = 0  # spins of the current window that saw something to do
        self._paused = 0  # answers left without a spin
        self.spun = 0  # spins, in all (clearsight_http_idle_spins_total)
        self.fruitful = 0  # of which saw something to do before the budget ran out
        self._spin: Callable[[int, int], bool] | None = None
        if budget_us > 0:
            try:
                from clearsight.api._idle_spin import spin
            except ImportError:
                log.warning("server.idle_spin_us: the native module is not built; not spinning")
            else:
                self._spin = spin

    def after_answer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arms one spin for when ``loop`` has run what is ready (once per loop pass)."""
        if self._spin is None or self._armed:
            return
        if self._paused:
            self._paused -= 1
            return
        if self._fd is None:
            backend = getattr(loop, "_get_backend_id", None)  # uvloop: libuv's epoll descriptor
            if backend is None:
                self._spin = None
                return
            self._fd = int(backend())
        self._armed = True
        loop.call_soon(self._run)

    def _run(self) -> None:
        self._armed = False
        assert self._spin is not None and self._fd is not None
        hit = self._spin(self._fd, self.budget_ns)
        self.spun += 1
        self._spins += 1
        if hit:
            self.fruitful += 1
            self._hits += 1
        if self._spins == WINDOW:
            if 2 * self._hits < WINDOW:
                self._paused = PAUSE
            self._spins = self._hits = 0


class IdleSpinCollector(Collector):
    """``/metrics``: the event loop's spins and how many of them saw work come."""

    def __init__(self, spin: IdleSpin) -> None:
        self._spin = spin

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("clearsight_http_idle_spins", "Spins of the event loop after a fast-lane answer "
                                  "(server.idle_spin_us).", value=self._spin.spun)
        yield CounterMetricFamily("clearsight_http_idle_spins_fruitful", "Spins that saw work come before their "
                                  "budget ran out.", value=self._spin.fruitful)
