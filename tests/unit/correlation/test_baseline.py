"""Robust baselines: median/MAD, floors for flat series, spikes and drops, too little data."""

from __future__ import annotations

import numpy as np

from clearsight.correlation.baseline import baseline_of, find_anomaly


def test_baseline_is_robust_to_past_spikes() -> None:
    v = np.array([10, 11, 9, 10, 12, 10, 500, 10, 11], dtype=np.float64)
    b = baseline_of(v)
    assert b is not None and (b.median, b.mad) == (10.0, 1.0)
    assert abs(b.scale - 1.4826) < 1e-12
    assert baseline_of(np.array([1, 2, np.nan, 3], dtype=np.float64)) is None  # under 5 points


def test_flat_baseline_uses_the_floor() -> None:
    b = baseline_of(np.full(20, 12.0))
    assert b is not None and b.mad == 0 and abs(b.scale - 0.6) < 1e-12


def _series(values: list[float], step: int = 15_000) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    return np.arange(len(values), dtype=np.int64) * step, np.array(values, dtype=np.float64)


def test_spike_after_the_event() -> None:
    # 40 points of ~12 (t=0..585s), the event at 600 s, a rise to 95 from 840 s
    vals = [12 + (i % 3) * 0.5 for i in range(40)] + [12.5] * 16 + [95.0] * 4
    ts, vs = _series(vals)
    a = find_anomaly(ts, vs, 600_000, 3_600_000, 600_001, 900_000, 4.0)
    assert a is not None
    assert (a.start_ms, a.peak_value, a.direction, a.baseline.median) == (840_000, 95.0, "rose", 12.5)
    assert a.score > 100


def test_wiggle_is_not_an_anomaly_and_drops_are() -> None:
    ts, vs = _series([50.0] * 40 + [51.0, 49.0, 52.0] + [5.0])
    assert find_anomaly(ts, vs, 600_000, 3_600_000, 600_000, 630_000, 4.0) is None
    a = find_anomaly(ts, vs, 600_000, 3_600_000, 600_000, 645_000, 4.0)
    assert a is not None and a.direction == "fell" and a.peak_value == 5.0
    assert find_anomaly(ts, vs, 30_000, 3_600_000, 600_000, 645_000, 4.0) is None  # 2 baseline points
