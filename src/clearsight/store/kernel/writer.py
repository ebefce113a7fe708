"""The group-commit writer: many producers, one writer thread, one commit per group.

Producers call ``submit(item)`` (an append of any type carrying a ``future``) or ``command(kind,
arg)``; both return at once. The writer thread drains everything queued and hands it to the
store's ``process(items)`` in arrival order; ``process`` commits (one transaction per group of
appends, commands in between) and resolves every future only after its data is durable, so
"acknowledged" means "committed". Nothing CPU-heavy runs on the producers' threads.

- **Backpressure**: more than ``queue_max`` appends waiting raises ``Overloaded`` with a
  ``retry_after`` the store estimates (commands are never refused while the writer runs).
- **Idle work**: ``process`` may call ``defer_idle()``; the writer then calls ``on_idle()`` once no
  item has arrived for ``idle_seconds`` (compaction that must not delay acknowledgements).
- **Closing**: ``close()`` stops accepting, lets the writer process what is queued, calls
  ``on_close()`` on the writer thread, and joins it. Idempotent.
- **Failure**: if ``process`` raises, the writer is dead: every queued future fails with
  ``StoreClosed`` naming the error, and later submits raise ``StoreClosed``. Stores catch their
  own expected errors inside ``process``; an exception here is a bug or a broken database.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from clearsight.store.interface import Overloaded, StoreClosed

log = logging.getLogger(__name__)


class HasFuture(Protocol):
    @property
    def future(self) -> concurrent.futures.Future[Any]: ...


Item = TypeVar("Item", bound=HasFuture)


@dataclass
class Command:
    """An ordered instruction for the store's writer (``kind`` and ``arg`` are the store's)."""

    kind: str
    arg: Any
    future: concurrent.futures.Future[Any]


class GroupCommitWriter(Generic[Item]):
    def __init__(
        self,
        name: str,
        process: Callable[[list[Item | Command]], None],
        *,
        queue_max: int,
        retry_after: Callable[[int], float],
        idle_seconds: float = 0.2,
        on_idle: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
        what: str = "store",
    ) -> None:
        if queue_max <= 0:
            raise ValueError("queue_max must be positive")
        self.name = name
        self.queue_max = queue_max
        self.idle_seconds = idle_seconds
        self._process = process
        self._retry_after = retry_after
        self._on_idle = on_idle
        self._on_close = on_close
        self._what = what
        self._cv = threading.Condition()
        self._pending: deque[Item | Command] = deque()
        self._queued = 0  # appends waiting (commands are not counted)
        self._closing = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._idle_deferred = False
        self._alive = True
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    # --- producers ----------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        with self._cv:
            return self._queued

    @property
    def open(self) -> bool:
        """Accepting items: not closing, and the writer has not failed."""
        return not self._closing and self._alive

    @property
    def alive(self) -> bool:
        return self._alive and self._thread.is_alive()

    def submit(self, item: Item) -> None:
        """Queues an append; its future is resolved by ``process``."""
        with self._cv:
            self._check_open()
            if self._queued >= self.queue_max:
                raise Overloaded(f"{self._what} write queue is full", retry_after=self._retry_after(self._queued))
            self._pending.append(item)
            self._queued += 1
            self._cv.notify()

    def command(self, kind: str, arg: Any = 0) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cv:
            self._check_open()
            self._pending.append(Command(kind, arg, fut))
            self._cv.notify()
        return fut

    def _check_open(self) -> None:
        if self._closing or not self._alive:
            raise StoreClosed(f"{self._what} is closed")

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            with self._cv:
                self._closing = True
                self._cv.notify()
            if self._thread.is_alive() or self._thread.ident is not None:
                self._thread.join()
            self._closed = True

    # --- the writer thread ----------------------------------------------------------------------

    def defer_idle(self) -> None:
        """Writer thread only: run ``on_idle`` once the queue has been idle ``idle_seconds``."""
        self._idle_deferred = True

    def _main(self) -> None:
        try:
            while True:
                idle = False
                with self._cv:
                    while not self._pending and not self._closing:
                        if not self._idle_deferred:
                            self._cv.wait()
                        elif not self._cv.wait(timeout=self.idle_seconds) and not self._pending:
                            idle = True
                            break
                    if not idle:
                        if not self._pending and self._closing:
                            break
                        items = list(self._pending)
                        self._pending.clear()
                        self._queued = 0
                if idle:
                    self._idle_deferred = False
                    if self._on_idle is not None:
                        self._on_idle()
                    continue
                self._process(items)
            if self._on_close is not None:
                self._on_close()
        except BaseException as e:  # the writer must never die silently
            log.exception("%s writer failed", self._what)
            with self._cv:
                self._alive = False
                items = list(self._pending)
                self._pending.clear()
                self._queued = 0
            for it in items:
                if not it.future.done():
                    it.future.set_exception(StoreClosed(f"{self._what} writer failed: {e}"))


def run_in_groups(
    items: list[Item | Command],
    commit_group: Callable[[list[Item]], None],
    run_command: Callable[[Command], Any],
) -> None:
    """The usual ``process``: consecutive appends are committed as one group by ``commit_group``
    (which resolves their futures); each command in between runs in arrival order, its result or
    exception set on its future."""
    group: list[Item] = []
    for it in items:
        if not isinstance(it, Command):
            group.append(it)
            continue
        if group:
            commit_group(group)
            group = []
        try:
            it.future.set_result(run_command(it))
        except Exception as e:
            it.future.set_exception(e)
    if group:
        commit_group(group)


def retry_after_estimate(commit_seconds_sum: float, commits_total: int, queued: int) -> float:
    """Seconds a refused producer should wait: the average commit time times the queue depth,
    between 1 and 30 (0.1 s per commit assumed before the first)."""
    avg = commit_seconds_sum / commits_total if commits_total else 0.1
    return float(min(30.0, max(1.0, avg * queued)))

