"""The chunk codec alone, and the metrics file it leaves, on the remote-write workload.

Stores ``bench/workload.py``'s requests (decoded in process, no HTTP) in an embedded metrics store,
closes it (a clean close compacts the head), and prints the file's bytes per sample and its parts;
then re-encodes the same samples in the first chunk format (zstd) and in PACKED and prints, for
each, the payload per sample and the CPU time to encode them, to decode every chunk, and to decode
3 chunks cut to the last 15 minutes (a small dashboard query's read).

Usage: ``.venv/bin/python bench/chunk_codec.py [--series 10000] [--scrapes 120]``
"""

from __future__ import annotations

import argparse
import functools
import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import workload

from clearsight.ingest import remote_write as rw
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded import chunks as codec
from clearsight.store.embedded.chunk_parts import all_chunks

_ALL = (-(2**63), 2**63 - 1)


def _cpu_per_call(fn: Callable[[], object], calls: int) -> float:
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--scrapes", type=int, default=120)
    args, _unknown = ap.parse_known_args(argv)  # bench/run.py passes the same flags to every bench
    p = workload.build_payloads(args.series, args.scrapes, end_ms=1_764_000_000_000)
    order = [b for g in itertools.zip_longest(*p.bodies) for b in g if b is not None]
    limits = WriteLimits()
    batches = [
        rw.decode_write_request(b, content_encoding="snappy", content_type=None, limits=limits) for b in order
    ]
    tmp = Path(tempfile.mkdtemp(prefix="bench-chunk-codec-"))
    try:
        store = EmbeddedMetricsStore(tmp, retention_ms=10**15)
        pending = []
        for b in batches:  # at most 8 batches in flight (the write queue is bounded)
            pending.append(store.append("bench", b))
            if len(pending) >= 8:
                pending.pop(0).result()
        for f in pending:
            f.result()
        store.close()
        db = tmp / "metrics.duckdb"
        size = db.stat().st_size
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute(
            f"SELECT series_id, n, codec, scale, data FROM {all_chunks(con)} ORDER BY series_id, min_ts"
        ).fetchnumpy()
        labels = con.execute("SELECT sum(strlen(labels)) + sum(strlen(metric)) FROM series").fetchall()[0][0]
        con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = rows["n"].astype(np.int64)
    total = int(n.sum())
    data = [bytes(b) for b in rows["data"]]
    print(
        f"{args.series} series x {args.scrapes} scrapes = {total:,} samples in {len(n):,} chunks; "
        f"metrics.duckdb after a clean close: {size:,} bytes = {size / total:.3f} B/sample "
        f"(chunk payload {sum(map(len, data)) / total:.3f}; series label text {labels / total:.3f} before "
        f"DuckDB's compression)"
    )
    sids = np.repeat(rows["series_id"], n).astype(np.uint32)
    ts, vals = codec.decode(n, rows["codec"], rows["scale"], data)
    lo = int(ts.max()) - 15 * 60 * 1000
    pick = [0, len(n) // 2, len(n) - 1]
    print(
        f"{'format':<22} {'B/sample':>9} {'encode ns/sample':>17} {'decode all ns/sample':>21} {'3 chunks cut us':>16}"
    )
    for name, pack in (("first format (zstd)", False), ("PACKED", True)):
        enc = codec.encode(sids, ts, vals, pack=pack)
        payload = sum(map(len, enc.data)) / total
        t_enc = _cpu_per_call(functools.partial(codec.encode, sids, ts, vals, pack=pack), 3)
        t_all = _cpu_per_call(
            functools.partial(codec.decode_range, enc.n, enc.codec, enc.scale, enc.data, *_ALL), 5
        )
        small = (enc.n[pick], enc.codec[pick], enc.scale[pick], [enc.data[i] for i in pick], lo, 2**62)
        t_small = _cpu_per_call(functools.partial(codec.decode_range, *small), 5_000)
        print(
            f"{name:<22} {payload:>9.3f} {t_enc / total * 1e9:>17.0f} {t_all / total * 1e9:>21.1f} "
            f"{t_small * 1e6:>16.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
