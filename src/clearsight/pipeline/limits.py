"""Configurable limits on the write path (documented in docs/configuration.md)."""

from __future__ import annotations

from dataclasses import dataclass

from clearsight.pipeline.series_budget import AUTO


@dataclass(frozen=True)
class WriteLimits:
    max_body_bytes: int = 32 * 1024 * 1024  # compressed request body
    max_decompressed_bytes: int = 256 * 1024 * 1024
    max_series_per_request: int = 100_000
    max_samples_per_request: int = 2_000_000
    max_labels_per_series: int = 64
    max_label_name_length: int = 1024
    max_label_value_length: int = 4096
    max_active_series_per_tenant: int = 5_000_000
    # all tenants together: rotating tenant ids cannot grow the series (and memory) past this;
    # AUTO ("auto" in the config): sized from the host's memory at start (series_budget.py)
    max_series_total: int = AUTO
    # accepted sample timestamp window relative to the server clock
    max_future_ms: int = 10 * 60 * 1000
    max_past_ms: int = 366 * 24 * 3600 * 1000
