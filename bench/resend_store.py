"""The embedded store alone (no HTTP, no decoding on the clock): a first send, the identical samples
again while they are in the head, and again after a compaction moved them into chunks.

    .venv/bin/python bench/resend_store.py                    # 10,000 series x 120 scrapes
    .venv/bin/python bench/resend_store.py --series 2000 --scrapes 60

The remote-write requests of bench/workload.py are decoded once up front; each phase appends the
same batches with 4 in flight (as 4 HTTP senders would) and prints samples/s and the process' CPU
seconds per million samples.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

from clearsight.ingest import remote_write as rw
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.embedded import EmbeddedMetricsStore


def send(store: EmbeddedMetricsStore, batches: list[Any], total: int, label: str) -> float:
    pending: list[Any] = []
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches:
        pending.append(store.append("bench", b))
        if len(pending) >= 4:
            pending.pop(0).result()
    for f in pending:
        f.result()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = total / wall
    print(f"{label:<28} {rate / 1e3:>8.0f}k samples/s  {cpu / total * 1e6:.2f} CPU-s/M  "
          f"(duplicates so far {store.stats().duplicates_total:,})")
    return rate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--scrapes", type=int, default=120)
    args, _ = ap.parse_known_args(argv)
    p = workload.build_payloads(args.series, args.scrapes, end_ms=int(time.time() * 1000))
    order = [b for g in itertools.zip_longest(*p.bodies) for b in g if b is not None]
    limits = WriteLimits()
    batches = [rw.decode_write_request(b, content_encoding="snappy", content_type=None, limits=limits) for b in order]
    tmp = Path(tempfile.mkdtemp(prefix="bench-resend-"))
    try:
        store = EmbeddedMetricsStore(tmp / "data", out_of_order_window_ms=3_600_000, compact_min_rows=10**9)
        try:
            first = send(store, batches, p.total_samples, "first send")
            again = send(store, batches, p.total_samples, "identical re-send (head)")
            store.compact()
            chunks = send(store, batches, p.total_samples, "identical re-send (chunks)")
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"re-send / first send: head {again / first:.2f}x, chunks {chunks / first:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
