"""The metrics store's chunks in time partitions (chunk_parts.py, kernel retention): a schema-3 data
dir is migrated at open and reads exactly; retention drops whole partitions (a chunk crossing a
boundary is kept, once); the size bound drops the oldest; series left with nothing are forgotten."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import duckdb
import numpy as np

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.chunk_parts import all_chunks

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_schema3_fixture as fx3

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "metrics-schema3.duckdb.gz"
HOUR = 3600_000
DAY = 24 * HOUR
T0 = fx3.T0  # a UTC midnight


def _open(d: Path, **kw: int) -> EmbeddedMetricsStore:
    args: dict[str, int] = {"retention_ms": 10**15, "out_of_order_window_ms": 10**12, "duckdb_threads": 1}
    args.update(kw)
    return EmbeddedMetricsStore(d, **args)  # type: ignore[arg-type]


def _everything(store: EmbeddedMetricsStore, tenant: str = "t") -> dict[Labels, list[tuple[int, float]]]:
    data = store.select(tenant, [Matcher.of("=~", "__name__", ".+")], -(2**62), 2**62)
    out = {}
    for i in range(len(data)):
        labels, ts, vals = data.series(i)
        out[labels] = list(zip(ts.tolist(), vals.tolist(), strict=True))
    return out


def _tables(d: Path) -> list[str]:
    con = duckdb.connect(str(d / "metrics.duckdb"), read_only=True)
    try:
        return sorted(n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall())
    finally:
        con.close()


def test_a_schema3_dir_is_migrated_into_partitions_and_reads_exactly(tmp_path: Path) -> None:
    with gzip.open(FIXTURE, "rb") as src, open(tmp_path / "metrics.duckdb", "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert "chunks" in _tables(tmp_path)
    want = {labels: list(zip(ts.tolist(), vals.tolist(), strict=True))
            for labels, (ts, vals) in zip(fx3.series(), fx3.samples(), strict=True)}
    store = _open(tmp_path)
    try:
        assert _everything(store) == want
        assert store.stats().partitions == 3  # chunks end on Dec 6, 7 and 8 (the head holds Dec 9)
    finally:
        store.close()
    tables = _tables(tmp_path)
    assert "chunks" not in tables and "samples" not in tables  # the schema-3 head went into the head log
    assert [t for t in tables if t.startswith("chunks_")] == [
        "chunks_20251206", "chunks_20251207", "chunks_20251208", "chunks_20251209"]
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall() == [("6",)]
        # every chunk sits in the partition of its max_ts, once
        for name in [t for t in tables if t.startswith("chunks_")]:
            lo, hi = con.execute(f"SELECT min(max_ts), max(max_ts) FROM {name}").fetchall()[0]
            assert (lo - T0) // DAY == (hi - T0) // DAY
        n = con.execute(f"SELECT count(*), sum(n) FROM {all_chunks(con)}").fetchall()
        assert n == [(20, 4 * (fx3.N + fx3.IN_HEAD))]  # the clean close compacted the head into Dec 9
    finally:
        con.close()
    store = _open(tmp_path)
    try:
        assert _everything(store) == want
    finally:
        store.close()


def _write_days(store: EmbeddedMetricsStore, labels: list[Labels], start: int, end: int, step: int) -> None:
    ts = np.arange(start, end, step, dtype=np.int64)
    items = [(lb, [(int(t), float(t // step + i)) for t in ts]) for i, lb in enumerate(labels)]
    store.append("t", SampleBatch.from_series(items)).result()


def test_retention_drops_whole_partitions_and_keeps_a_chunk_crossing_the_cutoff(tmp_path: Path) -> None:
    a, b = make_labels({"__name__": "a"}), make_labels({"__name__": "b"})
    store = _open(tmp_path, retention_ms=2 * DAY, chunk_target_samples=10**6)
    try:
        # a: one chunk per 12 h from day 0 06:00 to day 4 06:00, each ending at 05:50 or 17:50
        # (the chunk of day 1 18:00 - day 2 05:50 crosses midnight); b: two chunks on day 0.
        for k in range(8):
            _write_days(store, [a], T0 + k * 12 * HOUR + 6 * HOUR, T0 + (k + 1) * 12 * HOUR + 6 * HOUR, 10 * 60_000)
            if k < 2:
                _write_days(store, [b], T0 + k * 12 * HOUR, T0 + (k + 1) * 12 * HOUR, 10 * 60_000)
            store.compact()
        before = store.stats()
        assert before.partitions == 5  # chunks end on days 0..4
        now = T0 + 4 * DAY + 3 * HOUR
        cutoff = now - 2 * DAY  # day 2, 03:00
        removed = store.apply_retention(now)
        after = store.stats()
        # Days 0 and 1 end before the cutoff: dropped, with 3 chunks of a and both of b (72 samples
        # each). The chunk crossing into day 2 stays, its expired samples hidden by the floor.
        assert removed == 5 * 72
        assert after.partitions == 3 and after.partitions_dropped_total == 2
        assert after.partition_bytes_dropped_total == before.partition_bytes - after.partition_bytes > 0
        got = _everything(store)
        assert list(got) == [a]  # b was forgotten
        kept_ts = [t for t, _ in got[a]]
        assert kept_ts == list(range(cutoff, T0 + 4 * DAY + 6 * HOUR, 10 * 60_000))
        assert store.series("t", [], -(2**62), 2**62) == [a]
        # A partition expired later goes at the next pass; nothing is dropped twice.
        assert store.apply_retention(now) == 0
    finally:
        store.close()
    store = _open(tmp_path, retention_ms=2 * DAY)
    try:
        assert list(_everything(store)) == [a] and [t for t, _ in _everything(store)[a]] == kept_ts
        assert store.stats().partitions == 3
    finally:
        store.close()


def test_size_bound_drops_the_oldest_partitions_and_raises_the_floor(tmp_path: Path) -> None:
    a = make_labels({"__name__": "a"})
    store = _open(tmp_path, chunk_target_samples=10**6)
    try:
        for k in range(4):
            _write_days(store, [a], T0 + k * DAY, T0 + (k + 1) * DAY, 60_000)
            store.compact()
        st = store.stats()
        assert st.partitions == 4
        per_day = st.partition_bytes // 4
        store.retention_size_bytes = st.partition_bytes - per_day  # one day too many
        assert store.apply_retention(T0 + 4 * DAY) == 1440
        st2 = store.stats()
        assert st2.partitions == 3 and st2.partitions_dropped_total == 1
        assert st2.partition_bytes + st2.partition_bytes_dropped_total == st.partition_bytes
        assert _everything(store)[a][0][0] == T0 + DAY
        # Samples below the raised floor are refused like expired ones.
        res = store.append("t", SampleBatch.from_series([(a, [(T0 + 5, 1.0)])])).result()
        assert res.out_of_bounds == 1
        store.retention_size_bytes = 1  # never the newest partition
        store.apply_retention(T0 + 4 * DAY)
        assert store.stats().partitions == 1
        assert _everything(store)[a][0][0] == T0 + 3 * DAY
    finally:
        store.close()
