"""Writes first: query threads step aside while a write request is in flight.

One process, one GIL: a query thread running Python delays every GIL hand-off of a write (event
loop -> store writer -> event loop) by up to the switch interval, and a voluntary release
(``time.sleep(0)``) does not hand the GIL over. A real blocking wait does. So:

- the event loop counts the write requests in flight (``begin`` once a write's body has arrived,
  ``end`` once its response is sent: ``api/writes_first.py``);
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

Threads that never registered (the event loop itself, which may evaluate cheap queries; in-process
callers) never pause. ``begin``/``end`` run on the event loop only.
"""

from __future__ import annotations

import threading
import time


class WritePriority:
    def __init__(self, max_pause_s: float) -> None:
        self.max_pause_s = max_pause_s
        self._in_flight = 0
        self._clear = threading.Event()
        self._clear.set()
        self._stats_lock = threading.Lock()
        self.pauses = 0  # query-thread pauses begun (observable by tests and stats)
        self.capped = 0  # pauses that ran the whole max_pause_s

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def begin(self) -> None:
        """A write request arrived (event loop)."""
        self._in_flight += 1
        if self._in_flight == 1:
            self._clear.clear()

    def end(self) -> None:
        """A write request's response was sent (event loop)."""
        self._in_flight -= 1
        if self._in_flight == 0:
            self._clear.set()

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


class _Local(threading.local):
    priority: WritePriority | None = None
    exempt_until: float = 0.0


_local = _Local()
# The calling thread's state, read by ``QueryBudget.check`` directly (a call less per checkpoint).
query_thread = _local


def register_query_thread(priority: WritePriority) -> None:
    """Makes the calling thread (a query-pool thread) pause for writes at its checkpoints."""
    _local.priority = priority


def pause_for_writes() -> None:
    """Blocks the calling query thread while a write is in flight (bounded); a no-op elsewhere."""
    priority = _local.priority
    if priority is not None:
        priority.pause(_local)


__all__ = ["WritePriority", "pause_for_writes", "query_thread", "register_query_thread"]
