"""Acked means durable: SIGKILL a process that appends to the embedded store, reopen, and check that
every batch the child saw acknowledged is there.

The child (this file run as a script) appends from several threads and prints the id of each
batch whose future resolved, flushing stdout at once. The parent kills it at a random moment,
reopens the store and checks every printed id. Repeated on the same data directory, every other
run with a compaction policy that compacts, merges and checkpoints all the time.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

SERIES_PER_BATCH = 20
RUNS = 6


def _batch(batch_id: int) -> object:
    from clearsight.model.labels import make_labels
    from clearsight.model.samples import SampleBatch

    series = [
        (
            make_labels({"__name__": "durable", "s": str(s), "w": str(batch_id % 4)}),
            [(batch_id * 1000, float(batch_id))],
        )
        for s in range(SERIES_PER_BATCH)
    ]
    return SampleBatch.from_series(series)


def _child(data_dir: Path, first_id: int, compacting: bool) -> None:
    from clearsight.store.embedded import EmbeddedMetricsStore
    from clearsight.store.interface import Overloaded

    # The compacting runs compact (and checkpoint) every ~100 batches and merge chunks, so kills
    # also land inside compactions and checkpoints.
    policy = (
        {
            "compact_min_rows": 2000,
            "compact_samples_per_series": 0,
            "compact_idle_seconds": 0.0,
            "chunk_target_samples": 300,
        }
        if compacting
        else {}
    )
    store = EmbeddedMetricsStore(
        data_dir,
        retention_ms=10**15,
        out_of_order_window_ms=10**12,
        max_active_series_per_tenant=0,
        queue_max_batches=16,
        **policy,
    )
    ids = itertools.count(first_id)
    out_lock = threading.Lock()

    def work() -> None:
        while True:
            bid = next(ids)
            try:
                fut = store.append("dur", _batch(bid))  # type: ignore[arg-type]
            except Overloaded:
                continue
            fut.result()
            with out_lock:
                sys.stdout.write(f"{bid}\n")
                sys.stdout.flush()

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    threads = [threading.Thread(target=work, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.slow
def test_acked_batches_survive_sigkill(tmp_path: Path) -> None:
    from clearsight.model.matchers import Matcher
    from clearsight.store.embedded import EmbeddedMetricsStore

    rng = random.Random(os.getpid())
    acked_total: list[int] = []
    for run in range(RUNS):
        first_id = (run + 1) * 1_000_000
        proc = subprocess.Popen(
            [sys.executable, __file__, str(tmp_path), str(first_id), str(run % 2)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        acked: list[int] = []
        target = rng.randint(50, 1500)
        for line in proc.stdout:
            acked.append(int(line))
            if len(acked) >= target:
                break
        os.kill(proc.pid, signal.SIGKILL)
        # Ids the child printed before it died are acked too.
        rest, _ = proc.communicate(timeout=30)
        acked.extend(int(x) for x in rest.split() if x.strip())
        assert proc.returncode == -signal.SIGKILL
        acked_total.extend(acked)

        store = EmbeddedMetricsStore(
            tmp_path,
            retention_ms=10**15,
            out_of_order_window_ms=10**12,
            max_active_series_per_tenant=0,
            queue_max_batches=16,
        )
        try:
            data = store.select("dur", [Matcher.of("=", "__name__", "durable")], 0, 10**13)
            assert len(data) == 4 * SERIES_PER_BATCH or not acked_total
            ts_all = data.timestamps
            vals_all = data.values
            present, counts = np.unique(ts_all // 1000, return_counts=True)
            have = dict(zip(present.tolist(), counts.tolist(), strict=True))
            missing = [b for b in acked_total if have.get(b, 0) != SERIES_PER_BATCH]
            assert not missing, f"run {run}: {len(missing)} acked batches lost, e.g. {missing[:5]}"
            # Values belong to their batch: nothing torn or mixed up.
            assert bool(np.all(vals_all == (ts_all // 1000).astype(np.float64)))
            # Rows of unacknowledged batches may exist (committed, ack not printed), never partially.
            assert all(c == SERIES_PER_BATCH for c in have.values())
        finally:
            store.close()
    assert len(acked_total) >= RUNS * 50
    # The compacting runs did move samples into chunks (the kills did not all beat them to it).
    store = EmbeddedMetricsStore(
        tmp_path,
        retention_ms=10**15,
        out_of_order_window_ms=10**12,
        max_active_series_per_tenant=0,
        queue_max_batches=16,
    )
    try:
        assert store.storage_breakdown()["chunk_rows"] > 0
    finally:
        store.close()
    print(f"{len(acked_total)} acked batches across {RUNS} SIGKILLs, 0 lost")


if __name__ == "__main__":
    _child(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1")
