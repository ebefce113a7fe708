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

Opening repairs damage (``repair.py``): a WAL with a damaged entry is cut after the last intact
commit before it (the original kept as ``.damaged-<ts>``); a database file DuckDB cannot open is
moved aside with its WAL and the store starts empty. Both are logged as errors naming what was
lost and kept in ``repairs``.

A *lazy* database (``lazy=True``) whose file does not exist yet starts as an in-memory DuckDB
stand-in: the store creates its schema there and reads an empty store from it, and nothing is
written to the data directory. ``materialize(init)`` (writer thread, before the first write) opens
the file, runs ``init`` on it (the store's schema) and only then swaps it in, so a failure (a full
disk) leaves the stand-in in place and the next write tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from clearsight.store.interface import StoreClosed
from clearsight.store.kernel import reclaim, repair

log = logging.getLogger(__name__)


def is_fatal(e: BaseException) -> bool:
    """True when ``e`` left the DuckDB database unusable (it must be reopened)."""
    return isinstance(e, duckdb.FatalException) or "database has been invalidated" in str(e)


# Block size of the files this kernel creates (an existing file keeps the size it was created with).
# DuckDB's default, 256 KiB, rounds every table and every partly filled segment up to big blocks:
# on the remote-write bench (1.2M samples) the metrics file was 2.6 MB at 256 KiB, 2.2 MB at
# 64 KiB, and an empty log store 524 KiB against 140 KiB. Smaller blocks (16 KiB) made DuckDB
# pick weaker column compression and the file larger again.
BLOCK_SIZE = 64 * 1024


class Database:
    def __init__(self, path: Path, *, checkpoint_threshold: str, threads: int | None = None,
                 memory_limit: str | None = None, what: str = "store", lazy: bool = False) -> None:
        # allocator_background_threads: DuckDB's allocator (its own jemalloc) hands freed pages back
        # to the OS from a background thread; without it, what a checkpoint or a compaction freed
        # stayed in the process (bench/series_memory.py: RSS at 300,000 series 315 -> 300 MiB, 20,000
        # -> 300,000 slope 395-406 -> 363 bytes a series; docs/storage.md "Memory").
        config: dict[str, Any] = {"checkpoint_threshold": checkpoint_threshold, "default_block_size": BLOCK_SIZE,
                                  "allocator_background_threads": True}
        if threads is not None:
            config["threads"] = threads
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        self.what = what
        self.path = path
        self._config = config
        self.repairs: list[str] = []
        self.quarantined: Path | None = None  # a damaged file moved aside, not yet salvaged
        reclaim.remove_leftover(path)
        wal = path.with_name(path.name + ".wal")
        self.in_memory = lazy and not path.exists() and not wal.exists()
        self._root = self._stand_in() if self.in_memory else self._connect()
        self._lock = threading.Lock()
        self._pool: list[duckdb.DuckDBPyConnection] = []
        self._stand_ins: list[duckdb.DuckDBPyConnection] = []
        self._closed = False
        self.writer = self._root.cursor()  # the writer thread's connection
        self.reopens = 0

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Opens the file, repairing a damaged WAL or moving a damaged file aside."""
        wal = self.path.with_name(self.path.name + ".wal")
        if wal.exists():
            layout = repair.wal_layout(wal)
            if layout.damaged_framing:
                # DuckDB would stop at the break silently, dropping the commits after it
                fix = repair.repair_wal(wal, f"framing broken at byte position {layout.broken_at}")
                msg = f"{wal} is damaged (an entry's frame is broken); repaired: {fix.describe()}"
                log.error("%s: %s", self.what, msg)
                self.repairs.append(msg)
            elif layout.broken_at is not None:
                log.warning("%s: %s ends with an incomplete commit at byte %d (%d bytes, not replayed): a write "
                            "cut short by a crash, never acknowledged", self.what, wal, layout.broken_at,
                            layout.size - layout.broken_at)
        for attempt in range(4):
            try:
                return duckdb.connect(str(self.path), config=self._config)
            except duckdb.Error as e:
                if attempt == 3:
                    raise
                if repair.is_wal_damage(e) and wal.exists():
                    fix = repair.repair_wal(wal, e)
                    msg = f"{wal} is damaged ({_first_line(e)}); repaired: {fix.describe()}"
                elif repair.is_file_damage(e):
                    moved = repair.quarantine(self.path)
                    self.quarantined = moved[0] if moved else None
                    msg = (f"{self.path} is damaged and cannot be opened ({_first_line(e)}); moved aside: "
                           f"{', '.join(str(p) for p in moved)}; starting from a new file "
                           f"(the store salvages what it can read from it)")
                else:
                    raise
                log.error("%s: %s", self.what, msg)
                self.repairs.append(msg)
        raise AssertionError("unreachable")

    def _stand_in(self) -> duckdb.DuckDBPyConnection:
        config = {k: v for k, v in self._config.items() if k != "default_block_size"}
        return duckdb.connect(":memory:", config=config)

    def materialize(self, init: Callable[[duckdb.DuckDBPyConnection], None]) -> bool:
        """Writer thread: when this is still the in-memory stand-in of a lazy database, opens the
        file, runs ``init`` on its writer connection, then makes it the database (cursors of the
        stand-in are closed as they come back) and returns True. Raises what opening or ``init``
        raised, the stand-in staying in place. False when the file is open already."""
        if not self.in_memory:
            return False
        root = self._connect()
        try:
            writer = root.cursor()
            init(writer)
        except BaseException:
            _quiet_close(root)
            raise
        with self._lock:
            if self._closed:
                _quiet_close(root)
                raise StoreClosed(f"{self.what} is closed")
            for cur in self._pool:
                _quiet_close(cur)
            self._pool.clear()
            _quiet_close(self.writer)
            # Closing a connection closes its cursors: a read still on the stand-in finishes there
            # (an empty answer, as before the write); the stand-in is closed with the database.
            self._stand_ins.append(self._root)
            self._root, self.writer, self.in_memory = root, writer, False
        return True

    def reset_if_damaged(self, e: BaseException) -> bool:
        """For a store whose first reads after open failed: if ``e`` is damage of the database
        file (a block with a bad checksum), moves the file and its WAL aside, opens an empty one,
        logs what was lost and returns True (the store then creates its schema again). Writer
        thread (or before it starts) only."""
        if not repair.is_file_damage(e):
            return False
        with self._lock:
            for cur in self._pool:
                _quiet_close(cur)
            self._pool.clear()
            _quiet_close(self.writer)
            _quiet_close(self._root)
            moved = repair.quarantine(self.path)
            self.quarantined = moved[0] if moved else None
            msg = (f"{self.path} is damaged: reading it failed ({_first_line(e)}); moved aside: "
                   f"{', '.join(str(p) for p in moved)}; starting from a new file "
                   f"(the store salvages what it can read from it)")
            log.error("%s: %s", self.what, msg)
            self.repairs.append(msg)
            self._root = self._connect()
            self.writer = self._root.cursor()
        return True

    def salvage(self, tables: list[str], fixups: list[str]) -> None:
        """After a damaged file was moved aside (and the store created its schema in the new one):
        copies the damaged file's readable rows of ``tables``, runs the store's ``fixups``, logs
        what was kept and lost. No-op otherwise. Writer thread (or before it starts) only."""
        damaged, self.quarantined = self.quarantined, None
        if damaged is None:
            return
        report = repair.salvage(self.writer, damaged, tables, fixups)
        self.writer.execute("CHECKPOINT")
        msg = (f"salvaged from {damaged}: {report}; everything else it held is lost to this server "
               f"(the file stays for offline recovery)")
        log.error("%s: %s", self.what, msg)
        self.repairs.append(msg)

    def reopen(self) -> None:
        """Closes the (broken) instance and opens the file again (WAL replayed). Writer thread
        only; callers must reload any state read through ``writer``. Raises what DuckDB raises
        (e.g. the disk is still full); the database stays closed-but-reopenable then."""
        with self._lock:
            if self._closed:
                raise StoreClosed(f"{self.what} is closed")
            if self.in_memory:  # no file yet: nothing to replay, and the stand-in has no I/O to fail
                return
            for cur in self._pool:
                _quiet_close(cur)
            self._pool.clear()
            _quiet_close(self.writer)
            _quiet_close(self._root)
            root = self._connect()
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
            root = self._root
        try:
            yield cur
        finally:
            with self._lock:
                if self._closed or root is not self._root:  # closed, or reopened meanwhile
                    _quiet_close(cur)
                else:
                    self._pool.append(cur)

    def close(self, *, reclaim_free_blocks: bool = False) -> None:
        """Closes every cursor and the database. Idempotent. ``reclaim_free_blocks``: then rewrites
        the file without its free blocks when enough of it is free (``reclaim.py``; skipped when
        its WAL is not empty); a failure there is logged, the file stays as it was."""
        with self._lock:
            if self._closed:
                return
            for cur in self._pool:
                cur.close()
            self._pool.clear()
            _quiet_close(self.writer)
            _quiet_close(self._root)
            for con in self._stand_ins:
                _quiet_close(con)
            self._closed = True
            if reclaim_free_blocks and not self.in_memory:
                try:
                    reclaim.reclaim(self.path)
                except (duckdb.Error, OSError, RuntimeError) as e:
                    log.warning("%s: rewriting %s without its free blocks failed, kept as it was: %s",
                                self.what, self.path, _first_line(e))


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:300] if lines else type(e).__name__


def _quiet_close(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.close()
    except duckdb.Error:  # an invalidated instance may refuse even this
        pass
