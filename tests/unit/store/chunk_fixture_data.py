"""The samples of ``fixtures/metrics-codec-v1.duckdb.gz``: a data dir written by the first chunk
format (codecs XOR and DECIMAL, byte planes + zstd; before the bit-packed codec existed).

``tests/unit/store/make_codec_v1_fixture.py`` wrote it, by the store of commit 704c0f6, from
``samples()``; ``test_chunk_formats.py`` opens it with this build and compares.
"""

from __future__ import annotations

import numpy as np

from clearsight.model.labels import Labels, make_labels
from clearsight.model.samples import STALE_NAN

T0 = 1_764_000_000_000
COMPACTED = 200  # samples per series written, then compacted into chunks
IN_HEAD = 7  # samples per series written after the compaction (left in the head)


def series() -> list[Labels]:
    return [
        make_labels({"__name__": "node_cpu_seconds_total", "cpu": "0", "mode": "idle"}),  # 2 decimals
        make_labels({"__name__": "node_network_receive_bytes_total", "device": "eth0"}),  # integers
        make_labels({"__name__": "ratio", "kind": "binary"}),  # arbitrary floats: XOR
        make_labels({"__name__": "up", "job": "x"}),  # constant, one stale marker: XOR
        make_labels({"__name__": "irregular", "job": "x"}),  # gaps and jitter in time
    ]


MAX_SAMPLES = 1_000


def samples(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(timestamps, values) of the first ``n <= MAX_SAMPLES`` samples of each series."""
    return [(ts[:n], vals[:n]) for ts, vals in _samples(MAX_SAMPLES)]


def _samples(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(42)
    i = np.arange(n, dtype=np.int64)
    regular = T0 + i * 15_000 + rng.integers(-2, 3, n)
    out = [
        (regular, np.round(1e5 + np.cumsum(rng.uniform(6, 19, n)), 2)),
        (regular, np.round(1e9 + np.cumsum(rng.uniform(1e6, 3e6, n)), 0)),
        (regular, rng.normal(0.5, 0.2, n)),
    ]
    up = np.ones(n)
    up[n // 2] = STALE_NAN
    out.append((regular, up))
    irregular = T0 + np.cumsum(rng.choice([1_000, 15_000, 15_001, 600_000], n)).astype(np.int64)
    out.append((irregular, np.round(rng.uniform(-50, 50, n), 3)))
    return out
