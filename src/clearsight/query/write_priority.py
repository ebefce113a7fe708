"""Writes first: query threads step aside while a write request is in flight.

One process, one GIL: a query thread running Python delays every GIL hand-off of a write (event
loop -> store writer -> event loop) by up to the switch interval, and a voluntary release
(``time.sleep(0)``) does not hand the GIL over. A real blocking wait does. So:

- the event loop counts the write requests in flight (``begin`` once a write's headers have
  arrived, or its last part for a body in several, ``end`` once its response is sent:
  ``api/writes_first.py``);
- a query-pool thread registered with ``register_query_thread`` calls ``pause_for_writes()`` at
  every checkpoint of the engine (``QueryBudget.check``: every node, before and after every store
  read, every few iterations of its loops); while a write is in flight it blocks on an event until
  no write is, for at most ``max_pause_s``. Blocked, it does not compete for the GIL;
- a thread whose pause ran the whole ``max_pause_s`` (writes back to back) is not paused again for
  the next ``max_pause_s``: queries keep at least half of their time under continuous ingest.

What a pause cannot cover: a query thread between two checkpoints (inside a numpy or compiled
call, or a DuckDB read, whose Python client takes the GIL back several times per statement) still
holds the GIL until the switch interval makes it let go; the server shortens that interval
(``server.switch_interval_us``).

The event loop steps aside too: a large answer (``api/common.PartsResponse``: a query's matrix of
megabytes) is sent in messages of about 256 KiB, and between two of them, while a write is in
flight, the loop's sending task waits (``step_aside``, on the loop) until none is, for at most
``max_pause_s`` (then not again for as long), so a write's own steps on the loop (its body, its
hand-off to the store writer, its answer) do not queue behind the sending of query answers. The
answer carries the ``WritePriority`` of the query thread that encoded it (``current_priority``).

Threads that never registered (the event loop itself, which may evaluate cheap queries; in-process
callers) never pause. ``begin``/``end`` run on the event loop only.

Preemption (``preempt=True``, the server's setting): a query thread reached its next checkpoint
1.5 ms (p50) to 6.6 ms (p99) after a write began (measured under ``bench/governance.py``), all
that time competing with the write for the GIL. So ``begin`` also arms the registered query
threads (``query/_preempt.pyx``): each pauses at its next Python call or return whose whole stack
is in ``safe_files()`` (the PromQL engine, the query response encoder, numpy's Python layer: code
that holds no lock a write could need; the prepared-query cache and the parser, which hold locks,
are left out, as is every store read) and disarms itself; ``end`` disarms the threads left.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Iterable

try:
    from clearsight.query import _preempt  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the extension is built by `pip install -e .`
    _preempt = None

_QUERY = os.path.dirname(os.path.abspath(__file__))
# Code a query thread may be stopped in at any call (see the module's docstring).
_UNSAFE_PROMQL = frozenset({"prepared.py", "parser.py"})  # the prepared-query cache's and the parser's locks


def _python_files(root: str) -> Iterable[str]:
    for directory, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


@functools.cache
def safe_files() -> frozenset[str]:
    """The files whose code a query thread may be stopped in (listed once, when the first
    ``WritePriority`` with ``preempt`` is made: not at import)."""
    import numpy

    return frozenset([
        *(f for f in _python_files(os.path.join(_QUERY, "promql")) if os.path.basename(f) not in _UNSAFE_PROMQL),
        os.path.join(_QUERY, "budget.py"),
        *(os.path.join(os.path.dirname(_QUERY), "api", name)
          for name in ("prometheus_query.py", "common.py", "query_admission.py")),
        *_python_files(os.path.dirname(os.path.abspath(numpy.__file__))),
    ])


# Frames that may sit below: the thread's start and the pool's worker loop.
SAFE_BOTTOM = frozenset([
    *((threading.__file__, name) for name in ("run", "_bootstrap_inner", "_bootstrap")),
    *((os.path.join(os.path.dirname(threading.__file__), "concurrent", "futures", "thread.py"), name)
      for name in ("_worker", "run")),
])


class WritePriority:
    def __init__(self, max_pause_s: float, preempt: bool = False) -> None:
        self.max_pause_s = max_pause_s
        self.preempt = preempt and _preempt is not None
        if self.preempt:
            _preempt.allow(pause_for_writes, safe_files(), SAFE_BOTTOM)
        self._threads: set[int] = set()  # idents of the registered query threads
        self._in_flight = 0
        self._clear = threading.Event()
        self._clear.set()
        self._stats_lock = threading.Lock()
        self.pauses = 0  # query-thread pauses begun (observable by tests and stats)
        self.capped = 0  # pauses that ran the whole max_pause_s
        # the event loop's side (step_aside): its waiting senders, and until when (loop time) a
        # capped wait exempts them
        self._loop_waiters: list[asyncio.Future[bool]] = []  # True: capped
        self._loop_exempt_until = 0.0
        self.loop_pauses = 0  # sending tasks that stepped aside
        self.loop_capped = 0  # of those, waits that ran the whole max_pause_s

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def begin(self) -> None:
        """A write request arrived (event loop)."""
        self._in_flight += 1
        if self._in_flight == 1:
            self._clear.clear()
            if self.preempt and self._threads and self.max_pause_s > 0:
                _preempt.arm(self._threads)

    def end(self) -> None:
        """A write request's response was sent (event loop)."""
        self._in_flight -= 1
        if self._in_flight == 0:
            self._clear.set()
            if self.preempt and self._threads:
                _preempt.disarm(self._threads)
            if self._loop_waiters:
                waiters, self._loop_waiters = self._loop_waiters, []
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(False)

    async def step_aside(self) -> None:
        """The event loop's checkpoint between two messages of a large answer: while a write is in
        flight, waits until none is, at most ``max_pause_s`` (after a wait that long, none for the
        next ``max_pause_s``: writes back to back leave answers at least half of the time)."""
        if self._in_flight == 0 or self.max_pause_s <= 0:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._loop_exempt_until:
            return
        self.loop_pauses += 1
        fut: asyncio.Future[bool] = loop.create_future()
        self._loop_waiters.append(fut)
        timer = loop.call_later(self.max_pause_s, _give_up, fut)
        try:
            if not await fut:
                return
            self.loop_capped += 1
            self._loop_exempt_until = loop.time() + self.max_pause_s
        finally:
            timer.cancel()

    def pause(self, local: _Local) -> None:
        """A query thread's checkpoint (through ``pause_for_writes``)."""
        if self._clear.is_set() or self.max_pause_s <= 0 or time.monotonic() < local.exempt_until:
            return
        with self._stats_lock:
            self.pauses += 1
        if not self._clear.wait(self.max_pause_s):
            local.exempt_until = time.monotonic() + self.max_pause_s
            with self._stats_lock:
                self.capped += 1


def _give_up(fut: asyncio.Future[bool]) -> None:
    """``step_aside``'s wait ran ``max_pause_s``: it ends, capped (True)."""
    if not fut.done():
        fut.set_result(True)


class _Local(threading.local):
    priority: WritePriority | None = None
    exempt_until: float = 0.0


_local = _Local()
# The calling thread's state, read by ``QueryBudget.check`` directly (a call less per checkpoint).
query_thread = _local


def register_query_thread(priority: WritePriority) -> None:
    """Makes the calling thread (a query-pool thread) pause for writes at its checkpoints (and, with
    ``preempt``, at its next safe call)."""
    _local.priority = priority
    priority._threads.add(threading.get_ident())



def current_priority() -> WritePriority | None:
    """The ``WritePriority`` of the calling query thread (None on any other thread)."""
    return _local.priority


def pause_for_writes() -> None:
    """Blocks the calling query thread while a write is in flight (bounded); a no-op elsewhere."""
    priority = _local.priority
    if priority is not None:
        priority.pause(_local)


__all__ = ["WritePriority", "current_priority", "pause_for_writes", "query_thread", "register_query_thread"]
