"""Contract of the kernel's time-partitioned retention (store/kernel/retention.py), on real DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from clearsight.store.kernel.retention import (
    DAY_MS,
    Partition,
    PartitionScheme,
    RetentionCounters,
    drop,
    expired,
    over_size,
    union_sql,
)

NS = 1_000_000  # nanoseconds per millisecond
T0 = 1_764_979_200_000  # 2025-12-06 00:00:00 UTC in ms
DDL = "(ts BIGINT NOT NULL, v DOUBLE NOT NULL)"


def test_daily_names_and_bounds() -> None:
    s = PartitionScheme("chunks")
    p = s.of(T0 + 5 * 3600_000)
    assert p == Partition(T0, T0 + DAY_MS, "chunks_20251206")
    assert s.of(T0 - 1).name == "chunks_20251205" and s.of(T0 - 1).end == T0
    assert s.parse("chunks_20251206") == p
    assert s.of(0).name == "chunks_19700101"


def test_nanosecond_unit_names_like_milliseconds() -> None:
    s = PartitionScheme("logs", unit=NS)
    p = s.of(T0 * NS + 1)
    assert p == Partition(T0 * NS, (T0 + DAY_MS) * NS, "logs_20251206")
    assert s.parse(p.name) == p


def test_sub_day_periods_carry_the_time() -> None:
    s = PartitionScheme("chunks", period_ms=3600_000)
    p = s.of(T0 + 2 * 3600_000 + 59_999)
    assert p.name == "chunks_20251206_020000" and p.end - p.start == 3600_000
    assert s.parse(p.name) == p
    # A daily name, or an hour that is not a partition start, is not one of this scheme's.
    assert s.parse("chunks_20251206") is None
    assert PartitionScheme("chunks", period_ms=7200_000).parse("chunks_20251206_010000") is None


def test_parse_refuses_other_tables() -> None:
    s = PartitionScheme("logs")
    for name in ["logs", "logs_2025120", "logs_20251306", "logs_20251206_000001", "logblk_20251206_000001",
                 "logs_meta", "xlogs_20251206"]:
        assert s.parse(name) is None, name


def test_keys_match_start_of_including_negative_times() -> None:
    s = PartitionScheme("chunks", period_ms=10_000)
    ts = np.array([-1, 0, 9_999, 10_000, 25_000], dtype=np.int64)
    assert s.keys(ts).tolist() == [s.start_of(int(t)) for t in ts] == [-10_000, 0, 0, 10_000, 20_000]


@pytest.mark.parametrize("period_ms", [0, 999, 1500])
def test_bad_periods_are_refused(period_ms: int) -> None:
    with pytest.raises(ValueError):
        PartitionScheme("chunks", period_ms=period_ms)


def test_bad_base_is_refused() -> None:
    with pytest.raises(ValueError):
        PartitionScheme("chunks; DROP TABLE x")


def test_create_list_drop_on_duckdb(tmp_path: Path) -> None:
    s = PartitionScheme("chunks", period_ms=3600_000)
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    con.execute("CREATE TABLE chunks_meta (k VARCHAR)")  # same prefix, not a partition
    parts = [s.of(T0 + h * 3600_000) for h in (3, 0, 1)]
    con.execute("BEGIN TRANSACTION")
    for p in parts:
        s.create(con, p, DDL)
        s.create(con, p, DDL)  # idempotent
        con.execute(f"INSERT INTO {p.name} VALUES (?, 1.0)", [p.start])
    con.execute("COMMIT")
    listed = s.list(con)
    assert listed == sorted(parts) and [p.start for p in listed] == [T0, T0 + 3600_000, T0 + 3 * 3600_000]

    rel = union_sql(listed, "ts, v", "SELECT 0::BIGINT AS ts, 0.0::DOUBLE AS v WHERE false")
    assert con.execute(f"SELECT ts FROM {rel} ORDER BY ts").fetchall() == [(p.start,) for p in listed]
    assert con.execute(f"SELECT count(*) FROM {union_sql([], 'ts, v', 'SELECT 0 AS ts, 0.0 AS v WHERE false')}"
                       ).fetchall() == [(0,)]

    # A rolled-back drop leaves every table; a committed one removes the partition and its companions.
    con.execute("CREATE TABLE side_20251206 (x INT)")
    con.execute("BEGIN TRANSACTION")
    drop(con, expired(listed, T0 + 2 * 3600_000))
    con.execute("ROLLBACK")
    assert s.list(con) == listed
    con.execute("BEGIN TRANSACTION")
    drop(con, expired(listed, T0 + 2 * 3600_000), also=lambda p: ["side_20251206"] if p.start == T0 else [])
    con.execute("COMMIT")
    assert s.list(con) == listed[2:]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'side_20251206'").fetchall() == [(0,)]
    con.close()
    # Listing after reopen sees what was committed.
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    assert s.list(con) == listed[2:]
    con.close()


def test_expired_keeps_the_partition_holding_the_cutoff() -> None:
    s = PartitionScheme("p", period_ms=10_000)
    parts = [s.of(t) for t in (0, 10_000, 20_000)]
    assert expired(parts, 19_999) == parts[:1]
    assert expired(parts, 20_000) == parts[:2]  # [10_000, 20_000) is wholly older than 20_000
    assert expired(parts, 0) == []


def test_over_size_drops_oldest_first_and_never_the_newest() -> None:
    s = PartitionScheme("p", period_ms=10_000)
    parts = [s.of(t) for t in (20_000, 0, 10_000)]
    sizes = {p.name: 100 for p in parts}
    assert over_size(parts, sizes, 0) == []  # unbounded
    assert over_size(parts, sizes, 300) == []
    assert over_size(parts, sizes, 299) == sorted(parts)[:1]
    assert over_size(parts, sizes, 250, fixed=60) == sorted(parts)[:2]
    assert over_size(parts, sizes, 1) == sorted(parts)[:2]  # the newest stays even when over
    assert over_size([], sizes, 1) == []


def test_counters_add_dropped_bytes() -> None:
    c = RetentionCounters()
    p = PartitionScheme("p").of(0)
    c.add([p], {p.name: 123})
    c.add([], {})
    assert (c.partitions_dropped_total, c.bytes_dropped_total) == (1, 123)
