"""Label-index selection at scale: how fast matchers select series among millions.

Builds the embedded store's in-memory ``TenantIndex`` for N node_exporter-like series (default
2,000,000: 2,000 hosts x 1,000 series) and times typical dashboard selectors (median of 5).
This measures the index alone (no DuckDB, no samples).

Usage: ``.venv/bin/python bench/label_index.py [--hosts 2000] [--per-host 1000]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

from clearsight.model.matchers import Matcher
from clearsight.store.embedded.index import TenantIndex

SELECTORS: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("one metric, all hosts", [("=", "__name__", "node_cpu_seconds_total")]),
    ("one metric, one host", [("=", "__name__", "node_cpu_seconds_total"), ("=", "instance", "host-17:9100")]),
    ("one host, all metrics", [("=", "instance", "host-17:9100")]),
    ("metric + regex over hosts", [("=", "__name__", "node_load1"), ("=~", "instance", "host-1[0-9]:9100")]),
    ("metric + negative matcher", [("=", "__name__", "node_cpu_seconds_total"), ("!=", "mode", "idle")]),
    ("regex on metric name", [("=~", "__name__", "node_network_.*_total"), ("=", "instance", "host-3:9100")]),
]


def build(hosts: int, per_host: int) -> TenantIndex:
    idx = TenantIndex()
    sid = 0
    modes = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"]
    for h in range(hosts):
        inst = f"host-{h}:9100"
        n = 0
        for cpu in range(16):
            for mode in modes:
                idx.add(sid, (("__name__", "node_cpu_seconds_total"), ("cpu", str(cpu)), ("instance", inst),
                              ("job", "node"), ("mode", mode)))
                sid += 1
                n += 1
        idx.add(sid, (("__name__", "node_load1"), ("instance", inst), ("job", "node")))
        sid += 1
        n += 1
        k = 0
        while n < per_host:
            idx.add(sid, (("__name__", f"node_network_m{k % 40}_total"), ("device", f"eth{k // 40}"),
                          ("instance", inst), ("job", "node")))
            sid += 1
            n += 1
            k += 1
    return idx


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=2000)
    ap.add_argument("--per-host", type=int, default=1000)
    args, _ = ap.parse_known_args(argv)
    t0 = time.perf_counter()
    idx = build(args.hosts, args.per_host)
    built = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"index of {len(idx):,} series built in {built:.1f}s; peak RSS {rss_mb:,.0f} MB")
    print(f"{'selector':32s} {'series':>9s} {'median ms':>10s}")
    for name, spec in SELECTORS:
        ms = [Matcher.of(t, n, v) for t, n, v in spec]
        times = []
        for _ in range(5):
            t = time.perf_counter()
            ids = idx.select(ms)
            times.append(time.perf_counter() - t)
        print(f"{name:32s} {len(ids):9,d} {statistics.median(times) * 1000:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
