"""The head log (store/embedded/head_log.py): records round-trip bit for bit, replay applies later
records, deletions and the retention floor, a damaged record is skipped, a schema-4 ``samples`` table
is migrated into it, and a restart without a clean close rebuilds the head from it."""

from __future__ import annotations

import struct
from pathlib import Path

import duckdb
import numpy as np
import pytest

from clearsight.model.labels import make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import STALE_NAN, SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore, head_log
from clearsight.store.embedded.head_log import HeadLog

T0 = 1_700_000_000_000


def _bits(a: np.ndarray) -> list[int]:
    return np.asarray(a, dtype=np.float64).view(np.int64).tolist()


def test_records_round_trip_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    sid = np.sort(rng.choice(2**32 - 1, 500, replace=False)).astype(np.uint32)
    ts = rng.integers(-(2**62), 2**62, 500).astype(np.int64)  # any order within a series' run
    vals = rng.standard_normal(500)
    vals[:3] = [STALE_NAN, float("nan"), -0.0]
    rec = head_log.decode(head_log.encode_rows(sid, ts, vals))
    assert rec.kind == head_log.ROWS
    assert rec.sid.tolist() == sid.tolist() and rec.ts.tolist() == ts.tolist()
    assert _bits(rec.vals) == _bits(vals)  # NaN payloads (stale markers) kept
    ids = np.array([1, 5, 2**32 - 1], dtype=np.uint32)
    d = head_log.decode(head_log.encode_delete(ids))
    assert d.kind == head_log.DELETE and d.sid.tolist() == ids.tolist()


def test_a_scrape_like_record_takes_a_few_bytes_per_row() -> None:
    """One sample per series at one timestamp (a remote-write request): ~3 bytes per row for
    counters, at most 8 for random floats (a samples row took ~24 bytes of DuckDB's memory)."""
    rng = np.random.default_rng(1)
    sid = np.arange(1, 2001, dtype=np.uint32)
    ts = np.full(2000, T0, dtype=np.int64)
    counters = np.cumsum(rng.integers(0, 1000, 2000)).astype(np.float64)
    assert len(head_log.encode_rows(sid, ts, counters)) <= 4 * 2000
    assert len(head_log.encode_rows(sid, ts, rng.random(2000) * 100)) <= 8.5 * 2000


def test_damaged_records_do_not_decode() -> None:
    data = bytearray(head_log.encode_rows(np.arange(100, dtype=np.uint32), np.full(100, T0), np.ones(100)))
    with pytest.raises(head_log.HeadLogError):
        head_log.decode(bytes(data[:-5]))
    with pytest.raises(head_log.HeadLogError):
        head_log.decode(struct.pack("<BBII", 9, 1, 1, 20) + bytes(data[10:]))
    with pytest.raises(head_log.HeadLogError):
        head_log.decode(bytes(data[:6]))


def test_replay_applies_later_records_deletions_and_the_floor() -> None:
    con = duckdb.connect()
    con.execute(head_log.DDL)
    log = HeadLog()
    u = np.uint32
    log.append(con, np.array([1, 1, 2], u), np.array([10, 20, 10]), np.array([1.0, 2.0, 3.0]))
    log.append(con, np.array([1, 3], u), np.array([20, 30]), np.array([9.0, 4.0]))  # (1, 20) replaced
    log.delete(con, np.array([2], u), 0, 15)  # (2, 10) deleted
    log.append(con, np.array([2], u), np.array([10]), np.array([5.0]))  # written again after the delete
    log.append(con, np.array([4], u), np.array([1]), np.array([6.0]))  # below the floor
    con.execute("INSERT INTO head_log VALUES (99, 1, 0, 100, 'garbage'::BLOB)")
    sid, ts, vals, damaged, top = head_log.replay(con, 5)
    assert list(zip(sid.tolist(), ts.tolist(), vals.tolist(), strict=True)) == [
        (1, 10, 1.0), (1, 20, 9.0), (2, 10, 5.0), (3, 30, 4.0)]
    assert damaged == 1 and top == 99
    log.drop_before(con, 5)  # retention: the record wholly below the cutoff goes
    assert con.execute("SELECT count(*) FROM head_log WHERE max_ts < 5").fetchall() == [(0,)]
    log.replay(con, 5)
    log.append(con, np.array([5], u), np.array([50]), np.array([7.0]))
    assert con.execute("SELECT max(seq) FROM head_log").fetchall() == [(100,)]  # after the last one read


def _batch(series: int, t: int, value: float) -> SampleBatch:
    items = [(make_labels({"__name__": "m", "s": str(i)}), [(t, value + i)]) for i in range(series)]
    return SampleBatch.from_series(items)


def _all(store: EmbeddedMetricsStore) -> list[tuple[str, int, int]]:
    data = store.select("t", [Matcher.of("=", "__name__", "m")], 0, 2**62)
    out = []
    for i in range(len(data)):
        labels, ts, vals = data.series(i)
        out += [(dict(labels)["s"], t, b) for t, b in zip(ts.tolist(), _bits(vals), strict=True)]
    return out


def test_a_restart_without_close_rebuilds_the_head_from_the_log(tmp_path: Path) -> None:
    """Appends, an overwrite of a head sample and a deletion, then a store opened on a copy of
    the files as they are (no close: no compaction, no checkpoint) reads the same samples."""
    import shutil

    store = EmbeddedMetricsStore(tmp_path / "a", retention_ms=10**13, out_of_order_window_ms=10**9,
                                 compact_min_rows=10**9, duckdb_threads=1)
    try:
        for k in range(5):
            store.append("t", _batch(20, T0 + k * 1000, float(k))).result()
        store.append("t", _batch(3, T0 + 2000, 100.0)).result()  # overwrites head samples
        deleted = store.delete_series("t", [[Matcher.of("=", "s", "7")]], T0 + 1000, T0 + 3000)
        assert deleted == 3
        want = _all(store)
        assert len(want) == 20 * 5 - 3
        br = store.storage_breakdown()
        assert br["head_rows"] == 97 and br["head_log_records"] == 7
        shutil.copytree(tmp_path / "a", tmp_path / "b")  # the WAL as a kill -9 would leave it
    finally:
        store.close()
    again = EmbeddedMetricsStore(tmp_path / "b", retention_ms=10**13, out_of_order_window_ms=10**9,
                                 compact_min_rows=10**9, duckdb_threads=1)
    try:
        assert _all(again) == want
        assert again._head.rows == 97
    finally:
        again.close()


def test_a_schema_4_samples_table_moves_into_the_log(tmp_path: Path) -> None:
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1)
    store.append("t", _batch(4, T0, 1.0)).result()
    store.close()  # compacted into chunks
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"))
    con.execute("CREATE TABLE samples (series_id UINTEGER NOT NULL, ts BIGINT NOT NULL, bits BIGINT NOT NULL)")
    rows = [(s, T0 + 1000 * k, int(np.float64(10.0 * s + k).view(np.int64))) for s in (1, 2, 3, 4) for k in (1, 2)]
    rows.append((1, T0 + 5000, int(np.float64(STALE_NAN).view(np.int64))))
    con.executemany("INSERT INTO samples VALUES (?, ?, ?)", rows)
    con.execute("UPDATE clearsight_meta SET value = '4' WHERE key = 'schema_version'")
    con.close()
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1, compact_min_rows=10**9)
    try:
        got = _all(store)
        assert len(got) == 4 + 9 and store._head.rows == 9
        assert ("0", T0 + 5000, int(np.float64(STALE_NAN).view(np.int64))) in got
    finally:
        store.close()
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    try:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "samples" not in tables
        assert con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall() == [("5",)]
    finally:
        con.close()
