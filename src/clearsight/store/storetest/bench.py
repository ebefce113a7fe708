"""Measures the embedded store: ingest rate, bytes per sample, select latency.

    python -m clearsight.store.storetest.bench [--series 10000] [--samples 120] [--batch 2000]
    python -m clearsight.store.storetest.bench --series 2360 --samples 1440 --batch 2360 --per-host 236
        (dashboard-like: 6 h of 15 s scrapes of 10 hosts)

Ingests a node_exporter-like workload (storetest/workload.py) with the default compaction policy,
32 batches in flight, then flushes, compacts the rest of the head and runs selects. Prints one line
per measurement. Numbers depend on the machine and its load; compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import time
from pathlib import Path

from clearsight.model.matchers import Matcher
from clearsight.model.samples import SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.interface import AppendResult, Overloaded
from clearsight.store.storetest import workload


def ingest(store: EmbeddedMetricsStore, batches: list[SampleBatch], tenant: str = "bench") -> None:
    inflight: list[concurrent.futures.Future[AppendResult]] = []
    for b in batches:
        while True:
            try:
                inflight.append(store.append(tenant, b))
                break
            except Overloaded:
                inflight.pop(0).result()
        if len(inflight) >= 32:
            inflight.pop(0).result()
    for f in inflight:
        f.result()


def _disk(store: EmbeddedMetricsStore, total: int, what: str) -> None:
    br = store.storage_breakdown()
    files = br["file_bytes"] + br["wal_bytes"] + br["head_log_file_bytes"]  # the head log's preallocated segments
    print(
        f"{what}: files {files:,} bytes = "
        f"{files / total:.2f} bytes/sample; blocks in use "
        f"{br['used_block_bytes'] / total:.2f} bytes/sample; chunk payload "
        f"{br['chunk_payload_bytes'] / max(br['chunk_samples'], 1):.2f} bytes/sample over "
        f"{br['chunk_rows']:,} chunks; head rows {br['head_rows']:,}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=120)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--per-host", type=int, default=500)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    labels = workload.series_labels(args.series, series_per_host=args.per_host)
    ts = workload.timestamps(args.samples)
    vals = workload.values_matrix(args.series, args.samples)
    batches = workload.scrape_batches(labels, ts, vals, args.batch)
    total = args.series * args.samples
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        store = EmbeddedMetricsStore(
            Path(d),
            retention_ms=10**12,
            out_of_order_window_ms=3_600_000,
            max_active_series_per_tenant=0,
            queue_max_batches=64,
        )
        t0 = time.perf_counter()
        ingest(store, batches)
        el = time.perf_counter() - t0
        st = store.stats()
        print(
            f"ingest: {total:,} samples in {el:.2f} s = {total / el:,.0f} samples/s "
            f"({len(batches)} batches of {args.batch} series, {st.commits_total} commits, "
            f"compactions included)"
        )
        t1 = time.perf_counter()
        store.flush()
        print(f"flush: {time.perf_counter() - t1:.2f} s")
        _disk(store, total, "after flush")
        t1 = time.perf_counter()
        store.compact()
        print(f"compact rest of head + checkpoint: {time.perf_counter() - t1:.2f} s")
        _disk(store, total, "after compact")
        end = int(ts[-1])
        start = max(int(ts[0]), end - 6 * 3_600_000)
        queries = [
            (
                "cpu of one host",
                [
                    Matcher.of("=", "__name__", "node_cpu_seconds_total"),
                    Matcher.of("=", "instance", "host-0001:9100"),
                ],
            ),
            (
                "cpu of two hosts (regex)",
                [
                    Matcher.of("=", "__name__", "node_cpu_seconds_total"),
                    Matcher.of("=~", "instance", "host-000(1|2):9100"),
                ],
            ),
            ("one metric, all hosts", [Matcher.of("=", "__name__", "node_cpu_seconds_total")]),
            ("every series", [Matcher.of("=", "job", "node")]),
        ]
        for name, ms in queries:
            lat = []
            for _ in range(7):
                t2 = time.perf_counter()
                r = store.select("bench", ms, start, end)
                lat.append(time.perf_counter() - t2)
            print(
                f"select {name}: {len(r)} series, {r.timestamps.shape[0]:,} samples over "
                f"{(end - start) / 3_600_000:.1f} h: median {statistics.median(lat) * 1000:.1f} ms"
            )
        store.close()


if __name__ == "__main__":
    main()
