"""One embedded DuckDB database of a store: the writer's connection and a pool of reader cursors.

DuckDB connections are not shared between threads: the writer thread has ``writer``; a reader
borrows a cursor with ``reader(...)`` and returns it to the pool afterwards. ``close()`` closes the
pooled cursors, the writer's connection and the database (call it after the writer thread ended).

DuckDB *invalidates* a database after some I/O failures (a checkpoint or an fsync that failed, e.g.
on a full disk): every later statement raises ``FatalException`` / "database has been
invalidated". ``is_fatal(e)`` tells those apart from errors that only failed one transaction (a
commit that could not write its WAL is rolled back and the database stays usable); ``reopen()``
(writer thread) closes the broken instance and opens the file again, which replays the WAL: what was
committed before the failure is kept, nothing of the failed transaction is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from clearsight.store.interface import StoreClosed


def is_fatal(e: BaseException) -> bool:
    """True when ``e`` left the DuckDB database unusable (it must be reopened)."""
    return isinstance(e, duckdb.FatalException) or "database has been invalidated" in str(e)


class Database:
    def __init__(self, path: Path, *, checkpoint_threshold: str, threads: int | None = None,
                 memory_limit: str | None = None, what: str = "store") -> None:
        config: dict[str, Any] = {"checkpoint_threshold": checkpoint_threshold}
        if threads is not None:
            config["threads"] = threads
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        self.what = what
        self.path = path
        self._config = config
        self._root = duckdb.connect(str(path), config=config)
        self._lock = threading.Lock()
        self._pool: list[duckdb.DuckDBPyConnection] = []
        self._closed = False
        self.writer = self._root.cursor()  # the writer thread's connection
        self.reopens = 0

    def reopen(self) -> None:
        """Closes the (broken) instance and opens the file again (WAL replayed). Writer thread
        only; callers must reload any state read through ``writer``. Raises what DuckDB raises
        (e.g. the disk is still full); the database stays closed-but-reopenable then."""
        with self._lock:
            if self._closed:
                raise StoreClosed(f"{self.what} is closed")
            for cur in self._pool:
                _quiet_close(cur)
            self._pool.clear()
            _quiet_close(self.writer)
            _quiet_close(self._root)
            root = duckdb.connect(str(self.path), config=self._config)
            try:
                root.execute("SELECT 1").fetchall()
            except BaseException:
                _quiet_close(root)
                raise
            self._root = root
            self.writer = root.cursor()
            self.reopens += 1

    @contextmanager
    def reader(self, usable: Callable[[], bool] = lambda: True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A reader cursor; ``StoreClosed`` when the database is closed or ``usable()`` is false
        (the store is closing)."""
        with self._lock:
            if self._closed or not usable():
                raise StoreClosed(f"{self.what} is closed")
            cur = self._pool.pop() if self._pool else self._root.cursor()
        try:
            yield cur
        finally:
            with self._lock:
                if self._closed:
                    cur.close()
                else:
                    self._pool.append(cur)

    def close(self) -> None:
        """Closes every cursor and the database. Idempotent."""
        with self._lock:
            if self._closed:
                return
            for cur in self._pool:
                cur.close()
            self._pool.clear()
            _quiet_close(self.writer)
            _quiet_close(self._root)
            self._closed = True


def _quiet_close(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.close()
    except duckdb.Error:  # an invalidated instance may refuse even this
        pass
