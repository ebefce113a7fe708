"""engine.latest_sample_index: the one-step fast path (instant queries) equals the general
searchsorted path on random series (empty series, stale markers, samples outside the lookback)."""

from __future__ import annotations

import numpy as np

from clearsight.model.samples import STALE_NAN, SeriesData
from clearsight.query.promql.engine import latest_sample_index


def test_one_step_equals_the_general_path() -> None:
    rng = np.random.default_rng(7)
    lookback = 300_000
    for _ in range(300):
        t = int(rng.integers(400_000, 2_000_000))
        lo = t - lookback + 1
        n = int(rng.integers(1, 8))
        lens = rng.integers(0, 6, size=n)
        lens[0] = max(1, int(lens[0]))  # stores return no empty selections
        ts_parts = [np.sort(rng.choice(np.arange(lo, t + 1), int(m), replace=False)).astype(np.int64) for m in lens]
        vals = rng.normal(size=int(lens.sum()))
        vals[rng.random(vals.shape[0]) < 0.2] = STALE_NAN
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        ts = np.concatenate(ts_parts) if n else np.zeros(0, dtype=np.int64)
        data = SeriesData([(("i", str(i)),) for i in range(n)], offsets, ts, vals)
        for step in (t, t + int(rng.integers(1, 60_000))):  # at the last sample's time, or later
            one_idx, one_ok = latest_sample_index(data, np.asarray([step], dtype=np.int64), lo, lookback)
            two_idx, two_ok = latest_sample_index(data, np.asarray([step, step], dtype=np.int64), lo, lookback)
            assert one_ok.shape == (n, 1)
            assert one_ok[:, 0].tolist() == two_ok[:, 0].tolist()
            ok = one_ok[:, 0]
            assert one_idx[ok, 0].tolist() == two_idx[ok, 0].tolist()


def test_a_sample_after_the_step_takes_the_general_path() -> None:
    data = SeriesData([(("i", "0"),)], np.asarray([0, 3]), np.asarray([10, 20, 30], dtype=np.int64),
                      np.asarray([1.0, 2.0, 3.0]))
    idx, ok = latest_sample_index(data, np.asarray([25], dtype=np.int64), 0, 100)
    assert ok.tolist() == [[True]] and idx.tolist() == [[1]]
