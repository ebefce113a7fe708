"""The on-disk schema of the embedded log store, ``logs.duckdb`` (documented in docs/storage.md).

Entries live in one table per UTC day, ``logs_YYYYMMDD``, all in the same DuckDB file (one WAL: a
group commit spanning days is one transaction). Retention drops a whole day's table (``DROP
TABLE``: no row-by-row delete, the freed blocks are reused by later writes); a read touches only
the days its time range covers.
"""

from __future__ import annotations

import datetime as dt

LOGS_SCHEMA_VERSION = 1
LOGS_DB_FILE = "logs.duckdb"
DAY_NS = 86_400 * 1_000_000_000
PARTITION_PREFIX = "logs_"

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


def day_of(ts_ns: int) -> int:
    """The UTC day number (days since 1970-01-01) of a timestamp."""
    return ts_ns // DAY_NS


def partition_name(day: int) -> str:
    d = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return f"{PARTITION_PREFIX}{d.year:04d}{d.month:02d}{d.day:02d}"


def day_of_partition(name: str) -> int | None:
    """The day number of a partition table name, None when ``name`` is not one."""
    digits = name[len(PARTITION_PREFIX):]
    if not name.startswith(PARTITION_PREFIX) or len(digits) != 8 or not digits.isdigit():
        return None
    try:
        d = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return (d - dt.date(1970, 1, 1)).days
