"""Damaged files at start-up (storage kernel ``repair.py``): real WALs written by a process that was
killed before any checkpoint, then bytes overwritten or the file truncated.

Before: 8 bytes overwritten in the middle of ``metrics.duckdb.wal`` made start-up fail (DuckDB:
"Corrupt WAL file: entry at byte position N ..."); a broken frame near the start made DuckDB drop
every later commit silently. Now the WAL is cut after the last intact commit, the original kept as
``.damaged-<ts>``, the loss logged, and the store starts with every commit before the damage.

Since schema 6 the samples are in the head log's segment files (``metrics.headlog/``, kernel
``record_log.py``), not in DuckDB's WAL: the WAL tests write every batch under new series (``fresh``),
so that each batch is one DuckDB commit (its series rows) and a batch whose commit is lost loses its
samples too (records of unknown series are skipped at replay). The head log's own damage: a record
hit by overwritten bytes is the only one lost (the segment rewritten, the damaged file kept aside), a
segment cut short loses what lay past the cut, each logged as an error.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.model.matchers import Matcher
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.schema import HEAD_LOG_DIR as HEAD_LOG
from clearsight.store.kernel import record_log, repair
from clearsight.store.kernel.database import BLOCK_SIZE
from tests.support.peers import start_clearsight

SERIES = 50
BATCHES = 60
T0 = 1_700_000_000_000
WAL = "metrics.duckdb.wal"
DB = "metrics.duckdb"

_WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    from pathlib import Path
    from clearsight.model.samples import SampleBatch, canonical_key
    from clearsight.store.embedded import EmbeddedMetricsStore
    d, n, checkpoint, n_series = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    fresh = sys.argv[5] == "fresh"
    s = EmbeddedMetricsStore(d, retention_ms=10**12, out_of_order_window_ms=10**10, duckdb_threads=1,
                             compact_min_rows=10**9)
    keys = [canonical_key((("__name__", "dmg"), ("s", str(i)))) for i in range(n_series)]
    for b in range(n):
        if fresh:  # new series in every batch: one DuckDB commit (their rows) per batch
            keys = [canonical_key((("__name__", "dmg"), ("b", str(b)), ("s", str(i)))) for i in range(n_series)]
        batch = SampleBatch.from_series([])
        batch.keys = keys
        batch.series_idx = np.arange(n_series, dtype=np.int32)
        batch.timestamps = np.full(n_series, 1_700_000_000_000 + b * 1000, dtype=np.int64)
        batch.values = np.sin(b * 1000.0 + np.arange(n_series))  # incompressible, known per (batch, series)
        s.append("t", batch).result()  # one commit per batch, acknowledged
        if (checkpoint == "half" and b == n // 2) or (checkpoint == "end" and b == n - 1):
            s.flush()  # into the database file (the rest, if any, stays in the WAL)
    os._exit(0)  # like kill -9: no checkpoint at close
""")


def _write(d: Path, checkpoint: str = "no", batches: int = BATCHES, series: int = SERIES,
           fresh: bool = False) -> None:
    subprocess.run([sys.executable, "-c", _WRITER, str(d), str(batches), checkpoint, str(series),
                    "fresh" if fresh else "same"], check=True, timeout=300)


def _batches(d: Path) -> list[int]:
    """The batch numbers stored (each must be complete: all SERIES samples)."""
    s = EmbeddedMetricsStore(d, retention_ms=10**12, out_of_order_window_ms=10**10, duckdb_threads=1)
    try:
        data = s.select("t", [Matcher.of("=", "__name__", "dmg")], 0, 2**62)
        counts: dict[int, int] = {}
        for i in range(len(data)):
            _l, ts, _v = data.series(i)
            for t in ((ts - T0) // 1000).tolist():
                counts[t] = counts.get(t, 0) + 1
        partial = {b: c for b, c in counts.items() if c != SERIES}
        assert not partial, f"partially stored batches: {partial}"
        return sorted(counts)
    finally:
        s.close()


def _overwrite(p: Path, offset: int, data: bytes) -> None:
    with open(p, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _asides(d: Path) -> list[Path]:
    return sorted(d.glob("*.damaged-*"))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("written") / "data"
    _write(d, fresh=True)
    return d


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_undamaged_wal_replays_every_batch(written: Path, tmp_path: Path) -> None:
    assert _batches(_copy(written, tmp_path / "d")) == list(range(BATCHES))


@pytest.mark.parametrize("nbytes", [8, 4096])
def test_wal_overwritten_in_the_middle_keeps_every_commit_before(written: Path, tmp_path: Path, nbytes: int,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    d = _copy(written, tmp_path / "d")
    wal = d / WAL
    layout = repair.wal_layout(wal)
    offset = layout.size // 2
    before = sum(1 for c in layout.commit_ends if c <= offset)  # commits wholly before the damage
    _overwrite(wal, offset, bytes(range(256)) * (nbytes // 256) if nbytes >= 256 else b"\xa5" * nbytes)
    with caplog.at_level(logging.ERROR):
        kept = _batches(d)
    # commit 1 is the schema; batch b is commit b + 2 (the store's first commit creates the series)
    assert kept == list(range(len(kept)))
    assert before - 2 <= len(kept) <= before
    assert 0 < len(kept) < BATCHES
    asides = _asides(d)
    assert len(asides) == 1 and asides[0].stat().st_size == layout.size
    msg = " ".join(r.getMessage() for r in caplog.records)
    m = re.search(r"kept (\d+) commits .* dropped at least (\d+) commits", msg)
    assert m, msg
    commits = BATCHES + 1  # the schema's, then one per batch
    assert int(m.group(1)) == len(kept) + 1
    lost = int(m.group(2))
    assert 1 <= lost <= commits - int(m.group(1))
    if nbytes == 8:  # every commit marker after the damage is intact: the count is exact
        assert lost == commits - int(m.group(1))


def test_broken_frame_near_the_start_is_not_a_silent_loss(written: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    d = _copy(written, tmp_path / "d")
    layout = repair.wal_layout(d / WAL)
    third = layout.entry_starts[3]
    _overwrite(d / WAL, third, (2**40).to_bytes(8, "little"))  # an absurd entry size
    with caplog.at_level(logging.ERROR):
        kept = _batches(d)
    assert kept == list(range(len(kept))) and len(kept) < 2
    assert len(_asides(d)) == 1
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert re.search(r"dropped at least \d+ commits", msg)


def test_wal_cut_short_keeps_the_complete_commits(written: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    d = _copy(written, tmp_path / "d")
    layout = repair.wal_layout(d / WAL)
    cut = layout.commit_ends[30] + 10  # inside commit 31
    os.truncate(d / WAL, cut)
    with caplog.at_level(logging.WARNING):
        kept = _batches(d)
    assert kept == list(range(30))  # commits 0..30 = schema + series/batch 0 + batches 1..29
    assert not _asides(d)  # a torn tail is what a crash leaves: not damage
    assert "ends with an incomplete commit" in " ".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("where", ["header", "second_header", "data_block", "truncated"])
def test_damaged_database_file_is_moved_aside_and_the_store_starts(tmp_path: Path, where: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "d"
    _write(d, checkpoint="half")
    db = d / DB
    size = db.stat().st_size
    assert size > 3 * BLOCK_SIZE
    block1_tables: set[str] = set()
    if where == "header":
        _overwrite(db, 0, b"\x00" * 64)
    elif where == "second_header":
        _overwrite(db, 4096, b"\xff" * 64)
    elif where == "data_block":
        import duckdb

        con = duckdb.connect(str(db), read_only=True)
        block1_tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
                         if con.execute(f"SELECT count(*) FROM pragma_storage_info('{t}') WHERE block_id = 1"
                                        ).fetchall()[0][0]}
        con.close()
        _overwrite(db, 12288 + BLOCK_SIZE, b"\x5a" * 4096)
    else:
        os.truncate(db, 12288)
    with caplog.at_level(logging.ERROR):
        kept = _batches(d)  # (asserts that no batch is partially present)
    if where == "data_block":
        # block 1 holds the rows of the tables listed: the others are salvaged whole, the WAL's
        # commits (replayed from the file moved aside) included
        assert kept == ([] if {"series", "head_log"} & block1_tables else list(range(BATCHES)))
    else:  # nothing can be read from the file: the store starts empty
        assert kept == []
    asides = _asides(d)
    assert asides and all(p.name.startswith(DB + ".damaged-") for p in asides)
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "moved aside" in msg and "salvaged from" in msg
    s = EmbeddedMetricsStore(d, duckdb_threads=1)  # and it works: reopened without repairs
    assert not s._db.repairs
    s.close()


def test_damaged_block_of_a_large_table_loses_only_its_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A block of the second row group of ``series`` damaged: the first row group is salvaged, and
    the head samples of the series lost are dropped with them (the head log's records are salvaged
    whole; their samples of unknown series are skipped when the log is replayed)."""
    import duckdb

    d = tmp_path / "d"
    series, batches = 130_000, 2  # two row groups of DuckDB's 122,880
    _write(d, checkpoint="end", batches=batches, series=series)
    con = duckdb.connect(str(d / DB), read_only=True)
    blocks = con.execute("SELECT DISTINCT block_id FROM pragma_storage_info('series') WHERE row_group_id = 1 "
                         "AND column_name = 'labels' AND block_id >= 0").fetchall()
    shared = con.execute("SELECT DISTINCT block_id FROM pragma_storage_info('series') WHERE row_group_id = 0 "
                         "AND block_id >= 0").fetchall()
    con.close()
    target = sorted({b for (b,) in blocks} - {b for (b,) in shared})
    assert target, "no block of row group 1 alone"
    _overwrite(d / DB, 12288 + target[0] * BLOCK_SIZE + 64, b"\x5a" * 512)
    s = None
    with caplog.at_level(logging.ERROR):
        s = EmbeddedMetricsStore(d, retention_ms=10**12, out_of_order_window_ms=10**10, duckdb_threads=1)
    try:
        data = s.select("t", [Matcher.of("=", "__name__", "dmg")], 0, 2**62)
        n = int(data.timestamps.size)
        assert 122_880 * batches <= n < series * batches
        assert n == len(data) * batches  # a series kept has every sample
        for i in range(len(data)):  # every salvaged sample is the one written
            labels, ts, vals = data.series(i)
            k = int(dict(labels)["s"])
            assert np.array_equal(vals, np.sin(((ts - T0) // 1000) * 1000.0 + k))
    finally:
        s.close()
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert f"series: kept {len(data)} of {series} rows" in msg


def test_server_starts_after_wal_damage(tmp_path: Path) -> None:
    """The issue's scenario end to end: acked remote writes, kill -9, WAL damaged, restart. Each
    write creates its series (label ``b``), so each is a commit of DuckDB's WAL."""
    data_dir = tmp_path / "data"
    proc = start_clearsight(tmp_path / "r1", data_dir=data_dir)
    base = int(time.time() * 1000) - 600_000
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
    with httpx.Client(base_url=proc.url, timeout=30) as c:
        for b in range(40):
            body = encode_snappy(WriteRequest([TimeSeries([("__name__", "dmg_srv"), ("b", str(b)), ("s", str(i))],
                                                          [(base + b, float(b))]) for i in range(20)]))
            assert c.post("/api/v1/write", content=body, headers=headers).status_code == 204
    proc.stop(signal.SIGKILL)
    wal = data_dir / WAL
    layout = repair.wal_layout(wal)
    # Inside the payload of the entry at 3/4 of the WAL, just past its frame header: 16 bytes at
    # exactly 3/4 went unnoticed by DuckDB's replay once (the last bytes of a 20-row append, with
    # the WAL 300 bytes shorter after the chunks table became partitions).
    at = max(a for a in layout.entry_starts if a <= layout.size * 3 // 4) + 24
    _overwrite(wal, at, b"\x00\x11" * 8)
    proc = start_clearsight(tmp_path / "r2", data_dir=data_dir)
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            r = c.get("/api/v1/query", params={"query": "count by (b) (last_over_time(dmg_srv[1h]))"})
            assert r.status_code == 200
            kept = {int(x["metric"]["b"]): float(x["value"][1]) for x in r.json()["data"]["result"]}
            assert sorted(kept) == list(range(len(kept))) and 10 <= len(kept) < 40  # the writes before the damage
            assert set(kept.values()) == {20.0}  # each one whole
    finally:
        assert proc.stop() == 0
    assert "is damaged" in proc.log() and "kept" in proc.log()
    assert _asides(data_dir)


def _segment(d: Path) -> tuple[Path, list[tuple[int, int, int]]]:
    """The head log's one segment and its frames (start, end, seq)."""
    segs = sorted((d / HEAD_LOG).glob("*.seg"))
    assert len(segs) == 1
    frames = record_log._scan(segs[0].read_bytes(), 0).frames
    return segs[0], [(f.at, f.end, f.seq) for f in frames]


@pytest.mark.parametrize("nbytes", [8, 300])
def test_head_log_overwritten_mid_segment_loses_only_the_records_hit(written: Path, tmp_path: Path, nbytes: int,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    d = _copy(written, tmp_path / "d")
    seg, frames = _segment(d)
    assert [f[2] for f in frames] == list(range(1, BATCHES + 1))  # batch b is record b + 1
    offset = frames[BATCHES // 2][0] + 40  # inside record 31's frame
    _overwrite(seg, offset, b"\xa5" * nbytes)
    hit = [seq - 1 for at, end, seq in frames if at < offset + nbytes and end > offset]
    with caplog.at_level(logging.ERROR):
        kept = _batches(d)
    assert kept == [b for b in range(BATCHES) if b not in hit] and 1 <= len(hit) <= 2
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert f"records {hit[0] + 1}..{hit[-1] + 1})" in msg and "kept" in msg
    asides = sorted((d / HEAD_LOG).glob("*.damaged-*"))
    assert len(asides) == 1 and asides[0].name.startswith(seg.name)
    s = EmbeddedMetricsStore(d, duckdb_threads=1)  # repaired once: reopened without repairs
    assert not s._head_log.log.repairs
    s.close()


def test_head_log_segment_cut_mid_record(written: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = _copy(written, tmp_path / "d")
    seg, frames = _segment(d)
    at, end, _ = frames[30]  # batch 30's record
    os.truncate(seg, at + (end - at) // 2)
    with caplog.at_level(logging.ERROR):
        kept = _batches(d)
    assert kept == list(range(30))
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "shorter than a segment" in msg and f"byte {at} on) are lost" in msg


def test_head_log_torn_tail_is_cut_with_a_warning(written: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A record cut by a crash (its first bytes written, the rest still the segment's zeros): never
    acknowledged, so a warning, and every record before it is kept."""
    d = _copy(written, tmp_path / "d")
    seg, frames = _segment(d)
    at, end, _ = frames[-1]
    _overwrite(seg, at + 30, bytes(end - at - 30))
    with caplog.at_level(logging.WARNING):
        kept = _batches(d)
    assert kept == list(range(BATCHES - 1))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "never acknowledged" in " ".join(r.getMessage() for r in caplog.records)
    assert not list((d / HEAD_LOG).glob("*.damaged-*"))
