"""The head log (store/embedded/head_log.py): records round-trip bit for bit, replay applies later
records, deletions and the retention floor, a damaged record is skipped, a withdrawn record is not
replayed, a schema-4 ``samples`` table and a schema-5 ``head_log`` table are migrated into it, and a
restart without a clean close rebuilds the head from it."""

from __future__ import annotations

import shutil
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


def test_replay_applies_later_records_deletions_and_the_floor(tmp_path: Path) -> None:
    log = HeadLog(tmp_path / "log")
    u = np.uint32
    log.append(np.array([1, 1, 2], u), np.array([10, 20, 10]), np.array([1.0, 2.0, 3.0]))
    log.append(np.array([1, 3], u), np.array([20, 30]), np.array([9.0, 4.0]))  # (1, 20) replaced
    log.delete(np.array([2], u), 0, 15)  # (2, 10) deleted
    log.append(np.array([2], u), np.array([10]), np.array([5.0]))  # written again after the delete
    log.append(np.array([4], u), np.array([1]), np.array([6.0]))  # below the floor
    log.log.append(b"garbage of a damaged record, intact frame")
    log.append(np.array([99], u), np.array([1]), np.array([6.0]))  # below the floor, names id 99
    sid, ts, vals, damaged, top = log.replay(5, 0)
    assert list(zip(sid.tolist(), ts.tolist(), vals.tolist(), strict=True)) == [
        (1, 10, 1.0), (1, 20, 9.0), (2, 10, 5.0), (3, 30, 4.0)]
    assert damaged == 1 and top == 99
    # records at or below the compacted seq are skipped; their segments go with truncate
    sid, _, _, _, _ = log.replay(5, 2)
    assert sid.tolist() == [2]
    log.close()
    again = HeadLog(tmp_path / "log")  # reopened: the same records, the next seq after them
    assert again.replay(5, 0)[:2][0].tolist() == [1, 1, 2, 3]
    assert again.last_seq == 7
    again.truncate(7)
    assert again.log.segments == 0 and list((tmp_path / "log").iterdir()) == []
    again.append(np.array([5], u), np.array([50]), np.array([7.0]))
    assert again.last_seq == 8  # sequence numbers never go back
    again.close()
    third = HeadLog(tmp_path / "log")
    assert third.replay(5, 7)[0].tolist() == [5]


def test_a_withdrawn_record_is_not_replayed(tmp_path: Path) -> None:
    log = HeadLog(tmp_path / "log")
    u = np.uint32
    log.append(np.array([1], u), np.array([10]), np.array([1.0]))
    log.settle()
    log.append(np.array([2], u), np.array([10]), np.array([2.0]))
    log.withdraw()  # its transaction failed
    log.append(np.array([3], u), np.array([10]), np.array([3.0]))
    log.settle()
    log.close()
    again = HeadLog(tmp_path / "log")
    assert again.replay(0, 0)[0].tolist() == [1, 3]
    assert again.last_seq == 2
    again.close()


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
        assert con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall() == [("6",)]
    finally:
        con.close()


def test_a_schema_5_head_log_table_moves_into_the_log_files(tmp_path: Path) -> None:
    """A directory of schema 5 (the head log as a DuckDB table): its records, deletions included,
    are moved into the log's files at open and the table dropped; the head is the same."""
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1)
    store.append("t", _batch(4, T0, 1.0)).result()
    store.close()  # compacted into chunks: the 4 series exist
    u = np.uint32
    recs = [
        (1, T0 + 1000, T0 + 1000, head_log.encode_rows(np.array([1, 2], u), np.full(2, T0 + 1000), np.array([5.0, 6.0]))),
        (2, T0 + 2000, T0 + 2000, head_log.encode_rows(np.array([1, 3], u), np.full(2, T0 + 2000), np.array([7.0, 8.0]))),
        (3, T0 + 1000, T0 + 1000, head_log.encode_delete(np.array([2], u))),  # (2, T0+1000) deleted
    ]
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"))
    con.execute("CREATE TABLE head_log (seq BIGINT NOT NULL, n UINTEGER NOT NULL, min_ts BIGINT NOT NULL, "
                "max_ts BIGINT NOT NULL, data BLOB NOT NULL)")
    con.executemany("INSERT INTO head_log VALUES (?, 0, ?, ?, ?)", [list(r) for r in recs])
    con.execute("UPDATE clearsight_meta SET value = '5' WHERE key = 'schema_version'")
    con.execute("DELETE FROM clearsight_meta WHERE key = 'head_log_compacted'")
    con.close()
    shutil.rmtree(tmp_path / "metrics.headlog")
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1, compact_min_rows=10**9)
    try:
        got = _all(store)
        assert store._head.rows == 3
        assert ("0", T0 + 1000, _bits(np.array([5.0]))[0]) in got
        assert ("0", T0 + 2000, _bits(np.array([7.0]))[0]) in got
        assert ("2", T0 + 2000, _bits(np.array([8.0]))[0]) in got
        assert not [g for g in got if g[0] == "1" and g[1] == T0 + 1000]
        assert store.storage_breakdown()["head_log_records"] == 3
    finally:
        store.close()
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    try:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "head_log" not in tables
        assert con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall() == [("6",)]
    finally:
        con.close()
    assert [p.name for p in (tmp_path / "metrics.headlog").iterdir()] == []  # the close compacted


def test_an_older_build_refuses_the_directory_and_leaves_the_log_alone(tmp_path: Path) -> None:
    """A build reading schema 5 refuses a schema-6 file (its version check); the empty head_log
    table it may create before refusing is dropped by this build without touching the log."""
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1, compact_min_rows=10**9)
    store.append("t", _batch(4, T0, 1.0)).result()
    shutil.copytree(tmp_path, tmp_path.parent / "copy")  # as a kill -9 leaves it: the head in the log
    store.close()
    d = tmp_path.parent / "copy"
    con = duckdb.connect(str(d / "metrics.duckdb"))
    con.execute("CREATE TABLE head_log (seq BIGINT NOT NULL, n UINTEGER NOT NULL, min_ts BIGINT NOT NULL, "
                "max_ts BIGINT NOT NULL, data BLOB NOT NULL)")  # what a schema-5 build's DDL does
    con.close()
    store = EmbeddedMetricsStore(d, retention_ms=10**13, duckdb_threads=1, compact_min_rows=10**9)
    try:
        assert len(_all(store)) == 4 and store._head.rows == 4
    finally:
        store.close()


def test_compaction_skips_its_records_at_replay_even_when_their_segments_stay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compaction records the last record it moved (clearsight_meta) in the chunks' transaction;
    a crash before the segments are deleted replays none of them (no sample twice), and the
    next open deletes them. A compaction leaves the next segment made (a spare); a clean close none."""
    store = EmbeddedMetricsStore(tmp_path / "a", retention_ms=10**13, compact_min_rows=10**9, duckdb_threads=1)
    try:
        for k in range(3):
            store.append("t", _batch(5, T0 + k * 1000, float(k))).result()
        store.compact()
        store._head_log.log._settle_spare()
        assert store._head_log.log.segments == 0 and store._head_log.log.records == 0
        assert store._head_log.log.file_bytes == store._head_log.log.segment_bytes  # the spare, made
        monkeypatch.setattr(HeadLog, "truncate", lambda self, seq, ready=False: None)  # "crash" before it
        store.append("t", _batch(5, T0 + 3000, 3.0)).result()
        store.compact()
        assert store._head_log.log.records == 1  # left behind
        want = _all(store)
        shutil.copytree(tmp_path / "a", tmp_path / "b")  # as kill -9 leaves it
        monkeypatch.undo()
    finally:
        store.close()
    assert list((tmp_path / "a" / "metrics.headlog").iterdir()) == []  # a clean close: compacted, no segment
    again = EmbeddedMetricsStore(tmp_path / "b", retention_ms=10**13, compact_min_rows=10**9, duckdb_threads=1)
    try:
        assert _all(again) == want and len(want) == 20
        assert again._head.rows == 0  # the record left behind was compacted already
        assert again._head_log.log.segments == 0  # and deleted at open
        again.append("t", _batch(5, T0 + 4000, 4.0)).result()
        assert again._head_log.last_seq == 5  # sequence numbers continue after the compacted ones
    finally:
        again.close()


@pytest.mark.parametrize("new_series", [False, True])
def test_a_refused_append_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_series: bool) -> None:
    """The head log's disk is full: the group fails with LogFull (a 503 for the HTTP layer),
    nothing of it is in memory or on disk, a later write inside the out-of-order window of what was
    stored (not of what was refused) is accepted, and the store recovers by itself."""
    import errno
    import os

    from clearsight.store.kernel import record_log

    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, out_of_order_window_ms=10_000,
                                 compact_min_rows=10**9, duckdb_threads=1)
    try:
        store.append("t", _batch(3, T0, 1.0)).result()
        real = os.pwrite

        def full(fd: int, data: object, at: int) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(record_log.os, "pwrite", full)
        refused = _batch(5 if new_series else 3, T0 + 3_600_000, 2.0)  # an hour later
        with pytest.raises(record_log.LogFull, match="No space left on device"):
            store.append("t", refused).result()
        assert _all(store) == [(str(i), T0, _bits(np.array([1.0 + i]))[0]) for i in range(3)]
        assert len(store.series("t", [[Matcher.of("=", "__name__", "m")]], 0, 2**62)) == 3  # no new series
        monkeypatch.setattr(record_log.os, "pwrite", real)
        r = store.append("t", _batch(3, T0 + 1000, 3.0)).result()  # inside the window of T0, not of the refused
        assert r.out_of_bounds == 0 and r.samples_written == 3
        assert len(_all(store)) == 6
    finally:
        store.close()
    again = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1)
    try:
        assert len(_all(again)) == 6 and not [x for x in _all(again) if x[1] == T0 + 3_600_000]
    finally:
        again.close()


def test_a_second_process_on_the_directory_leaves_the_log_alone(tmp_path: Path) -> None:
    """The log is scanned (and repaired) only once DuckDB holds the directory's lock: a second
    process fails on the lock before it could take a record being written for a torn tail."""
    import subprocess
    import sys

    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, compact_min_rows=10**9, duckdb_threads=1)
    try:
        store.append("t", _batch(3, T0, 1.0)).result()
        seg = next((tmp_path / "metrics.headlog").glob("*.seg"))
        used = store._head_log.log._segments[-1].used
        with open(seg, "r+b") as f:  # what a record half way through its pwrite looks like
            f.seek(used)
            f.write(b"\x43\x4c\x52\x4c" + b"\x07" * 30)
        before = seg.read_bytes()
        r = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from clearsight.store.embedded import EmbeddedMetricsStore; "
                            "EmbeddedMetricsStore(Path(sys.argv[1]))", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode != 0 and "lock" in r.stderr
        assert seg.read_bytes() == before
        assert not list((tmp_path / "metrics.headlog").glob("*.damaged-*"))
        store.append("t", _batch(3, T0 + 1000, 2.0)).result()  # overwrites the half-written bytes
    finally:
        store.close()
    again = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, duckdb_threads=1)
    try:
        assert len(_all(again)) == 6
    finally:
        again.close()
