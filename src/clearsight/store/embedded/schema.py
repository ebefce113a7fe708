"""The on-disk schema of the embedded metrics store (documented in docs/storage.md)."""

from __future__ import annotations

from clearsight.store.embedded.histogram_table import DDL as HISTOGRAM_DDL

# 3: chunks may be PACKED (chunks.py, codec 2), which builds reading version 2 cannot decode;
# series has no fingerprint column (written, never read) and its labels JSON no __name__ (the
# metric column). A version-2 file is upgraded in place when opened (fingerprint dropped; its
# chunks keep their codecs and its labels their __name__, both still read), and from then on
# refused by builds that read 2.
# 4: chunks in time partitions (chunk_parts.py) instead of one chunks table; a version-3 file is
# migrated at open (its chunks table moved into partitions), and is then refused by builds that read 3.
# 5: the head's durable copy is the head_log table (head_log.py: one compressed record per group
# commit) instead of the samples table (one row per sample); a version-4 file's samples rows are moved
# into one record at open and the table dropped, and the file is then refused by builds that read 4.
# 6: the head log leaves DuckDB for segment files of its own (``metrics.headlog/``, head_log.py and
# kernel record_log.py; clearsight_meta ``head_log_compacted``: the last record compacted); a version-5
# file's head_log rows are moved into the log at open and the table dropped, and the directory is then
# refused by builds that read 5.
SCHEMA_VERSION = 6
UPGRADES_FROM = (2, 3, 4, 5)
DB_FILE = "metrics.duckdb"
HEAD_LOG_DIR = "metrics.headlog"

DDL = [
    """CREATE TABLE IF NOT EXISTS clearsight_meta (
        key VARCHAR NOT NULL,
        value VARCHAR NOT NULL
    )""",
    # One row per series. series_id is unique across tenants and never reused. labels: the label
    # set as a JSON object without __name__ (in metric; rows of schema 2 files include it).
    """CREATE TABLE IF NOT EXISTS series (
        series_id UINTEGER NOT NULL,
        tenant VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        labels VARCHAR NOT NULL
    )""",
    # The head's durable copy is not here since schema 6: HEAD_LOG_DIR (head_log.py).
    # Compacted samples: one row per (compaction, series), encoded by store/embedded/chunks.py, in
    # time partitions chunks_YYYYMMDD created on demand (chunk_parts.py; schema 4).
    """CREATE TABLE IF NOT EXISTS metadata (
        tenant VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        help VARCHAR NOT NULL,
        unit VARCHAR NOT NULL
    )""",
    # Native histogram samples: one row per (commit or compaction, series), see histogram_table.py.
    HISTOGRAM_DDL,
]
