"""rate/increase/irate/resets/start_timestamp over samples with start (created) timestamps."""

from __future__ import annotations

import math

import pytest

from clearsight.model.histogram import FloatHistogram
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.fn_start_ts import is_st_reset, st_overlap
from clearsight.store.memory import MemorySeriesSelector


def test_start_timestamp_reset_rules() -> None:
    assert not is_st_reset(0, 60_000, 0, 120_000)  # unknown start
    assert not is_st_reset(0, 60_000, 120_000, 120_000)  # ST == T: unknown (OTel)
    assert not is_st_reset(0, 60_000, 30_000, 120_000)  # started before the previous sample
    assert is_st_reset(0, 60_000, 90_000, 120_000)  # restarted after the previous sample
    assert is_st_reset(1, 60_000, 60_000, 120_000)  # delta: ST = previous T, previous ST known
    assert not is_st_reset(0, 60_000, 60_000, 120_000)  # cumulative with unknown start
    assert not is_st_reset(90_000, 60_000, 60_000, 120_000)  # invalid previous ST
    assert st_overlap(30_000, 60_000, 10_000) and not st_overlap(0, 60_000, 60_000)


def _store() -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    ts = [60_000, 120_000, 180_000]
    # A delta counter: every sample counts 60 since the previous one (ST = previous T).
    s.add((("__name__", "d"),), ts, [60.0, 60.0, 60.0], start_timestamps=[0, 60_000, 120_000])
    # A cumulative counter without start timestamps.
    s.add((("__name__", "c"),), ts, [60.0, 120.0, 180.0])
    return s


def test_delta_samples_count_as_resets() -> None:
    s = _store()
    e = Engine()
    inc = e.instant(s, "increase(d[2m])", 180_000)
    # Window (60s, 180s]: samples at 120 s and 180 s; the second restarted at the first's time
    # (a delta sample): 0 + 60. The first sample's ST (60 s) is the window start, not inside it,
    # so the result is extrapolated by 60 s to the start: factor (60 + 60) / 60.
    assert [float(x.values[0]) for x in inc.series] == [pytest.approx(120.0)]
    # The first sample has no ST, so the second (ST = first T) reads as a cumulative series with
    # an unknown start; only the third counts as a reset.
    assert float(e.instant(s, "resets(d[5m])", 180_000).series[0].values[0]) == 1.0
    assert float(e.instant(s, "irate(d[5m])", 180_000).series[0].values[0]) == pytest.approx(1.0)
    # Series without start timestamps keep the usual path.
    assert float(e.instant(s, "increase(c[2m])", 180_000).series[0].values[0]) == pytest.approx(120.0)


def test_zero_at_start_timestamp_instead_of_extrapolation() -> None:
    s = MemorySeriesSelector()
    h = FloatHistogram.build(count=60, sum=60)
    s.add((("__name__", "x"),), [120_000], [math.nan], [h], start_timestamps=[60_000])
    # One sample whose ST lies inside the window: 60 observations between ST and T, per 300 s.
    r = Engine().instant(s, "rate(x[5m])", 180_000)
    hist = r.series[0].histograms
    assert hist is not None and hist[0] is not None and hist[0].count == pytest.approx(0.2)


def test_start_timestamp_function_and_overlap_warning() -> None:
    s = MemorySeriesSelector()
    s.add((("__name__", "o"),), [60_000, 120_000, 180_000], [60.0, 120.0, 180.0],
          start_timestamps=[-60_000, 0, 60_000])
    e = Engine()
    st = e.instant(s, "start_timestamp(o)", 180_000)
    assert [float(x.values[0]) for x in st.series] == [60.0]
    assert e.instant(s, "start_timestamp(o * 1)", 180_000).series == []
    r = e.instant(s, "rate(o[3m])", 200_000)
    assert r.annotations.warnings == [
        'PromQL warning: sample has start time that overlaps with previous sample timestamp for metric "o" (1:6)']
