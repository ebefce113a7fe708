"""The head's background merges (store/embedded/head.py): merges larger than the inline bound run on
the merger and are installed by the writer only while their sources are still in the head; readers
never see a row twice or miss one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from clearsight.model.labels import make_labels
from clearsight.model.samples import SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore, head
from clearsight.store.embedded.head import FANOUT, HeadMirror, make_merger

Model = dict[tuple[int, int], float]


class ManualMerger(Executor):
    """An executor that runs what it was handed only when the test says so."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self.most_queued = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        assert not kwargs
        fut: Future[Any] = Future()
        self.jobs.append((fut, fn, args))
        self.most_queued = max(self.most_queued, len(self.jobs))
        return fut

    def run_pending(self) -> int:
        done = 0
        for fut, fn, args in self.jobs:
            fut.set_result(fn(*args))
            done += 1
        self.jobs.clear()
        return done

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for fut, _, _ in self.jobs:
            fut.cancel()
        self.jobs.clear()


def _cols(pairs: dict[tuple[int, int], float]) -> tuple[Any, Any, Any]:
    items = sorted(pairs.items())
    return (np.array([k[0] for k, _ in items], dtype=np.uint32), np.array([k[1] for k, _ in items], dtype=np.int64),
            np.array([v for _, v in items], dtype=np.float64))


def _everything(mirror: HeadMirror) -> list[tuple[int, int, float]]:
    sid, ts, vals = mirror.select(np.arange(0, 20, dtype=np.uint32), -(2**62), 2**62)
    return list(zip(sid.tolist(), ts.tolist(), vals.tolist(), strict=True))


def _seg_rows(mirror: HeadMirror) -> list[tuple[int, int]]:
    """Every (series, ts) of every segment of the current view (a pair twice: a duplicate)."""
    out: list[tuple[int, int]] = []
    for s in mirror.view().segments:
        out += list(zip(s.sid.tolist(), s.ts.tolist(), strict=True))
    return out


class HeadMergeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.merger = ManualMerger()
        # max_segments: never reached (waiting on a ManualMerger's merge would never end)
        self.mirror = HeadMirror(max_merge_rows=300, inline_merge_rows=12, merger=self.merger, max_segments=10**9)
        self.model: Model = {}
        self.clock = 0

    @rule(groups=st.lists(st.tuples(st.lists(st.integers(1, 12), min_size=1, max_size=8, unique=True),
                                    st.sampled_from([0, 0, 0, 0, 0, 1, 3]), st.sampled_from([0, 0, 0, 0, 0, 0, 1, 4]),
                                    st.integers(-50, 50)),
                          min_size=1, max_size=12))
    def write(self, groups: list[tuple[list[int], int, int, int]]) -> None:
        """Group commits: each adds a sample per series (``late`` steps back in time: maybe
        rewriting present pairs) and deletes ``redo`` present pairs, as the store does (a pair is
        deleted before it is written again)."""
        for series, late, redo, value in groups:
            self.clock += 1
            new = {(s, self.clock - late): float(value + s) for s in series}
            gone = sorted({k for k in new if k in self.model} | set(sorted(self.model)[:redo]))
            delete = (np.array([k[0] for k in gone], dtype=np.uint32), np.array([k[1] for k in gone], dtype=np.int64))
            self.mirror.apply(_cols(new), delete if gone else None)
            for k in gone:
                del self.model[k]
            self.model.update(new)

    @rule(back=st.integers(0, 40))
    def drop(self, back: int) -> None:
        cutoff = self.clock - back
        assert self.mirror.drop_before(cutoff) == sum(1 for k in self.model if k[1] < cutoff)
        self.model = {k: v for k, v in self.model.items() if k[1] >= cutoff}

    @rule()
    def clear(self) -> None:
        self.mirror.clear()
        self.model = {}

    @rule()
    def replace_all(self) -> None:
        self.mirror.replace_all(*_cols(self.model))

    @precondition(lambda self: bool(self.merger.jobs))
    @rule()
    def merge_done(self) -> None:
        assert self.merger.run_pending() == 1

    @rule()
    def idle(self) -> None:
        self.mirror.install_merged()

    @invariant()
    def reads_match_model(self) -> None:
        assert _everything(self.mirror) == sorted((s, t, v) for (s, t), v in self.model.items())
        pairs = _seg_rows(self.mirror)
        assert len(pairs) == len(set(pairs)) == len(self.model)  # no row twice, none missing
        assert self.merger.most_queued <= 1  # never more than one merge in flight
        assert self.mirror.merging or not self.merger.jobs


TestHeadMerge = HeadMergeMachine.TestCase
TestHeadMerge.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def _fill(mirror: HeadMirror, groups: int, rows: int, t0: int = 0) -> None:
    for g in range(groups):
        sid = np.arange(1, rows + 1, dtype=np.uint32)
        mirror.apply((sid, np.full(rows, t0 + g, dtype=np.int64), np.full(rows, float(t0 + g))))


def test_background_merge_is_installed_when_its_sources_are_unchanged() -> None:
    merger = ManualMerger()
    mirror = HeadMirror(inline_merge_rows=10, merger=merger)
    _fill(mirror, FANOUT, 5)  # 8 segments of 5 rows: 40 rows, over the inline bound
    assert mirror.segments == FANOUT and len(merger.jobs) == 1 and mirror.merging
    before = _everything(mirror)
    merger.run_pending()
    assert mirror.segments == FANOUT  # not installed until the writer's next call
    assert mirror.install_merged() is True
    assert mirror.segments == 1 and mirror.merges_installed == 1 and not mirror.merging
    assert mirror.view().segments[0].level == 1
    assert _everything(mirror) == before


@pytest.mark.parametrize("change", ["delete", "drop", "clear", "replace"])
def test_merge_whose_sources_changed_is_discarded(change: str) -> None:
    merger = ManualMerger()
    mirror = HeadMirror(inline_merge_rows=10, merger=merger)
    _fill(mirror, FANOUT, 5)
    if change == "delete":  # series 1 at ts 3 leaves the fourth source: a new segment replaces it
        mirror.apply(_cols({}), (np.array([1], dtype=np.uint32), np.array([3], dtype=np.int64)))
    elif change == "drop":
        assert mirror.drop_before(1) == 5
    elif change == "clear":
        mirror.clear()
    else:
        mirror.replace_all(*_cols({(1, 100): 1.0}))
    after = _everything(mirror)
    merger.run_pending()
    mirror.install_merged()
    assert mirror.merges_discarded == 1 and mirror.merges_installed == 0
    assert _everything(mirror) == after  # nothing came back, nothing is there twice
    if change == "delete":  # the changed run is merged again, from its current segments
        assert len(merger.jobs) == 1
        merger.run_pending()
        mirror.install_merged()
        assert mirror.segments == 1 and _everything(mirror) == after


def test_writer_thread_merges_at_most_the_inline_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a real merger: every merge on the writer's thread holds at most ``inline_merge_rows``,
    the larger ones run on the merger thread, and the rows read back."""
    seen: list[tuple[str, int]] = []
    real = head._merge

    def spy(segs: list[Any]) -> Any:
        seen.append((threading.current_thread().name, sum(len(s) for s in segs)))
        return real(segs)

    monkeypatch.setattr(head, "_merge", spy)
    mirror = HeadMirror(max_merge_rows=20_000, inline_merge_rows=1_000, merger=make_merger("test-head-merge"))
    try:
        _fill(mirror, 600, 50)
        mirror.install_merged()
        writer = threading.current_thread().name
        inline = [n for name, n in seen if name == writer]
        background = [n for name, n in seen if name != writer]
        assert inline and max(inline) <= 1_000
        assert background and min(background) > 1_000 and max(background) <= 20_000
        assert all(name.startswith("test-head-merge") for name, _ in seen if name != writer)
        assert mirror.rows == 30_000 and len(set(_seg_rows(mirror))) == 30_000
    finally:
        mirror.close()
    assert not any(t.name.startswith("test-head-merge") for t in threading.enumerate())


def test_close_drops_a_merge_in_flight() -> None:
    merger = ManualMerger()
    mirror = HeadMirror(inline_merge_rows=10, merger=merger)
    _fill(mirror, FANOUT, 5)
    assert mirror.merging
    mirror.close()
    assert not mirror.merging and mirror.segments == FANOUT and mirror.rows == 40


def _batch(series: int, t: int) -> SampleBatch:
    return SampleBatch.from_series([(make_labels({"__name__": "m", "s": str(i)}), [(t, float(i))]) for i in range(series)])


def test_store_close_leaves_no_merger_thread(tmp_path: Path) -> None:
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1, compact_min_rows=10**9)
    try:
        for k in range(FANOUT * FANOUT):  # 64 groups of 400 rows: level-1 merges of 25,600 rows
            store.append("t", _batch(400, 1_700_000_000_000 + k * 1000)).result()
        assert any(t.name.startswith("clearsight-head-merge") for t in threading.enumerate())
        assert store._head.rows == 64 * 400
    finally:
        store.close()
    assert not any(t.name.startswith("clearsight-head-merge") for t in threading.enumerate())


def test_writer_waits_for_a_starved_merger_at_max_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """A merger slower than the commits: the head holds at most ``max_segments`` (+ the one
    added) segments, the writer waiting for the merge in flight when it has that many."""
    release = threading.Event()
    real = head._merge

    def slow(segs: list[Any]) -> Any:
        release.wait(0.05)  # a merger starved of CPU
        return real(segs)

    monkeypatch.setattr(head, "_merge", slow)
    mirror = HeadMirror(inline_merge_rows=10, merger=make_merger("test-head-slow"), max_segments=20)
    try:
        most = 0
        for g in range(200):
            mirror.apply((np.arange(1, 6, dtype=np.uint32), np.full(5, g, dtype=np.int64), np.ones(5)))
            most = max(most, mirror.segments)
        assert mirror.merges_waited > 0 and most <= 21
        sid, ts, _ = mirror.select(np.arange(1, 6, dtype=np.uint32), 0, 10**6)
        assert len(set(zip(sid.tolist(), ts.tolist(), strict=True))) == sid.shape[0] == 1000
    finally:
        mirror.close()
