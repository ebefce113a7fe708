"""The embedded metrics store: DuckDB in the data directory (see docs/storage.md)."""

from clearsight.store.embedded.duckdb_store import EmbeddedMetricsStore

__all__ = ["EmbeddedMetricsStore"]
