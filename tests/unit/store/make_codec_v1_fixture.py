"""Writes ``fixtures/metrics-codec-v1.duckdb.gz`` (run once, by the build whose format it keeps), or
the file named by the first argument (``metrics-codec-v2.duckdb.gz``: PACKED and PACKED_XOR chunks,
written by commit 8aaa6fc).

``PYTHONPATH=<that build's src> python tests/unit/store/make_codec_v1_fixture.py [name]``: stores
``chunk_fixture_data.samples`` (COMPACTED samples per series compacted into chunks, then IN_HEAD more
left in the head), closes the store and gzips its DuckDB file.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chunk_fixture_data as fx

from clearsight.model.samples import SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore


def main() -> None:
    data = fx.samples(fx.COMPACTED + fx.IN_HEAD)
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedMetricsStore(Path(tmp), retention_ms=10**15, duckdb_threads=1)
        for lo, hi in ((0, fx.COMPACTED), (fx.COMPACTED, fx.COMPACTED + fx.IN_HEAD)):
            items = [
                (labels, list(zip(ts[lo:hi].tolist(), vals[lo:hi].tolist(), strict=True)))
                for labels, (ts, vals) in zip(fx.series(), data, strict=True)
            ]
            store.append("t", SampleBatch.from_series(items)).result()
            if lo == 0:
                store.compact()
        store.close()
        name = sys.argv[1] if len(sys.argv) > 1 else "metrics-codec-v1.duckdb.gz"
        out = Path(__file__).resolve().parent / "fixtures" / name
        with open(Path(tmp) / "metrics.duckdb", "rb") as src, gzip.open(out, "wb", 9) as dst:
            shutil.copyfileobj(src, dst)
        print(out, out.stat().st_size)


if __name__ == "__main__":
    main()
