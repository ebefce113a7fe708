"""Random series for the rollup tests: irregular scrape intervals, counter resets, gaps of hours,
stale markers and NaN values, over whole UTC days."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import STALE_NAN, SampleBatch, SeriesData
from clearsight.store.interface import SeriesSelector

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY  # a UTC midnight


def random_series(seed: int, n_series: int, days: int, metric: str = "x_total") -> list[tuple[Labels, list[tuple[int, float]]]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_series):
        gauge = i % 4 == 3
        t, v, pts = T0, 0.0, []
        while True:
            t += int(rng.integers(5_000, 120_000))
            if rng.random() < 0.002:
                t += int(rng.integers(HOUR, 5 * HOUR))  # a gap
            if t >= T0 + days * DAY:
                break
            if gauge:
                v = float(rng.normal(0, 50))
            elif rng.random() < 0.01:
                v = float(rng.random() * 10)  # counter reset
            else:
                v += float(rng.random() * 100)
            r = rng.random()
            pts.append((t, STALE_NAN if r < 0.004 else (float("nan") if gauge and r < 0.006 else v)))
        out.append((make_labels({"__name__": metric, "instance": f"i{i % 3}", "s": str(i)}), pts))
    return out


def batch(series: Sequence[tuple[Labels, Sequence[tuple[int, float]]]]) -> SampleBatch:
    return SampleBatch.from_series([(lbl, list(p)) for lbl, p in series])


class RawOnly:
    """The same selector without its rollups: the engine reads raw samples only."""

    def __init__(self, inner: SeriesSelector) -> None:
        self.inner = inner

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        return self.inner.select(matchers, start_ms, end_ms)
