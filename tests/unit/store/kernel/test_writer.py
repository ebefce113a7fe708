"""Contract of the kernel's group-commit writer (store/kernel/writer.py), independent of any store."""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass, field

import pytest

from clearsight.store.interface import Overloaded, StoreClosed
from clearsight.store.kernel.writer import Command, GroupCommitWriter


@dataclass
class Item:
    value: int
    future: concurrent.futures.Future[int] = field(default_factory=concurrent.futures.Future)


class Recorder:
    """A store stand-in: records the groups it is handed, resolves futures after "committing"."""

    def __init__(self) -> None:
        self.groups: list[list[object]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.idle_calls = 0
        self.closed_on: str | None = None
        self.writer: GroupCommitWriter[Item] | None = None
        self.defer = False

    def process(self, items: list[Item | Command]) -> None:
        self.entered.set()
        self.gate.wait()
        self.groups.append([i.value if isinstance(i, Item) else i.kind for i in items])
        for it in items:
            if isinstance(it, Item):
                it.future.set_result(it.value * 10)
            else:
                it.future.set_result(it.kind)
        if self.defer and self.writer is not None:
            self.writer.defer_idle()

    def on_idle(self) -> None:
        self.idle_calls += 1

    def on_close(self) -> None:
        self.closed_on = threading.current_thread().name


def _writer(rec: Recorder, queue_max: int = 8, idle: float = 0.0) -> GroupCommitWriter[Item]:
    w: GroupCommitWriter[Item] = GroupCommitWriter(
        "test-writer", rec.process, queue_max=queue_max, retry_after=lambda q: float(q),
        idle_seconds=idle, on_idle=rec.on_idle, on_close=rec.on_close, what="test store")
    rec.writer = w
    w.start()
    return w


def test_groups_keep_arrival_order_and_commands_in_between() -> None:
    rec = Recorder()
    w = _writer(rec)
    try:
        rec.gate.clear()
        first = Item(0)
        w.submit(first)
        assert rec.entered.wait(10)  # the writer holds the first group; the rest queue up
        items = [Item(i) for i in range(1, 4)]
        for it in items[:2]:
            w.submit(it)
        barrier = w.command("barrier")
        w.submit(items[2])
        rec.gate.set()
        assert [it.future.result(10) for it in [first, *items]] == [0, 10, 20, 30]
        assert barrier.result(10) == "barrier"
        assert rec.groups == [[0], [1, 2, "barrier", 3]]
    finally:
        w.close()


def test_full_queue_raises_overloaded_with_the_stores_estimate() -> None:
    rec = Recorder()
    w = _writer(rec, queue_max=3)
    try:
        rec.gate.clear()
        w.submit(Item(0))
        assert rec.entered.wait(10)
        for i in range(3):
            w.submit(Item(i))
        with pytest.raises(Overloaded) as exc:
            w.submit(Item(99))
        assert exc.value.retry_after == 3.0
        assert w.queued == 3
        w.command("barrier")  # commands are never refused while the writer runs
        rec.gate.set()
    finally:
        w.close()


def test_idle_work_runs_once_after_the_queue_went_quiet() -> None:
    rec = Recorder()
    rec.defer = True
    w = _writer(rec, idle=0.0)
    try:
        w.submit(Item(1))
        w.command("barrier").result(10)
        rec.defer = False
        w.command("barrier").result(10)  # the idle hook ran in between or runs now
        w.close()
        assert rec.idle_calls == 1
    finally:
        w.close()


def test_close_commits_what_is_queued_then_refuses() -> None:
    rec = Recorder()
    w = _writer(rec)
    rec.gate.clear()
    items = [Item(i) for i in range(5)]
    for it in items:
        w.submit(it)
    closer = threading.Thread(target=w.close)
    closer.start()
    rec.gate.set()
    closer.join(10)
    assert [it.future.result(0) for it in items] == [0, 10, 20, 30, 40]
    assert rec.closed_on == "test-writer"  # on the writer thread, after the last group
    with pytest.raises(StoreClosed):
        w.submit(Item(9))
    with pytest.raises(StoreClosed):
        w.command("barrier")
    w.close()  # idempotent


def test_a_failing_writer_fails_every_queued_future() -> None:
    class Boom(Recorder):
        def process(self, items: list[Item | Command]) -> None:
            self.entered.set()
            self.gate.wait()
            raise RuntimeError("disk on fire")

    rec = Boom()
    w = _writer(rec)
    rec.gate.clear()
    w.submit(Item(0))
    assert rec.entered.wait(10)
    later = Item(1)
    w.submit(later)
    rec.gate.set()
    with pytest.raises(StoreClosed, match="disk on fire"):
        later.future.result(10)
    w.close()
    assert not w.alive and not w.open
    with pytest.raises(StoreClosed):
        w.submit(Item(2))


def test_run_in_groups_commits_appends_between_commands() -> None:
    from clearsight.store.kernel.writer import run_in_groups

    groups: list[list[int]] = []

    def commit(group: list[Item]) -> None:
        groups.append([i.value for i in group])
        for i in group:
            i.future.set_result(i.value)

    def command(cmd: Command) -> object:
        if cmd.kind == "boom":
            raise RuntimeError("no")
        return cmd.kind.upper()

    items: list[Item | Command] = [Item(1), Item(2)]
    cmds = [Command("a", 0, concurrent.futures.Future()), Command("boom", 0, concurrent.futures.Future())]
    items += [cmds[0], Item(3), cmds[1], Item(4)]
    run_in_groups(items, commit, command)
    assert groups == [[1, 2], [3], [4]]
    assert cmds[0].future.result(0) == "A"
    with pytest.raises(RuntimeError, match="no"):
        cmds[1].future.result(0)


def test_retry_after_estimate_is_bounded() -> None:
    from clearsight.store.kernel.writer import retry_after_estimate

    assert retry_after_estimate(0.0, 0, 5) == 1.0  # no commits yet: 0.1 s each, at least 1 s
    assert retry_after_estimate(10.0, 10, 7) == 7.0
    assert retry_after_estimate(100.0, 1, 9) == 30.0
