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
- **Failure**: stores catch their own expected errors inside ``process`` (a commit that failed on
  a full disk is rolled back and its futures fail; the next group tries again). If ``process`` (or
  ``on_idle``) raises, the database is broken (DuckDB invalidates itself after a failed checkpoint
  or fsync). Every future of the items being processed that is not resolved yet fails. Without a
  ``recover`` callback the writer is then dead: queued futures fail with ``StoreClosed`` naming the
  error, and later submits raise ``StoreClosed``. With one, the writer is *unavailable*: queued and
  new submits fail with ``Unavailable`` (a ``StoreClosed``, so HTTP 503 + Retry-After), and the
  writer thread calls ``recover()`` (reopen the database, reload in-memory state) every
  ``recover_seconds`` until it succeeds, then accepts writes again: the server recovers by itself
  once the disk has space again.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from clearsight.store.interface import Overloaded, StoreClosed
from clearsight.store.kernel.database import is_fatal

log = logging.getLogger(__name__)


class HasFuture(Protocol):
    @property
    def future(self) -> concurrent.futures.Future[Any]: ...


Item = TypeVar("Item", bound=HasFuture)


class Unavailable(StoreClosed):
    """The store's database failed and is being reopened: retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
        recover: Callable[[], None] | None = None,
        recover_seconds: float = 1.0,
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
        self._recover = recover
        self.recover_seconds = recover_seconds
        self._what = what
        self._cv = threading.Condition()
        self._pending: deque[Item | Command] = deque()
        self._queued = 0  # appends waiting (commands are not counted)
        self._closing = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._idle_deferred = False
        self._alive = True
        self._broken: str | None = None  # why the database is unavailable (while recovering)
        self.recoveries = 0  # successful recover() calls
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

    @property
    def broken(self) -> str | None:
        """The error that made the database unavailable, while the writer is recovering."""
        return self._broken

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
        if self._broken is not None:
            raise self._unavailable()

    def _unavailable(self) -> Unavailable:
        return Unavailable(f"{self._what} is unavailable ({self._broken}); reopening it every "
                           f"{self.recover_seconds:g}s", retry_after=max(1.0, self.recover_seconds))

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
                        self._guarded(self._on_idle, [])
                    continue
                self._guarded(functools.partial(self._process, items), items)
            if self._on_close is not None and self._broken is None:
                self._on_close()
        except BaseException as e:  # the writer must never die silently
            log.exception("%s writer failed", self._what)
            with self._cv:
                self._alive = False
                items = list(self._pending)
                self._pending.clear()
                self._queued = 0
            _fail(items, StoreClosed(f"{self._what} writer failed: {e}"))

    def _guarded(self, fn: Callable[[], None], items: list[Item | Command]) -> None:
        """Runs ``fn``; if it raises, fails what it left unresolved and, with a ``recover``
        callback, recovers (else re-raises: the writer dies)."""
        try:
            fn()
        except Exception as e:
            if self._recover is None:
                with self._cv:
                    self._alive = False  # before any future fails: its waiter may submit again
                _fail(items, StoreClosed(f"{self._what} writer failed: {e}"))
                raise
            log.error("%s: database failed (%s); writes are refused until it is reopened", self._what, e)
            with self._cv:
                self._broken = _short(e)
                queued = list(self._pending)
                self._pending.clear()
                self._queued = 0
            err = self._unavailable()
            _fail(items, err)
            _fail(queued, err)
            self._recover_loop()

    def _recover_loop(self) -> None:
        assert self._recover is not None
        last = self._broken
        while True:
            try:
                self._recover()
            except Exception as e:
                msg = _short(e)
                if msg != last:  # log each distinct failure once, not every attempt
                    log.error("%s: reopening failed (%s); retrying every %gs", self._what, msg, self.recover_seconds)
                    last = msg
                with self._cv:
                    self._broken = msg
                    if self._closing:
                        return
                    self._cv.wait(timeout=self.recover_seconds)
                    if self._closing:
                        return
                continue
            with self._cv:
                self._broken = None
                self.recoveries += 1
            log.warning("%s: database reopened; accepting writes again", self._what)
            return


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:300]


def _fail(items: list[Any], err: Exception) -> None:
    for it in items:
        if not it.future.done():
            it.future.set_exception(err)


def run_in_groups(
    items: list[Item | Command],
    commit_group: Callable[[list[Item]], None],
    run_command: Callable[[Command], Any],
) -> None:
    """The usual ``process``: consecutive appends are committed as one group by ``commit_group``
    (which resolves their futures); each command in between runs in arrival order, its result or
    exception set on its future. A command failing with an error that broke the database
    (``database.is_fatal``) is re-raised after its future is set, so the writer recovers at once."""
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
            if is_fatal(e):
                raise
    if group:
        commit_group(group)


def retry_after_estimate(commit_seconds_sum: float, commits_total: int, queued: int) -> float:
    """Seconds a refused producer should wait: the average commit time times the queue depth,
    between 1 and 30 (0.1 s per commit assumed before the first)."""
    avg = commit_seconds_sum / commits_total if commits_total else 0.1
    return float(min(30.0, max(1.0, avg * queued)))

