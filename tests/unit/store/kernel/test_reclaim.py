"""A closed database file is rewritten without its free blocks (``kernel/reclaim.py``): the rows
stay, the file shrinks, and the copy of an interrupted rewrite is removed at the next open."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.model.matchers import Matcher
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from clearsight.store.kernel import reclaim
from clearsight.store.kernel.database import Database
from clearsight.store.storetest import workload


def _open(path: Path) -> Database:
    return Database(path, checkpoint_threshold="16MB", threads=1, memory_limit="64MB", what="x store")


def _blocks(path: Path) -> tuple[int, int]:
    """(total, free) blocks of a closed file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        total, free = con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchall()[0]
    finally:
        con.close()
    return int(total), int(free)


def _rows(db: Database) -> list[tuple[object, ...]]:
    return db.writer.execute("SELECT id, md5(data) FROM t ORDER BY id").fetchall()


def _file_with_free_blocks(path: Path) -> list[tuple[object, ...]]:
    """A file whose table was written, checkpointed and then rewritten: the first version's blocks
    are free. Returns its rows."""
    rng = np.random.default_rng(7)
    db = _open(path)
    db.writer.execute("CREATE TABLE t (id INTEGER NOT NULL, data BLOB NOT NULL)")
    for version in range(2):
        db.writer.execute("DELETE FROM t")
        for i in range(300):  # ~3 MB of incompressible bytes
            db.writer.execute("INSERT INTO t VALUES (?, ?)", [i, rng.bytes(10_000) + bytes([version])])
        db.writer.execute("CHECKPOINT")
    rows = _rows(db)
    db.close()
    return rows


def test_close_rewrites_a_file_without_its_free_blocks(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    rows = _file_with_free_blocks(path)
    total, free = _blocks(path)
    assert free >= total // 4 and free * 65536 >= reclaim.MIN_FREE_BYTES
    before = path.stat().st_size
    db = _open(path)
    db.close(reclaim_free_blocks=True)
    assert _blocks(path) == (total - free, 0)
    assert path.stat().st_size == before - free * 65536
    assert not reclaim.leftover(path).exists()
    db = _open(path)
    try:
        assert _rows(db) == rows
        assert db.writer.execute("SELECT sql FROM duckdb_tables()").fetchall() == [
            ("CREATE TABLE t(id INTEGER NOT NULL, \"data\" BLOB NOT NULL);",)
        ]
    finally:
        db.close()


def test_a_file_with_little_free_space_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    db = _open(path)
    db.writer.execute("CREATE TABLE t (id INTEGER NOT NULL, data BLOB NOT NULL)")
    db.writer.execute("INSERT INTO t SELECT range, 'x' FROM range(1000)")
    db.close(reclaim_free_blocks=True)
    stat = path.stat()
    assert reclaim.reclaim(path) == 0
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size


def test_without_the_flag_close_keeps_the_free_blocks(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    _file_with_free_blocks(path)
    total, free = _blocks(path)
    _open(path).close()
    assert _blocks(path) == (total, free) and free > 0


def test_the_copy_of_an_interrupted_rewrite_is_removed_at_open(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    rows = _file_with_free_blocks(path)
    tmp = reclaim.leftover(path)
    tmp.write_bytes(b"half a copy")  # a crash during the copy: the original is intact
    tmp.with_name(tmp.name + ".wal").write_bytes(b"")
    db = _open(path)
    try:
        assert not tmp.exists() and not tmp.with_name(tmp.name + ".wal").exists()
        assert _rows(db) == rows
    finally:
        db.close()


def test_a_failed_rewrite_keeps_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.duckdb"
    rows = _file_with_free_blocks(path)
    before = _blocks(path)

    def fail(*_: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(reclaim, "fsync_path", fail)
    db = _open(path)
    db.close(reclaim_free_blocks=True)  # logged, not raised
    assert _blocks(path) == before
    assert not reclaim.leftover(path).exists()
    db = _open(path)
    try:
        assert _rows(db) == rows
    finally:
        db.close()


def test_metrics_store_close_gives_back_the_blocks_its_merges_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reclaim, "MIN_FREE_BYTES", 0)  # this store is small: a few blocks
    labels = workload.series_labels(400)
    ts = workload.timestamps(120)
    vals = workload.values_matrix(400, 120)
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**12, compact_min_rows=10**9, chunk_target_samples=120,
                                 duckdb_threads=1)
    batches = workload.scrape_batches(labels, ts, vals, batch_series=400)
    for k in range(4):  # four compactions; the last merges every series' chunks into one
        for b in batches[k * 30 : (k + 1) * 30]:
            store.append("t", b).result()
        store.compact()
    path = tmp_path / "metrics.duckdb"
    with store._reader() as cur:
        total, free = cur.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchall()[0]
    assert free >= total // 4
    store.close()
    assert _blocks(path) == (total - free, 0)
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**12, duckdb_threads=1)
    try:
        data = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        assert len(data) == 400
        for i in range(len(data)):
            lbl, got_ts, got_v = data.series(i)
            assert got_ts.tolist() == ts.tolist()
            assert np.array_equal(got_v.view(np.uint64), vals[labels.index(lbl)].view(np.uint64))
    finally:
        store.close()


def test_log_store_close_gives_back_the_days_retention_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reclaim, "MIN_FREE_BYTES", 0)
    rng = np.random.default_rng(3)
    day = 86_400 * 10**9
    t0 = 20_000 * day
    store = EmbeddedLogStore(tmp_path, retention_ns=day)
    for d in range(4):  # four day partitions of ~1 MB of incompressible lines each
        entries = [LogEntry(stream=(("app", "a"),), timestamp=t0 + d * day + i, body=rng.bytes(4_000).hex())
                   for i in range(128)]
        store.append("t", LogBatch.from_entries(entries)).result()
    store.flush()
    assert store.apply_retention(t0 + 3 * day + 10) == 2 * 128  # days 0 and 1 go
    store.flush()
    kept = store.select("t", [], 0, 2**62, limit=1_000, direction="forward").entries()
    path = tmp_path / "logs.duckdb"
    with store._reader() as cur:
        total, free = cur.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchall()[0]
    assert free * 4 >= total and len(kept) == 2 * 128
    store.close()
    assert _blocks(path) == (total - free, 0)
    store = EmbeddedLogStore(tmp_path, retention_ns=day)
    try:
        assert store.select("t", [], 0, 2**62, limit=1_000, direction="forward").entries() == kept
    finally:
        store.close()
