"""The head the metrics store's head log describes, as a restart would replay it (tests compare it
with the in-memory head; call it while the store's writer is idle)."""

from __future__ import annotations

from typing import Any

import duckdb

from clearsight.store.embedded import EmbeddedMetricsStore


def replay(store: EmbeddedMetricsStore, cur: duckdb.DuckDBPyConnection) -> tuple[Any, Any, Any, int, int]:
    """``HeadLog.replay`` with the store's retention floor and the last record compacted (read
    through the reader cursor ``cur``)."""
    row = cur.execute("SELECT value FROM clearsight_meta WHERE key = 'head_log_compacted'").fetchall()
    return store._head_log.replay(store._floor, int(row[0][0]) if row else 0)
