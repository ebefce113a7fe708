"""A node_exporter-like synthetic workload: counters and gauges with realistic value shapes.

Used by the contract suite's volume checks and by ``python -m clearsight.store.storetest.bench``.
Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

from clearsight.model.labels import Labels, make_labels
from clearsight.model.samples import F64Array, I64Array, SampleBatch, canonical_key

# (metric name, kind) pairs cycled over the series; kinds shape the values.
_METRICS = [
    ("node_cpu_seconds_total", "cpu_counter"),
    ("node_network_receive_bytes_total", "bytes_counter"),
    ("node_memory_MemFree_bytes", "page_gauge"),
    ("node_filesystem_size_bytes", "constant"),
    ("node_load1", "load_gauge"),
    ("node_context_switches_total", "slow_counter"),
]


def series_labels(n_series: int, series_per_host: int = 500) -> list[Labels]:
    out = []
    for i in range(n_series):
        name, _ = _METRICS[i % len(_METRICS)]
        out.append(
            make_labels(
                {
                    "__name__": name,
                    "instance": f"host-{i // series_per_host:04d}:9100",
                    "job": "node",
                    "idx": str(i // len(_METRICS)),
                }
            )
        )
    return out


def values_matrix(n_series: int, n_samples: int, seed: int = 1) -> F64Array:
    """Values ``[series, sample]``: cumulative counters, integral and 2-decimal gauges."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_series, n_samples), dtype=np.float64)
    for i in range(n_series):
        kind = _METRICS[i % len(_METRICS)][1]
        if kind == "cpu_counter":
            out[i] = np.round(
                rng.uniform(1e3, 1e6) + np.cumsum(np.round(rng.uniform(0, 15, n_samples), 2)), 2
            )
        elif kind == "bytes_counter":
            out[i] = float(rng.integers(10**9, 10**12)) + np.cumsum(rng.integers(0, 1_000_000, n_samples))
        elif kind == "page_gauge":
            out[i] = (rng.integers(10**5, 10**6) + np.cumsum(rng.integers(-100, 100, n_samples))) * 4096.0
        elif kind == "constant":
            out[i] = float(rng.integers(0, 10**10))
        elif kind == "load_gauge":
            out[i] = np.round(np.abs(np.cumsum(rng.normal(0, 0.1, n_samples)) + 1), 2)
        else:
            out[i] = np.cumsum((rng.random(n_samples) < 0.1).astype(np.float64)) + float(rng.integers(0, 100))
    return out


def timestamps(n_samples: int, step_ms: int = 15_000, t0_ms: int = 1_700_000_000_000) -> I64Array:
    return t0_ms + np.arange(n_samples, dtype=np.int64) * step_ms


def scrape_batches(
    labels: list[Labels], ts: I64Array, values: F64Array, batch_series: int = 2000
) -> list[SampleBatch]:
    """One batch per (scrape, slice of ``batch_series`` series), like remote-write requests."""
    n_series = len(labels)
    batches = []
    for j in range(ts.shape[0]):
        for lo in range(0, n_series, batch_series):
            hi = min(n_series, lo + batch_series)
            sub = labels[lo:hi]
            b = SampleBatch.from_series([])
            b.keys = [canonical_key(x) for x in sub]
            b.series_idx = np.arange(hi - lo, dtype=np.int32)
            b.timestamps = np.full(hi - lo, ts[j], dtype=np.int64)
            b.values = np.ascontiguousarray(values[lo:hi, j])
            batches.append(b)
    return batches
