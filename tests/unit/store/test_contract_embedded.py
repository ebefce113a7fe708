"""The backend-agnostic store contract, run against the embedded DuckDB store: once with the
default compaction policy (samples stay in the head) and once compacting into chunks after every
group commit and merging chunks as soon as three samples add up (every read and overwrite goes
through the chunk code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.interface import MetricsStore
from clearsight.store.storetest.contract import ALL_CHECKS, Check, StoreFactory


def embedded(
    data_dir: Path,
    *,
    retention_ms: int = 10**12,
    out_of_order_window_ms: int = 3_600_000,
    max_active_series_per_tenant: int = 0,
) -> MetricsStore:
    return EmbeddedMetricsStore(
        data_dir,
        retention_ms=retention_ms,
        out_of_order_window_ms=out_of_order_window_ms,
        max_active_series_per_tenant=max_active_series_per_tenant,
        queue_max_batches=64,
        duckdb_threads=2,
    )


def embedded_compacting(
    data_dir: Path,
    *,
    retention_ms: int = 10**12,
    out_of_order_window_ms: int = 3_600_000,
    max_active_series_per_tenant: int = 0,
) -> MetricsStore:
    return EmbeddedMetricsStore(
        data_dir,
        retention_ms=retention_ms,
        out_of_order_window_ms=out_of_order_window_ms,
        max_active_series_per_tenant=max_active_series_per_tenant,
        queue_max_batches=64,
        duckdb_threads=2,
        compact_min_rows=1,
        compact_samples_per_series=0,
        chunk_target_samples=3,
        compact_idle_seconds=0.0,
    )


FACTORIES: dict[str, StoreFactory] = {"head": embedded, "chunks": embedded_compacting}


@pytest.mark.parametrize("factory", list(FACTORIES), ids=list(FACTORIES))
@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_contract(check: Check, factory: str, tmp_path: Path) -> None:
    check(FACTORIES[factory], tmp_path)
