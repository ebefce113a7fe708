"""The kernel's recovery from a broken database: the writer fails what it was processing (no future
is left hanging), refuses writes with ``Unavailable`` while ``recover()`` fails, and accepts them
again once it succeeds; ``Database.reopen`` replays the WAL and keeps what was committed."""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from clearsight.store.interface import StoreClosed
from clearsight.store.kernel.database import Database, is_fatal
from clearsight.store.kernel.writer import Command, GroupCommitWriter, Unavailable, run_in_groups


@dataclass
class Item:
    value: int
    future: concurrent.futures.Future[int] = field(default_factory=concurrent.futures.Future)


class Flaky:
    """A store stand-in whose database breaks on item value < 0 and reopens once ``healthy``."""

    def __init__(self) -> None:
        self.healthy = threading.Event()
        self.healthy.set()
        self.recover_calls = 0
        self.committed: list[int] = []

    def process(self, items: list[Item | Command]) -> None:
        run_in_groups(items, self.commit, lambda c: c.kind)

    def commit(self, group: list[Item]) -> None:
        if any(it.value < 0 for it in group):
            self.healthy.clear()
            raise duckdb.FatalException("FATAL Error: Could not write file: No space left on device")
        self.committed.extend(it.value for it in group)
        for it in group:
            it.future.set_result(it.value)

    def recover(self) -> None:
        self.recover_calls += 1
        if not self.healthy.is_set():
            raise OSError(28, "No space left on device")


def test_a_broken_database_fails_the_group_refuses_writes_and_recovers() -> None:
    f = Flaky()
    w: GroupCommitWriter[Item] = GroupCommitWriter("t", f.process, queue_max=8, retry_after=lambda q: 1.0,
                                                   recover=f.recover, recover_seconds=0.05, what="test store")
    w.start()
    try:
        ok = Item(1)
        w.submit(ok)
        assert ok.future.result(10) == 1
        bad = Item(-1)
        w.submit(bad)
        with pytest.raises(Unavailable, match="No space left on device") as ei:
            bad.future.result(10)
        assert ei.value.retry_after >= 1.0
        assert isinstance(ei.value, StoreClosed)  # the API answers 503
        while f.recover_calls < 3:  # keeps trying while the disk is full
            threading.Event().wait(0.02)
        with pytest.raises(Unavailable):
            w.submit(Item(2))
        assert w.broken is not None and "No space left" in w.broken
        f.healthy.set()
        for _ in range(500):
            if w.broken is None:
                break
            threading.Event().wait(0.01)
        assert w.broken is None and w.recoveries == 1
        again = Item(3)
        w.submit(again)
        assert again.future.result(10) == 3
        assert f.committed == [1, 3]
    finally:
        w.close()


def test_without_recover_the_items_in_flight_fail_instead_of_hanging() -> None:
    f = Flaky()
    w: GroupCommitWriter[Item] = GroupCommitWriter("t", f.process, queue_max=8, retry_after=lambda q: 1.0,
                                                   what="test store")
    w.start()
    try:
        bad = Item(-1)
        w.submit(bad)
        with pytest.raises(StoreClosed, match="writer failed"):
            bad.future.result(10)
        with pytest.raises(StoreClosed):
            w.submit(Item(1))
    finally:
        w.close()


def test_a_fatal_command_error_is_set_on_its_future_and_recovered_from() -> None:
    calls: list[str] = []
    broken = threading.Event()

    def run_command(c: Command) -> str:
        if c.kind == "checkpoint":
            broken.set()
            raise duckdb.FatalException("FATAL Error: Failed to create checkpoint")
        return c.kind

    def process(items: list[Item | Command]) -> None:
        run_in_groups(items, lambda g: None, run_command)

    def recover() -> None:
        calls.append("recover")

    w: GroupCommitWriter[Item] = GroupCommitWriter("t", process, queue_max=8, retry_after=lambda q: 1.0,
                                                   recover=recover, recover_seconds=0.05)
    w.start()
    try:
        fut = w.command("checkpoint")
        with pytest.raises(duckdb.FatalException):
            fut.result(10)
        for _ in range(500):
            if calls:
                break
            threading.Event().wait(0.01)
        assert calls == ["recover"]
        assert w.command("barrier").result(10) == "barrier"
    finally:
        w.close()


def test_is_fatal() -> None:
    assert is_fatal(duckdb.FatalException("x"))
    assert is_fatal(duckdb.Error("FATAL Error: database has been invalidated because of a previous fatal error"))
    assert not is_fatal(duckdb.TransactionException("Failed to commit: No space left on device"))
    assert not is_fatal(ValueError("x"))


def test_reopen_keeps_what_was_committed(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.duckdb", checkpoint_threshold="1GB", threads=1, memory_limit="64MB")
    try:
        db.writer.execute("CREATE TABLE t (v INTEGER)")
        db.writer.execute("INSERT INTO t VALUES (1), (2)")  # in the WAL only
        with db.reader() as cur:
            assert cur.execute("SELECT count(*) FROM t").fetchone() == (2,)
        old = db.writer
        db.reopen()
        assert db.writer is not old and db.reopens == 1
        assert db.writer.execute("SELECT sum(v) FROM t").fetchone() == (3,)
        with db.reader() as cur:  # the pool holds cursors of the new instance only
            assert cur.execute("SELECT sum(v) FROM t").fetchone() == (3,)
    finally:
        db.close()
    with pytest.raises(StoreClosed):
        db.reopen()


def test_a_cursor_lent_across_a_reopen_is_not_pooled(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.duckdb", checkpoint_threshold="1GB", threads=1, memory_limit="64MB")
    try:
        db.writer.execute("CREATE TABLE t (v INTEGER)")
        with db.reader() as lent:
            db.reopen()  # the writer recovered while a read was running
            old = lent
        with db.reader() as cur:
            assert cur is not old  # the old instance's cursor was closed, not returned to the pool
            assert cur.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        db.close()
