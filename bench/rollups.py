"""Rollups (docs/storage.md "Rollups"), in process: 30 days of counters at 60 s, then a 30-day
``sum by (instance) (rate(x_total[1h]))`` at a 1 h step answered from the rollups and from raw
samples (the same store, through a selector without rollups).

    .venv/bin/python bench/rollups.py                    # 200 series x 30 days x 60 s
    .venv/bin/python bench/rollups.py --series 50 --days 7

Prints: load and compaction time, the rollup catch-up pass (CPU s), the rollup rows' bytes against
the chunks' payload, and per path the median wall and CPU time of the query over ``--rounds`` rounds
after one warm-up, the raw samples it loaded and the rollup buckets it read. Run it under
``flock /tmp/bench.lock`` and read the machine load printed with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from tests.unit.store.rollup_data import DAY, HOUR, T0, RawOnly

from clearsight.model.labels import make_labels
from clearsight.model.rollups import ONE_HOUR_MS
from clearsight.model.samples import SampleBatch
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.result import QueryResult
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.rollups import NAMES, SCHEMES
from clearsight.store.interface import SeriesSelector

QUERY = "sum by (instance) (rate(x_total[1h]))"


def _load(store: EmbeddedMetricsStore, series: int, days: int, interval_ms: int) -> int:
    rng = np.random.default_rng(1)
    labels = [make_labels({"__name__": "x_total", "instance": f"host{i % 20}", "cpu": str(i // 20)})
              for i in range(series)]
    per_day = DAY // interval_ms
    values = np.zeros(series)
    total = 0
    for day in range(days):
        ts = T0 + day * DAY + interval_ms * np.arange(1, per_day + 1, dtype=np.int64)
        inc = rng.random((series, per_day)) * 100
        cols = values[:, None] + np.cumsum(inc, axis=1)
        values = cols[:, -1]
        batch = SampleBatch.from_series([(labels[i], list(zip(ts.tolist(), cols[i].tolist(), strict=True)))
                                         for i in range(series)])
        store.append("t", batch).result()
        total += series * per_day
        if day % 3 == 2:
            store.compact()
    store.compact()
    return total


def _table_bytes(store: EmbeddedMetricsStore, tables: list[str], tmp: Path) -> int:
    """The file size of a new database holding only the rows of ``tables`` (partitions of one
    table) in one table (an empty one subtracted)."""
    sizes = []
    union = " UNION ALL ".join(f"SELECT * FROM {t}" for t in tables)
    for what in (union, f"SELECT * FROM {tables[0]} LIMIT 0"):
        path = tmp / f"copy-{tables[0]}-{len(sizes)}.duckdb"
        with store._reader() as cur:
            cur.execute(f"ATTACH '{path}' AS cp (BLOCK_SIZE 65536)")
            try:
                cur.execute(f"CREATE TABLE cp.t AS {what}")
                cur.execute("CHECKPOINT cp")
            finally:
                cur.execute("DETACH cp")
        sizes.append(path.stat().st_size)
    return sizes[0] - sizes[1]


def _run(engine: Engine, sel: SeriesSelector, start: int, end: int, rounds: int) -> tuple[float, float, QueryResult]:
    engine.range(sel, QUERY, start, end, ONE_HOUR_MS)  # warm-up
    walls, cpus = [], []
    res: QueryResult | None = None
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        res = engine.range(sel, QUERY, start, end, ONE_HOUR_MS)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    assert res is not None
    return statistics.median(walls), statistics.median(cpus), res


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--series", type=int, default=200)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--rounds", type=int, default=5)
    args, _ = p.parse_known_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    tmp = Path(tempfile.mkdtemp(prefix="clearsight-rollups-"))
    try:
        store = EmbeddedMetricsStore(tmp, retention_ms=10**13, out_of_order_window_ms=HOUR, compact_min_rows=10**9)
        try:
            t = time.perf_counter()
            n = _load(store, args.series, args.days, int(args.interval * 1000))
            print(f"loaded {n:,} samples ({args.series} series x {args.days} days at {args.interval:g} s) in "
                  f"{time.perf_counter() - t:.1f} s")
            now = T0 + args.days * DAY + 2 * HOUR
            c = time.process_time()
            store.run_rollups(now)
            cpu = time.process_time() - c
            prog = store.stats().rollups
            assert prog is not None
            print(f"rollup catch-up: {cpu:.2f} CPU-s, rows {prog.blocks_written_total}, "
                  f"buckets {prog.buckets_written_total}")
            with store._reader() as cur:
                tables = {"chunks": [t for (t,) in cur.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, 'chunks')").fetchall()]}
                tables |= {f"rollups_{NAMES[r]}": [p.name for p in sch.list(cur)] for r, sch in SCHEMES.items()}
            sizes = {t: _table_bytes(store, parts, tmp) for t, parts in tables.items()}
            print("each table copied alone into a new database file: " + ", ".join(
                f"{t} {v:,} B ({v / n:.2f} B per raw sample)" for t, v in sizes.items()))
            engine = Engine()
            start, end = T0 + HOUR, T0 + args.days * DAY
            r_wall, r_cpu, rolled = _run(engine, store.querier("t"), start, end, args.rounds)
            b0 = store.stats().rollups
            assert b0 is not None
            raw_wall, raw_cpu, raw = _run(engine, RawOnly(store.querier("t")), start, end, args.rounds)
            buckets = b0.buckets_read_total // max(1, b0.reads_total)
            worst = 0.0
            by = {s.labels: s.values for s in raw.series}
            for s in rolled.series:
                worst = max(worst, float(np.nanmax(np.abs(s.values - by[s.labels]) / np.abs(by[s.labels]))))
            print(f"query: {QUERY}, {args.days} days at 1h step ({len(rolled.series)} series out)")
            print(f"  rollups: median {r_wall * 1000:.1f} ms wall, {r_cpu * 1000:.1f} ms CPU; raw samples loaded "
                  f"{rolled.stats.samples_loaded:,}, rollup buckets read {buckets:,}")
            print(f"  raw:     median {raw_wall * 1000:.1f} ms wall, {raw_cpu * 1000:.1f} ms CPU; raw samples loaded "
                  f"{raw.stats.samples_loaded:,}")
            print(f"  speed-up {raw_wall / r_wall:.1f}x wall; largest relative difference {worst:.2e}")
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
