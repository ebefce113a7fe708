"""The embedded store alone (no HTTP, no decoding on the clock): a first send, the identical samples
again while they are in the head, again after a compaction moved them into chunks, then an HA
pair's second replica (every series' samples ``--replica-offset-ms`` later, so each lands between
two stored samples: out of order into compacted chunks).

    .venv/bin/python bench/resend_store.py                    # 10,000 series x 120 scrapes
    .venv/bin/python bench/resend_store.py --series 2000 --scrapes 60

The remote-write requests of bench/workload.py are decoded once up front; each phase appends the
same batches with 4 in flight (as 4 HTTP senders would) and prints samples/s and the process' CPU
seconds per million samples. The first send and the replica are each followed by a compaction
(moving the head into chunks), timed apart and as part of the phase ("with compaction"): out of
order samples cost most there. Afterwards every stored sample is compared with what was sent (both
replicas, exactly), and the store's duplicate / identical / out-of-order counters (the ones
``/metrics`` exposes) are checked against what the phases sent.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

from clearsight.ingest import remote_write as rw
from clearsight.model.matchers import Matcher, MatchType
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.embedded import EmbeddedMetricsStore

TENANT = "bench"


def send(store: EmbeddedMetricsStore, batches: list[Any]) -> tuple[float, float]:
    """Wall and process CPU seconds to append ``batches`` with 4 in flight."""
    pending: list[Any] = []
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches:
        pending.append(store.append(TENANT, b))
        if len(pending) >= 4:
            pending.pop(0).result()
    for f in pending:
        f.result()
    return time.perf_counter() - t0, time.process_time() - c0


def compact(store: EmbeddedMetricsStore) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    store.compact()
    return time.perf_counter() - t0, time.process_time() - c0


def report(label: str, total: int, wall: float, cpu: float, first_rate: float | None) -> float:
    rate = total / wall
    rel = f"  ({rate / first_rate:.2f}x the first send)" if first_rate else ""
    print(f"{label:<40} {rate / 1e3:>8.0f}k samples/s  {cpu / total * 1e6:.2f} CPU-s/M{rel}")
    return rate


def expected(batches: list[Any]) -> dict[bytes, dict[int, float]]:
    """Series key (raw labels) -> {ts: value} of everything sent (the last write of a ts wins)."""
    out: dict[bytes, dict[int, float]] = {}
    for b in batches:
        for i, t, v in zip(b.series_idx.tolist(), b.timestamps.tolist(), b.values.tolist(), strict=True):
            out.setdefault(b.keys[i], {})[t] = v
    return out


def check_exact(store: EmbeddedMetricsStore, batches: list[Any], want: dict[bytes, dict[int, float]]) -> int:
    """Compares every stored sample with ``want``; returns the number of series that differ."""
    labels_of = {}
    for b in batches:
        for k in b.keys:
            if k not in labels_of:
                labels_of[k] = tuple(sorted(b.decode_labels(k)))
    by_labels = {labels_of[k]: v for k, v in want.items()}
    data = store.select(TENANT, [Matcher.of(MatchType.RE, "__name__", ".+")], 0, 2**62)
    bad = 0
    seen = 0
    for i, labels in enumerate(data.labels):
        a, b = int(data.offsets[i]), int(data.offsets[i + 1])
        w = by_labels.get(tuple(labels))
        seen += 1
        if w is None:
            bad += 1
            continue
        ts = np.array(sorted(w), dtype=np.int64)
        vals = np.array([w[t] for t in ts.tolist()], dtype=np.float64)
        got_ts, got_v = data.timestamps[a:b], data.values[a:b]
        if not (np.array_equal(got_ts, ts) and np.array_equal(got_v.view(np.int64), vals.view(np.int64))):
            bad += 1
    return bad + (len(by_labels) - seen)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--scrapes", type=int, default=120)
    ap.add_argument("--replica-offset-ms", type=int, default=3_000)
    args, _ = ap.parse_known_args(argv)
    end_ms = int(time.time() * 1000)
    limits = WriteLimits()

    def decoded(p: workload.Payloads) -> list[Any]:
        order = [b for g in itertools.zip_longest(*p.bodies) for b in g if b is not None]
        return [
            rw.decode_write_request(b, content_encoding="snappy", content_type=None, limits=limits)
            for b in order
        ]

    p = workload.build_payloads(args.series, args.scrapes, end_ms=end_ms)
    batches = decoded(p)
    replica = decoded(
        workload.build_payloads(args.series, args.scrapes, end_ms=end_ms + args.replica_offset_ms)
    )
    total = p.total_samples
    tmp = Path(tempfile.mkdtemp(prefix="bench-resend-"))
    try:
        store = EmbeddedMetricsStore(tmp / "data", out_of_order_window_ms=3_600_000, compact_min_rows=10**9)
        try:
            w, c = send(store, batches)
            cw, cc = compact(store)
            first = report("first send", total, w, c, None)
            report("first send with compaction", total, w + cw, c + cc, None)
            first_c = total / (w + cw)
            s0 = store.stats()
            w, c = send(store, batches)
            report("identical re-send (chunks)", total, w, c, first)
            s1 = store.stats()
            w, c = send(store, replica)
            cw, cc = compact(store)
            report(f"HA replica +{args.replica_offset_ms} ms", total, w, c, first)
            report(f"HA replica +{args.replica_offset_ms} ms with compaction", total, w + cw, c + cc, first_c)
            s2 = store.stats()
            store.sync()
            want = expected(batches)
            for key, pts in expected(replica).items():
                want.setdefault(key, {}).update(pts)
            bad = check_exact(store, batches + replica, want)
            n_want = sum(len(v) for v in want.values())
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dup = s1.duplicates_total - s0.duplicates_total
    ident = s1.identical_total - s0.identical_total
    ooo = s2.out_of_order_total - s1.out_of_order_total
    # A replica sample is out of order unless it is newer than every sample of its series: only
    # each series' last replica sample is (the offset is below the scrape interval).
    ooo_want = total - p.n_series
    print(
        f"counters: re-send duplicates {dup:,} (identical {ident:,}) of {total:,} sent; "
        f"replica out of order {ooo:,} (expected {ooo_want:,})"
    )
    print(f"data: {n_want:,} distinct samples sent, {bad} series differ from what was sent")
    ok = bad == 0 and dup == total and ident == total and ooo == ooo_want
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
