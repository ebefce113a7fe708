"""The chunk codec alone, and the metrics file it leaves, on the remote-write workload.

Stores ``bench/workload.py``'s requests (decoded in process, no HTTP) in an embedded metrics store,
closes it (a clean close compacts the head), and prints the file's bytes per sample and its parts;
then re-encodes the same samples in the first chunk format (zstd), in PACKED (the bit-packed layout
before ANCHORED) and in ANCHORED (written now) and prints, for each, the payload per sample and the
CPU time to encode them, to decode every chunk, and to decode 3 chunks cut to the last 15 minutes
(a small dashboard query's read).

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


def _encode_packed(sids: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> codec.Encoded:
    """``codec.encode`` in the PACKED layouts (codecs 2 and 3, the native encoders before ANCHORED)."""
    enc = codec.encode(sids, ts, vals)
    native = codec._chunkdec
    assert native is not None, "the native chunk codec is not built"
    starts = np.concatenate(([0], np.cumsum(enc.n.astype(np.int64))[:-1])).astype(np.int64)
    lengths = enc.n.astype(np.int64)
    xor = enc.codec == codec.ANCHORED_XOR
    data = list(enc.data)
    k = np.rint(vals * 10.0 ** np.repeat(enc.scale, enc.n)).astype(np.int64)
    for which, encode, col in ((~xor, native.encode_packed, k), (xor, native.encode_packed_xor, vals.view(np.int64))):
        idx = np.flatnonzero(which)
        if idx.size:
            for i, b in zip(idx.tolist(), encode(ts, col, starts[idx], lengths[idx]), strict=True):
                data[i] = b
    return codec.Encoded(
        enc.series_id, enc.min_ts, enc.max_ts, enc.n,
        np.where(xor, codec.PACKED_XOR, codec.PACKED).astype(np.uint8), enc.scale, data,
    )


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
            f"SELECT series_id, min_ts, max_ts, n, codec, scale, data FROM {all_chunks(con)} ORDER BY series_id, min_ts"
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
    ts, vals = codec.decode(n, rows["codec"], rows["scale"], data, min_ts=rows["min_ts"], max_ts=rows["max_ts"])
    lo = int(ts.max()) - 15 * 60 * 1000
    print(
        f"{'format':<22} {'B/sample':>9} {'encode ns/sample':>17} {'decode all ns/sample':>21} {'3 chunks cut us':>16}"
    )
    for name, fn in (
        ("first format (zstd)", functools.partial(codec.encode, pack=False)),
        ("PACKED", _encode_packed),
        ("ANCHORED (now)", codec.encode),
    ):
        enc = fn(sids, ts, vals)
        payload = sum(map(len, enc.data)) / total
        t_enc = _cpu_per_call(functools.partial(fn, sids, ts, vals), 3)
        bounds = {"min_ts": enc.min_ts, "max_ts": enc.max_ts}
        t_all = _cpu_per_call(
            functools.partial(codec.decode_range, enc.n, enc.codec, enc.scale, enc.data, *_ALL, **bounds), 5
        )
        pick = [0, len(enc.n) // 2, len(enc.n) - 1]  # re-encoded: one chunk per series
        small = (enc.n[pick], enc.codec[pick], enc.scale[pick], [enc.data[i] for i in pick], lo, 2**62)
        cut = {"min_ts": enc.min_ts[pick], "max_ts": enc.max_ts[pick]}
        t_small = _cpu_per_call(functools.partial(codec.decode_range, *small, **cut), 5_000)
        print(
            f"{name:<22} {payload:>9.3f} {t_enc / total * 1e9:>17.0f} {t_all / total * 1e9:>21.1f} "
            f"{t_small * 1e6:>16.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
