"""The on-disk schema of the embedded log store, ``logs.duckdb`` (documented in docs/storage.md).

Entries live in two tables per UTC day, all in the same DuckDB file (one WAL: a group commit
spanning days is one transaction): ``logs_YYYYMMDD``, the day's recent entries one per row as
written (the head), and ``logblk_YYYYMMDD_NNNNNN``, one table per seal of the day's head, whose rows
are compressed blocks of one stream's lines (``log_blocks``); the writer moves a day's head into blocks once it holds enough
rows. Retention drops a whole day's tables (``DROP TABLE``: no row-by-row delete, the freed blocks
are reused by later writes); a read touches only the days its time range covers.
"""

from __future__ import annotations

from clearsight.store.kernel.retention import DAY_MS, PartitionScheme

LOGS_SCHEMA_VERSION = 2  # 2: logblk_YYYYMMDD_NNNNNN block tables (a version 1 file is upgraded in place)
LOGS_DB_FILE = "logs.duckdb"
DAY_NS = 86_400 * 1_000_000_000
PARTITION_PREFIX = "logs_"
BLOCKS_PREFIX = "logblk_"
# The day heads' partition scheme (storage kernel): names, listing, expiry and drops.
LOG_DAYS = PartitionScheme("logs", DAY_MS, unit=DAY_NS // DAY_MS)

DDL = [
    """CREATE TABLE IF NOT EXISTS logs_meta (
        key VARCHAR NOT NULL,
        value VARCHAR NOT NULL
    )""",
    # One row per stream; stream_id is unique across tenants and never reused.
    """CREATE TABLE IF NOT EXISTS log_streams (
        stream_id UINTEGER NOT NULL,
        tenant VARCHAR NOT NULL,
        labels VARCHAR NOT NULL
    )""",
    # One row per distinct resource attribute set (shared by tenants: only reachable through a
    # tenant's own entries). resource_id 0 is the empty set and has no row.
    """CREATE TABLE IF NOT EXISTS log_resources (
        resource_id UINTEGER NOT NULL,
        attrs VARCHAR NOT NULL
    )""",
]

PARTITION_COLUMNS = """(
    ts BIGINT NOT NULL,
    stream_id UINTEGER NOT NULL,
    severity UTINYINT NOT NULL,
    severity_text VARCHAR NOT NULL,
    body VARCHAR NOT NULL USING COMPRESSION zstd,
    attr_keys VARCHAR[] NOT NULL,
    attr_values VARCHAR[] NOT NULL,
    trace_id BLOB,
    span_id BLOB,
    resource_id UINTEGER NOT NULL
)"""


# One row per sealed block: the lines of one stream, sorted by (ts, seq); ``seq`` is the write order
# within the day (``log_blocks``).
BLOCK_COLUMNS = """(
    stream_id UINTEGER NOT NULL,
    min_ts BIGINT NOT NULL,
    max_ts BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    n UINTEGER NOT NULL,
    body_bytes UBIGINT NOT NULL,
    meta BLOB NOT NULL,
    body BLOB NOT NULL
)"""


def day_of(ts_ns: int) -> int:
    """The UTC day number (days since 1970-01-01) of a timestamp."""
    return ts_ns // DAY_NS


def partition_name(day: int) -> str:
    return LOG_DAYS.name(day * DAY_NS)


def blocks_name(day: int, k: int) -> str:
    """The name of a day's ``k``-th block table (one per seal: a table is written once, since
    DuckDB rewrites a table's last row group, BLOBs included, at each checkpoint after an append)."""
    return f"{BLOCKS_PREFIX}{partition_name(day)[len(PARTITION_PREFIX):]}_{k:06d}"


def blocks_of(name: str) -> tuple[int, int] | None:
    """``(day, k)`` of a block table name, None when ``name`` is not one."""
    if not name.startswith(BLOCKS_PREFIX) or len(name) != len(BLOCKS_PREFIX) + 15 or name[-7] != "_":
        return None
    day = day_of_partition(PARTITION_PREFIX + name[len(BLOCKS_PREFIX):-7])
    return (day, int(name[-6:])) if day is not None and name[-6:].isdigit() else None


def day_of_partition(name: str) -> int | None:
    """The day number of a partition table name, None when ``name`` is not one."""
    part = LOG_DAYS.parse(name)
    return None if part is None else part.start // DAY_NS
