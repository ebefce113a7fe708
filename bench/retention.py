"""Retention of the oldest day of a week-long metrics store: how long the pass takes and what it
leaves in the file.

Builds an embedded metrics store of ``--series`` node_exporter-like series (the storetest workload)
scraped every ``--step`` seconds for ``--days`` days (appended an hour per batch, compacted every 3 h
so chunks hold 720 samples at 15 s), closes and reopens it, then times ``apply_retention`` at
``now = start + days + 1 day`` with ``retention = days`` (cutoff: the end of the first day), the
checkpoint after it, and a small query and a 1-hour select of every series before and after.
Run it against the build to compare with ``PYTHONPATH=<that build's src>``: it uses only the
store's public API (the builds before time partitions ran ``DELETE ... WHERE max_ts < cutoff``; the
partitioned store drops a day table).

Usage: ``flock /tmp/bench.lock .venv/bin/python bench/retention.py [--series 2000] [--days 7] [--step 15]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from clearsight.model.matchers import Matcher
from clearsight.model.samples import SampleBatch, canonical_key
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.storetest import workload

DAY_MS = 86_400_000
T0 = 1_700_006_400_000  # 2023-11-15 00:00 UTC: days start at midnight


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _build(d: Path, series: int, days: int, step_ms: int) -> int:
    labels = workload.series_labels(series)
    keys = [canonical_key(x) for x in labels]
    per_hour = 3600_000 // step_ms
    hours = days * 24
    store = EmbeddedMetricsStore(d, retention_ms=10**15, compact_min_rows=10**9, duckdb_threads=2)
    written = 0
    try:
        for h in range(hours):
            vals = workload.values_matrix(series, per_hour, seed=h)
            ts = T0 + (h * per_hour + np.arange(per_hour, dtype=np.int64)) * step_ms
            b = SampleBatch.from_series([])
            b.keys = keys
            b.series_idx = np.repeat(np.arange(series, dtype=np.int32), per_hour)
            b.timestamps = np.tile(ts, series)
            b.values = np.ascontiguousarray(vals.reshape(-1))
            store.append("bench", b).result()
            written += b.num_samples
            if h % 3 == 2:
                store.compact()
    finally:
        store.close()
    return written


def _timed_reads(store: EmbeddedMetricsStore, end_ms: int) -> tuple[float, float]:
    small = [Matcher.of("=", "__name__", "node_load1"), Matcher.of("=", "instance", "host-0000:9100")]
    everything = [Matcher.of("=~", "__name__", ".+")]
    store.select("bench", everything, end_ms - 3600_000, end_ms)  # warm: both runs read from the caches
    t = time.perf_counter()
    for _ in range(20):
        store.select("bench", small, end_ms - 3600_000, end_ms)
    t_small = (time.perf_counter() - t) / 20
    t = time.perf_counter()
    store.select("bench", everything, end_ms - 3600_000, end_ms)
    return t_small, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--step", type=int, default=15, help="scrape interval, seconds")
    ap.add_argument("--dir", type=Path, default=None, help="keep the data dir here (default: a temp dir)")
    args = ap.parse_args()
    d = args.dir or Path(tempfile.mkdtemp(prefix="cs-retention-"))
    try:
        t = time.perf_counter()
        written = _build(d, args.series, args.days, args.step * 1000)
        print(f"built {written:,} samples ({args.series} series x {args.days} d at {args.step} s) "
              f"in {time.perf_counter() - t:.1f} s; load {os.getloadavg()[0]:.2f}")
        end = T0 + args.days * DAY_MS - 1
        store = EmbeddedMetricsStore(d, retention_ms=args.days * DAY_MS, duckdb_threads=2)
        try:
            before = store.storage_breakdown()
            s0, a0 = _timed_reads(store, end)
            c, t = _cpu(), time.perf_counter()
            removed = store.apply_retention(T0 + (args.days + 1) * DAY_MS)
            t_ret, c_ret = time.perf_counter() - t, _cpu() - c
            c, t = _cpu(), time.perf_counter()
            store.flush()
            t_ck, c_ck = time.perf_counter() - t, _cpu() - c
            after = store.storage_breakdown()
            s1, a1 = _timed_reads(store, end)
        finally:
            store.close()
        mib = 1 << 20
        print(f"retention: {removed:,} samples removed in {t_ret * 1000:.0f} ms wall ({c_ret * 1000:.0f} ms CPU), "
              f"checkpoint after it {t_ck * 1000:.0f} ms wall ({c_ck * 1000:.0f} ms CPU); load {os.getloadavg()[0]:.2f}")
        for name, b in (("before", before), ("after", after)):
            print(f"  {name}: file {b['file_bytes'] / mib:.1f} MiB, used blocks {b['used_block_bytes'] / mib:.1f} MiB, "
                  f"free blocks {b['free_block_bytes'] / mib:.1f} MiB, chunks {b['chunk_rows']:,} "
                  f"({b['chunk_samples']:,} samples, payload {b['chunk_payload_bytes'] / mib:.1f} MiB), "
                  f"partitions {b.get('chunk_partitions', '-')}")
        print(f"  small select (1 series, 1 h): {s0 * 1000:.2f} ms before, {s1 * 1000:.2f} ms after; "
              f"every series 1 h: {a0 * 1000:.1f} ms before, {a1 * 1000:.1f} ms after (warm caches)")
    finally:
        if args.dir is None:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
