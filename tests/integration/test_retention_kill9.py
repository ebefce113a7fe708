"""kill -9 during retention passes loses nothing retention should keep and leaves no duplicates.

The child (this module run with ``-m``) appends batches from one thread (batch ``b``: one sample at
``b * 100`` ms for each of 20 series, value ``b``; ``tests.support.kill9.print_acks`` prints each
acknowledged id) into a store with 1-second chunk partitions, a compaction every ~20 batches and
chunk merges (chunks of 2 s of samples, merged up to 4 s), while another thread runs retention
passes back to back with ``now`` = the newest acknowledged batch's time (5 s retention: a partition
is dropped every few passes), writing ``I <now>`` before each pass and ``D <now>`` after it to
``passes.log`` (one ``write`` each). The parent kills it after a random number of acks, reopens the
store and checks exactly: the retention floor is between the last finished pass's cutoff and the
last started one's (over every run so far: the floor persists), every acknowledged batch at or above the floor is there with all its 20
samples, nothing below the floor is visible, no (series, ts) is stored twice (head and every
partition) and the in-memory catalogue matches the partition tables. Repeated on the same data
directory.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.head_log import replay as _replay
from tests.support.kill9 import kill_after_acks

SERIES = 20
RUNS = 4
RETENTION_MS = 5_000
STEP_MS = 100


def _open(data_dir: Path, **kw: object) -> object:
    from clearsight.store.embedded import EmbeddedMetricsStore

    return EmbeddedMetricsStore(data_dir, retention_ms=RETENTION_MS, out_of_order_window_ms=10**12,
                                partition_ms=1000, queue_max_batches=16, duckdb_threads=1, **kw)  # type: ignore[arg-type]


def _batch(bid: int) -> object:
    from clearsight.model.labels import make_labels
    from clearsight.model.samples import SampleBatch

    return SampleBatch.from_series(
        [(make_labels({"__name__": "kept", "s": str(s)}), [(bid * STEP_MS, float(bid))]) for s in range(SERIES)])


def _child(data_dir: Path, first_id: int) -> None:
    from clearsight.store.embedded import EmbeddedMetricsStore
    from clearsight.store.interface import Overloaded
    from tests.support.kill9 import print_acks

    store = _open(data_dir, compact_min_rows=400, compact_samples_per_series=0, compact_idle_seconds=0.0,
                  chunk_target_samples=40)
    assert isinstance(store, EmbeddedMetricsStore)
    newest = [first_id]
    passes = os.open(data_dir / "passes.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def send(bid: int) -> None:
        while True:
            try:
                fut = store.append("t", _batch(bid))  # type: ignore[arg-type]
            except Overloaded:
                continue
            fut.result()
            newest[0] = max(newest[0], bid)
            return

    def retain() -> None:  # each line one write: it is in the file whatever the kill interrupts
        while True:
            now = newest[0] * STEP_MS
            os.write(passes, f"I {now}\n".encode())
            store.apply_retention(now)
            os.write(passes, f"D {now}\n".encode())
            time.sleep(0.01)

    threading.Thread(target=retain, daemon=True).start()
    print_acks(send, [first_id])


def _check(data_dir: Path, acked: list[int], started: int | None, done: int | None) -> int:
    from clearsight.model.matchers import Matcher
    from clearsight.store.embedded import EmbeddedMetricsStore
    from clearsight.store.embedded.chunk_parts import all_chunks

    store = _open(data_dir)
    assert isinstance(store, EmbeddedMetricsStore)
    try:
        floor = store._floor
        if done is not None:
            assert floor >= done - RETENTION_MS
        if started is not None:
            assert floor <= started - RETENTION_MS, "retention cut more than it was asked to"
        data = store.select("t", [Matcher.of("=", "__name__", "kept")], 0, 2**62)
        ts, vals = data.timestamps, data.values
        present, counts = np.unique(ts, return_counts=True)
        have = dict(zip(present.tolist(), counts.tolist(), strict=True))
        assert all(c == SERIES for c in have.values()), "a batch partly there or stored twice"
        assert bool(np.all(vals == (ts // STEP_MS).astype(np.float64)))
        assert not present.size or int(present.min()) >= floor
        keep = [b for b in acked if b * STEP_MS >= floor]
        missing = [b for b in keep if have.get(b * STEP_MS) != SERIES]
        assert not missing, f"{len(missing)} acked batches above the floor lost, e.g. {missing[:5]}"
        with store._reader() as cur:
            dup = cur.execute(
                f"SELECT count(*) FROM (SELECT series_id, min_ts FROM {all_chunks(cur)} GROUP BY ALL "
                "HAVING count(*) > 1)").fetchall()
            rows = cur.execute(f"SELECT series_id, min_ts, max_ts, n FROM {all_chunks(cur)} ORDER BY ALL").fetchall()
            h_sid, h_ts, h_vals, damaged, _ = _replay(store, cur)  # unique (series, ts)
        m_sid, m_ts, m_vals = store._head.select(np.arange(1, store._next_id, dtype=np.uint32), -(2**62), 2**62)
        assert damaged == 0 and np.array_equal(h_sid, m_sid) and np.array_equal(h_ts, m_ts)  # the log is the mirror
        assert np.array_equal(h_vals.view(np.int64), m_vals.view(np.int64))
        assert dup == [(0,)]
        cat = store._catalog.snapshot()
        assert rows == list(zip(cat.series_id.tolist(), cat.min_ts.tolist(), cat.max_ts.tolist(), cat.n.tolist(),
                                strict=True))
        print(f"floor {floor}, {len(keep)} acked batches kept, {len(rows)} chunks in {store.stats().partitions} "
              f"partitions, {int(ts.shape[0])} samples")
        return len(keep)
    finally:
        store.close()


@pytest.mark.slow
def test_kill9_during_retention_keeps_what_it_should_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(os.getpid())
    acked_total: list[int] = []
    passes_started: list[int] = []
    passes_done: list[int] = []
    for run in range(RUNS):
        first_id = 1 + run * 400  # runs continue where the last one roughly stopped: old data expires
        acked = kill_after_acks([sys.executable, "-m", "tests.integration.test_retention_kill9", str(tmp_path),
                                 str(first_id)], rng.randint(150, 600))
        acked_total.extend(acked)
        lines = [ln.split() for ln in (tmp_path / "passes.log").read_text().splitlines()]
        (tmp_path / "passes.log").unlink()
        # The floor persists across runs on the same directory, and a run may start below where
        # the last one got to (first_id is fixed per run): compare with every run's passes so far.
        passes_started += [int(v) for k, v in lines if k == "I"]
        passes_done += [int(v) for k, v in lines if k == "D"]
        started = max(passes_started, default=None)
        done = max(passes_done, default=None)
        kept = _check(tmp_path, acked_total, started, done)
        print(f"run {run}: killed after {len(acked)} acks; retention passes up to now={done} finished, "
              f"{started} started; {kept} batches above the floor")
    # Retention ran and raised the floor past the first runs' data.
    store = _open(tmp_path)
    try:
        from clearsight.store.embedded import EmbeddedMetricsStore

        assert isinstance(store, EmbeddedMetricsStore)
        assert store._floor > 0
    finally:
        store.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    _child(Path(sys.argv[1]), int(sys.argv[2]))
