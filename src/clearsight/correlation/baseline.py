"""A metric's own baseline and when it leaves it. Pure (numpy).

The baseline of a series is the median and the MAD (median absolute deviation) of its values over
a trailing window: robust, so past spikes do not widen it as a standard deviation would. A point
is anomalous when its robust z-score ``|x - median| / scale`` is at least ``threshold``, where
``scale = max(1.4826 * MAD, rel_floor * |median|, abs_floor)``: 1.4826 makes MAD estimate a standard
deviation for normal data; the floors keep a flat baseline (MAD 0) from calling every wiggle an
anomaly (a value flat at 12 must move by more than ``threshold * 5%`` of 12 to count).
No seasonality: a daily pattern that leaves the trailing window shows as an anomaly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAD_TO_SIGMA = 1.4826
MIN_BASELINE_POINTS = 5

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Baseline:
    median: float
    mad: float
    scale: float
    points: int


@dataclass(frozen=True)
class Anomaly:
    start_ms: int  # the first anomalous point
    peak_ms: int  # the point furthest from the baseline
    peak_value: float
    score: float  # robust z-score of the peak
    baseline: Baseline

    @property
    def direction(self) -> str:
        return "rose" if self.peak_value > self.baseline.median else "fell"


def baseline_of(values: F64, rel_floor: float = 0.05, abs_floor: float = 1e-9) -> Baseline | None:
    v = values[~np.isnan(values)]
    if v.size < MIN_BASELINE_POINTS:
        return None
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med)))
    scale = max(MAD_TO_SIGMA * mad, rel_floor * abs(med), abs_floor)
    return Baseline(med, mad, scale, int(v.size))


def find_anomaly(times: I64, values: F64, baseline_end_ms: int, baseline_ms: int, from_ms: int, to_ms: int,
                 threshold: float) -> Anomaly | None:
    """The anomaly of the points in ``[from_ms, to_ms]`` against the baseline of
    ``[baseline_end_ms - baseline_ms, baseline_end_ms)``, or None (too little baseline, nothing
    anomalous)."""
    base_sel = (times >= baseline_end_ms - baseline_ms) & (times < baseline_end_ms)
    b = baseline_of(values[base_sel])
    if b is None:
        return None
    sel = (times >= from_ms) & (times <= to_ms) & ~np.isnan(values)
    ts, vs = times[sel], values[sel]
    if ts.size == 0:
        return None
    z = np.abs(vs - b.median) / b.scale
    hits = np.nonzero(z >= threshold)[0]
    if hits.size == 0:
        return None
    peak = int(hits[np.argmax(z[hits])])
    return Anomaly(int(ts[hits[0]]), int(ts[peak]), float(vs[peak]), float(z[peak]), b)
