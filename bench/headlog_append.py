"""The metrics writer's cost per steady-state group commit, in process: ``--groups`` appends of
``--series`` samples (one sample per series, series already known, one append awaited at a time, so
each is one group commit of new head rows only), on an embedded store in a temporary directory.

Prints the writer thread's CPU per group (from ``/proc/self/task/<tid>/schedstat``: nanoseconds on
CPU), the commit's wall time per group (the store's ``commit_seconds_sum / commits_total``) and the
producer's round trip per append (p50 / p99). Uses only the store's public API, so it runs on any
build (schema 5's ``INSERT INTO head_log`` per group, or schema 6's head log append).

Usage:
  PYTHONPATH=src .venv/bin/python bench/headlog_append.py [--groups 3000] [--series 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from clearsight.model.samples import SampleBatch, canonical_key
from clearsight.store.embedded import EmbeddedMetricsStore

T0 = 1_700_000_000_000


def _cpu_ns(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


def _writer_tid() -> int:
    for t in threading.enumerate():
        if t.name == "clearsight-metrics-writer" and t.native_id is not None:
            return t.native_id
    raise RuntimeError("no writer thread")


def run(groups: int, series: int) -> dict[str, float]:
    keys = [canonical_key((("__name__", "bench"), ("s", str(i)))) for i in range(series)]

    def batch(k: int) -> SampleBatch:
        b = SampleBatch.from_series([])
        b.keys = keys
        b.series_idx = np.arange(series, dtype=np.int32)
        b.timestamps = np.full(series, T0 + k * 1000, dtype=np.int64)
        b.values = np.sin(k * 1000.0 + np.arange(series))
        return b

    with tempfile.TemporaryDirectory() as d:
        store = EmbeddedMetricsStore(Path(d), retention_ms=10**13, out_of_order_window_ms=10**10,
                                     compact_min_rows=10**9, compact_samples_per_series=10**6)
        try:
            for k in range(50):  # series created, caches and segment warm
                store.append("t", batch(k)).result()
            tid = _writer_tid()
            st0 = store.stats()
            cpu0 = _cpu_ns(tid)
            lat = np.empty(groups)
            for k in range(groups):
                t = time.perf_counter()
                store.append("t", batch(50 + k)).result()
                lat[k] = time.perf_counter() - t
            cpu = _cpu_ns(tid) - cpu0
            st = store.stats()
        finally:
            store.close()
    commits = st.commits_total - st0.commits_total
    return {
        "writer_cpu_us_per_group": cpu / 1e3 / groups,
        "commit_wall_us_per_group": (st.commit_seconds_sum - st0.commit_seconds_sum) / commits * 1e6,
        "append_p50_us": float(np.percentile(lat, 50)) * 1e6,
        "append_p99_us": float(np.percentile(lat, 99)) * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=3000)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for r in range(args.rounds):
        out = run(args.groups, args.series)
        print(json.dumps({"round": r, **{k: round(v, 1) for k, v in out.items()}}))


if __name__ == "__main__":
    main()
