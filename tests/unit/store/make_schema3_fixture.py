"""Writes ``fixtures/metrics-schema3.duckdb.gz``: a data dir of schema 3 (one ``chunks`` table, before
time partitions), made by the store of commit 1ef3fbe (run once, by the build whose format it keeps):
``PYTHONPATH=<that build's src> python tests/unit/store/make_schema3_fixture.py``.

``samples()``: 4 series, one sample every 10 minutes for 3 days from ``T0`` (a UTC midnight),
compacted at each noon (so chunks cross midnight) and at the end, then ``IN_HEAD`` more samples
left in the head. ``test_partitions_migration.py`` opens it with this build and compares.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np

from clearsight.model.labels import Labels, make_labels

T0 = 1_764_979_200_000  # 2025-12-06 00:00 UTC
STEP = 600_000
N = 3 * 144  # three days
IN_HEAD = 5
CUTS = [72, 72 + 144, 72 + 288, N]  # compactions after these many samples (noon, noon, noon, end)


def series() -> list[Labels]:
    return [make_labels({"__name__": "m", "i": str(i)}) for i in range(4)]


def samples() -> list[tuple[np.ndarray, np.ndarray]]:
    """(timestamps, values) per series, ``N + IN_HEAD`` samples each."""
    ts = T0 + STEP * np.arange(N + IN_HEAD, dtype=np.int64)
    return [(ts, np.cumsum(np.full(N + IN_HEAD, float(i + 1)))) for i in range(4)]


def main() -> None:
    from clearsight.model.samples import SampleBatch
    from clearsight.store.embedded import EmbeddedMetricsStore

    data = samples()
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedMetricsStore(Path(tmp), retention_ms=10**15, duckdb_threads=1)
        lo = 0
        for hi in [*CUTS, N + IN_HEAD]:
            items = [(labels, list(zip(ts[lo:hi].tolist(), vals[lo:hi].tolist(), strict=True)))
                     for labels, (ts, vals) in zip(series(), data, strict=True)]
            store.append("t", SampleBatch.from_series(items)).result()
            if hi <= N:
                store.compact()
            lo = hi
        store._safe_compact = lambda: None  # type: ignore[method-assign]  # the last rows stay in the head
        store.close()
        out = Path(__file__).resolve().parent / "fixtures" / "metrics-schema3.duckdb.gz"
        with open(Path(tmp) / "metrics.duckdb", "rb") as src, gzip.open(out, "wb", 9) as dst:
            shutil.copyfileobj(src, dst)
        wal = Path(tmp) / "metrics.duckdb.wal"
        print(out, out.stat().st_size, "wal left:", wal.exists())


if __name__ == "__main__":
    main()
