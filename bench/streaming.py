"""Peak memory of a wide aggregation, materialised vs streamed (query/promql/streamed.py).

A store of ``--series`` counters x ``--hours`` of 15 s samples (default 50k x 2 h, 24M samples) is
written once in process and compacted; then each mode runs in a fresh process (peak RSS is a
process high-water mark) that opens the store, warms up on a tiny query, and evaluates the range
query ``sum(rate(bench_requests_total[5m]))`` over the whole span (step ``--step`` s):

- ``materialised``: ``Engine(stream_batch_samples=0)``, what every query did before streaming;
- ``streamed``: ``Engine()`` with the default batch bound (``--batch`` to change it).

Printed per mode: RSS after opening and warming up, peak RSS during the query (Linux ``VmHWM``,
reset just before it through ``/proc/self/clear_refs``), their difference (what the query added), the query's own peak accounting (points held at once), wall time, and
whether both answers are bit-identical. Hold ``flock /tmp/bench.lock`` while running it and quote
``uptime`` with the figures.

    .venv/bin/python bench/streaming.py                          # 50k series x 2 h
    .venv/bin/python bench/streaming.py --series 5000 --hours 1  # quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from clearsight.config import StorageConfig
from clearsight.model.labels import make_labels
from clearsight.model.samples import SampleBatch, canonical_key
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.streamed import DEFAULT_BATCH_SAMPLES
from clearsight.store.embedded import EmbeddedMetricsStore

QUERY = "sum(rate(bench_requests_total[5m]))"
SCRAPE_MS = 15_000
T0 = 1_700_000_000_000


def _open(data: Path) -> EmbeddedMetricsStore:
    cfg = StorageConfig()  # the server's defaults for the caches
    return EmbeddedMetricsStore(data, retention_ms=10**13, chunk_cache_samples=cfg.decoded_chunk_cache_samples,
                                chunk_blob_cache_bytes=cfg.chunk_bytes_cache_bytes)


def load(data: Path, series: int, hours: float) -> int:
    """Writes the counters; returns the number of samples."""
    n = int(hours * 3600_000 // SCRAPE_MS)
    keys = [canonical_key(make_labels({"__name__": "bench_requests_total", "instance": f"host-{i // 100:04d}",
                                       "idx": str(i)})) for i in range(series)]
    rng = np.random.default_rng(1)
    level = rng.uniform(0, 1e6, series)
    store = _open(data)
    try:
        for j in range(n):
            level += rng.integers(0, 100, series)
            b = SampleBatch.from_series([])
            b.keys = keys
            b.series_idx = np.arange(series, dtype=np.int32)
            b.timestamps = np.full(series, T0 + j * SCRAPE_MS, dtype=np.int64)
            b.values = level.copy()
            store.append("default", b).result()
        store.compact()
    finally:
        store.close()
    return n * series


def _hwm() -> int:
    """The process' peak RSS since the last reset (VmHWM), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(data: Path, batch: int, end_ms: int, step_s: int) -> None:
    store = _open(data)
    try:
        q = store.querier("default")
        engine = Engine(stream_batch_samples=batch)
        engine.instant(q, 'sum(rate(bench_requests_total{idx="1"}[5m]))', end_ms)  # warm up
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM) to the current RSS
        base = psutil.Process().memory_info().rss
        t = time.perf_counter()
        res = engine.range(q, QUERY, T0, end_ms, step_s * 1000)
        wall = time.perf_counter() - t
        peak = _hwm()
        digest = hashlib.sha256(b"".join(s.values.tobytes() for s in res.series)).hexdigest()
        print(json.dumps({"base": base, "peak": peak, "wall": wall, "points": res.stats.peak_points,
                          "samples": res.stats.samples_loaded, "digest": digest}))
    finally:
        store.close()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=50_000)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--step", type=int, default=60, help="query step, seconds")
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH_SAMPLES, help="samples per streamed batch")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--end", type=int, help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args(argv)
    if args.child is not None:
        child(args.child, args.batch, args.end, args.step)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    try:
        t = time.perf_counter()
        samples = load(tmp / "data", args.series, args.hours)
        end_ms = T0 + int(args.hours * 3600_000) - SCRAPE_MS
        print(f"{args.series:,} series x {args.hours:g} h = {samples:,} samples written in "
              f"{time.perf_counter() - t:.0f} s; query {QUERY} over the span, step {args.step}s")
        rows = {}
        for mode, batch in (("materialised", 0), ("streamed", args.batch)):
            out = subprocess.run([sys.executable, __file__, "--child", str(tmp / "data"), "--batch", str(batch),
                                  "--end", str(end_ms), "--step", str(args.step)],
                                 check=True, capture_output=True, text=True)
            rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        mib = 1 << 20
        print(f"{'mode':<14}{'batch':>11}{'RSS before':>12}{'peak RSS':>10}{'added':>9}{'peak pts':>12}"
              f"{'samples':>13}{'wall s':>8}")
        for mode, r in rows.items():
            batch = 0 if mode == "materialised" else args.batch
            print(f"{mode:<14}{batch:>11,}{r['base'] / mib:>10.0f}Mi{r['peak'] / mib:>8.0f}Mi"
                  f"{(r['peak'] - r['base']) / mib:>7.0f}Mi{r['points']:>12,}{r['samples']:>13,}{r['wall']:>8.1f}")
        same = rows["materialised"]["digest"] == rows["streamed"]["digest"]
        print(f"answers bit-identical: {same}")
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
