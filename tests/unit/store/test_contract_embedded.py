"""The backend-agnostic store contract, run against the embedded DuckDB store."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.interface import MetricsStore
from clearsight.store.storetest.contract import ALL_CHECKS, Check


def embedded(data_dir: Path, *, retention_ms: int = 10**12, out_of_order_window_ms: int = 3_600_000,
             max_active_series_per_tenant: int = 0) -> MetricsStore:
    return EmbeddedMetricsStore(data_dir, retention_ms=retention_ms,
                                out_of_order_window_ms=out_of_order_window_ms,
                                max_active_series_per_tenant=max_active_series_per_tenant,
                                queue_max_batches=64, duckdb_threads=2)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_contract(check: Check, tmp_path: Path) -> None:
    check(embedded, tmp_path)
