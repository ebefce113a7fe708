"""One embedded DuckDB database of a store: the writer's connection and a pool of reader cursors.

DuckDB connections are not shared between threads: the writer thread has ``writer``; a reader
borrows a cursor with ``reader(...)`` and returns it to the pool afterwards. ``close()`` closes the
pooled cursors, the writer's connection and the database (call it after the writer thread ended).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from clearsight.store.interface import StoreClosed


class Database:
    def __init__(self, path: Path, *, checkpoint_threshold: str, threads: int | None = None,
                 memory_limit: str | None = None, what: str = "store") -> None:
        config: dict[str, Any] = {"checkpoint_threshold": checkpoint_threshold}
        if threads is not None:
            config["threads"] = threads
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        self.what = what
        self._root = duckdb.connect(str(path), config=config)
        self._lock = threading.Lock()
        self._pool: list[duckdb.DuckDBPyConnection] = []
        self._closed = False
        self.writer = self._root.cursor()  # the writer thread's connection

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
            self.writer.close()
            self._root.close()
            self._closed = True
