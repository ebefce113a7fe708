"""Native histograms through the engine: store, selectors, functions, aggregations, operators.

Expected values are worked out by hand from Prometheus' semantics (promql/functions.go,
engine.go); the promqltest conformance files cover the long tail."""

from __future__ import annotations

import math

import pytest

from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import STALE_NAN, SeriesData
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.result import QueryResult
from clearsight.store.memory import MemorySeriesSelector


def H(count: float, total: float, buckets: dict[int, float], hint: CounterResetHint = CounterResetHint.UNKNOWN,
      schema: int = 0) -> FloatHistogram:
    return FloatHistogram.build(schema=schema, count=count, sum=total, positive=buckets, counter_reset_hint=hint)


def lbl(name: str, **kv: str) -> Labels:
    return tuple(sorted([("__name__", name), *kv.items()]))


@pytest.fixture
def store() -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    # A counter histogram every 60 s: counts 0, 6, 12, ... (2 per bucket per step).
    hs: list[FloatHistogram | None] = [
        H(6 * i, 3 * i, {0: 2 * i, 1: 2 * i, 2: 2 * i},
          CounterResetHint.UNKNOWN if i == 0 else CounterResetHint.NOT_RESET) for i in range(6)]
    s.add(lbl("h", job="a"), [i * 60_000 for i in range(6)], [math.nan] * 6, hs)
    s.add(lbl("h", job="b"), [i * 60_000 for i in range(6)], [math.nan] * 6, hs)
    s.add(lbl("f", job="a"), [i * 60_000 for i in range(6)], [float(i) for i in range(6)])
    # A series that switches from floats to histograms.
    s.add(lbl("mixed"), [0, 60_000, 120_000], [1.0, math.nan, math.nan],
          [None, H(1, 1, {0: 1}), H(2, 2, {0: 2}, CounterResetHint.NOT_RESET)])
    return s


def run(store: MemorySeriesSelector, q: str, t_ms: int = 300_000) -> QueryResult:
    return Engine().instant(store, q, t_ms)


def only_hist(res: QueryResult) -> dict[Labels, FloatHistogram]:
    out = {}
    for s in res.series:
        assert s.histograms is not None, s
        h = s.histograms[0]
        assert h is not None
        out[s.labels] = h
    return out


def only_float(res: QueryResult) -> dict[Labels, float]:
    out = {}
    for s in res.series:
        assert s.histograms is None or s.histograms[0] is None
        out[s.labels] = float(s.values[0])
    return out


def test_store_returns_histograms_and_merges_writes() -> None:
    s = MemorySeriesSelector()
    s.add(lbl("x"), [0, 10], [1.0, math.nan], [None, H(1, 1, {0: 1})])
    s.add(lbl("x"), [20], [2.0])
    s.add(lbl("x"), [10], [5.0])  # replaces the histogram at 10 with a float
    data = s.select([], 0, 100)
    assert type(data) is SeriesData
    assert data.values.tolist()[0] == 1.0 and data.values.tolist()[1:] == [5.0, 2.0]
    assert data.histograms is not None and list(data.histograms) == [None, None, None]
    assert data.start_timestamps is None
    # Selecting only float series leaves both optional columns None.
    s.add(lbl("y"), [0], [1.0])
    plain = s.select([Matcher(MatchType.EQ, "__name__", "y")], 0, 5)
    assert type(plain) is SeriesData
    assert plain.histograms is None and plain.start_timestamps is None


def test_series_data_optional_columns_are_aligned_per_series() -> None:
    s = MemorySeriesSelector()
    h = H(1, 1, {0: 1})
    s.add(lbl("a"), [0, 10], [1.0, 2.0], start_timestamps=[0, 5])
    s.add(lbl("b"), [0, 10, 20], [math.nan, 3.0, math.nan], [h, None, h])
    s.add(lbl("c"), [10], [4.0])
    data = s.select([Matcher.of("=~", "__name__", "a|b|c")], 0, 100)
    assert data.labels == [lbl("a"), lbl("b"), lbl("c")]
    assert data.histograms is not None and data.start_timestamps is not None
    assert data.histograms.shape == data.timestamps.shape == data.start_timestamps.shape
    assert data.start_timestamps.dtype.name == "int64"
    # A series without histograms gets None entries; one without start timestamps gets 0.
    assert list(data.histograms) == [None, None, h, None, h, None]
    assert data.start_timestamps.tolist() == [0, 5, 0, 0, 0, 0]
    # Series i's entries are the offsets[i]:offsets[i+1] slice, like its timestamps.
    assert list(data.histograms[int(data.offsets[1]) : int(data.offsets[2])]) == [h, None, h]
    assert data.start_timestamps[int(data.offsets[0]) : int(data.offsets[1])].tolist() == [0, 5]
    empty = SeriesData.empty()
    assert len(empty) == 0 and empty.histograms is None and empty.start_timestamps is None
    # The positional four-column constructor still works and leaves the new columns None.
    four = SeriesData(data.labels, data.offsets, data.timestamps, data.values)
    assert four.histograms is None and four.start_timestamps is None


def test_selector_returns_histogram_points(store: MemorySeriesSelector) -> None:
    res = run(store, 'h{job="a"}')
    h = only_hist(res)[lbl("h", job="a")]
    assert (h.count, h.sum) == (30, 15)
    assert math.isnan(float(res.series[0].values[0]))
    assert res.series[0].points() == []


def test_stale_marker_ends_a_histogram_series() -> None:
    s = MemorySeriesSelector()
    s.add(lbl("x"), [0, 60_000], [math.nan, STALE_NAN], [H(1, 1, {0: 1}), None])
    assert run(s, "x", 30_000).series
    assert run(s, "x", 90_000).series == []


def test_histogram_count_sum_avg_drop_the_name(store: MemorySeriesSelector) -> None:
    assert only_float(run(store, 'histogram_count(h{job="a"})')) == {(("job", "a"),): 30.0}
    assert only_float(run(store, 'histogram_sum(h{job="a"})')) == {(("job", "a"),): 15.0}
    assert only_float(run(store, 'histogram_avg(h{job="a"})')) == {(("job", "a"),): 0.5}
    # Float samples are ignored by the histogram functions.
    assert run(store, "histogram_count(f)").series == []


def test_float_functions_ignore_histograms(store: MemorySeriesSelector) -> None:
    res = run(store, "abs({job=\"a\"})")
    assert only_float(res) == {(("job", "a"),): 5.0}


def test_rate_of_a_histogram_counter(store: MemorySeriesSelector) -> None:
    # Over (60s, 300s]: samples at 120..300 s (counts 12..30), increase 18 over 180 s; the first
    # sample is 60 s from the window start (< 1.1 x the 60 s spacing, and the zero point lies
    # further away), so it extrapolates all the way: factor 240/180, per 240 s.
    h = only_hist(run(store, 'rate(h{job="a"}[4m])'))[(("job", "a"),)]
    assert h.counter_reset_hint == CounterResetHint.GAUGE
    assert h.count == pytest.approx(0.1)
    inc = only_hist(run(store, 'increase(h{job="a"}[4m])'))[(("job", "a"),)]
    assert inc.count == pytest.approx(24)
    assert dict(zip(inc.positive_index.tolist(), inc.positive.tolist(), strict=True)) == pytest.approx(
        {0: 8.0, 1: 8.0, 2: 8.0})


def test_rate_over_a_counter_reset() -> None:
    s = MemorySeriesSelector()
    hs: list[FloatHistogram | None] = [H(10, 10, {0: 10}), H(20, 20, {0: 20}, CounterResetHint.NOT_RESET),
                                       H(5, 5, {0: 5}, CounterResetHint.RESET)]
    s.add(lbl("c"), [0, 60_000, 120_000], [math.nan] * 3, hs)
    # Window (0, 120s]: samples at 60 s (20) and 120 s (5, a reset): the increase is 5, then
    # extrapolated 60 s to the window start (within 1.1 x the spacing): x 120/60.
    h = only_hist(Engine().instant(s, "increase(c[2m])", 120_000))
    assert next(iter(h.values())).count == pytest.approx(10)
    assert only_float(Engine().instant(s, "resets(c[5m])", 120_000)) == {(): 1.0}


def test_mixed_window_warns_and_yields_nothing(store: MemorySeriesSelector) -> None:
    res = run(store, "rate(mixed[5m])", 120_000)
    assert res.series == []
    assert res.annotations.warnings == [
        'PromQL warning: encountered a mix of histograms and floats for metric name "mixed" (1:6)']


def test_sum_and_avg_of_histograms(store: MemorySeriesSelector) -> None:
    h = only_hist(run(store, "sum(h)"))[()]
    assert (h.count, h.sum) == (60, 30)
    a = only_hist(run(store, "avg by (job) (h)"))
    assert {k: v.count for k, v in a.items()} == {(("job", "a"),): 30, (("job", "b"),): 30}
    assert only_float(run(store, "count(h)")) == {(): 2.0}


def test_sum_of_floats_and_histograms_warns(store: MemorySeriesSelector) -> None:
    res = run(store, 'sum({job="a"})')
    assert res.series == []
    assert res.annotations.warnings == [
        "PromQL warning: encountered a mix of histograms and floats for aggregation (1:5)"]


def test_max_ignores_histograms_with_info(store: MemorySeriesSelector) -> None:
    res = run(store, 'max({job="a"})')
    assert only_float(res) == {(): 5.0}
    assert res.annotations.infos == ["PromQL info: ignored histogram in max aggregation (1:5)"]


def test_histogram_times_scalar_and_incompatible_ops(store: MemorySeriesSelector) -> None:
    h = only_hist(run(store, 'h{job="a"} * 2'))[(("job", "a"),)]
    assert (h.count, h.sum) == (60, 30)
    h = only_hist(run(store, '2 * h{job="a"} / 4'))[(("job", "a"),)]
    assert h.count == 15
    res = run(store, 'h{job="a"} + 1')
    assert res.series == []
    assert res.annotations.infos == [
        'PromQL info: incompatible sample types encountered for binary operator "+": histogram + float (1:1)']


def test_histogram_minus_histogram_is_a_gauge(store: MemorySeriesSelector) -> None:
    h = only_hist(run(store, 'h{job="a"} - ignoring(job) h{job="b"}'))[()]
    assert h.count == 0 and h.counter_reset_hint == CounterResetHint.GAUGE
    eq = run(store, 'h{job="a"} == ignoring(job) h{job="b"}')
    # A comparison keeps the left histogram; ignoring() labels leave the result (one-to-one).
    assert list(only_hist(eq)) == [lbl("h")]


def test_trim_upper_keeps_observations_below(store: MemorySeriesSelector) -> None:
    # Buckets (0.5,1], (1,2], (2,4] with 10 each; </ 2 keeps the first two.
    h = only_hist(run(store, 'h{job="a"} </ 2'))[lbl("h", job="a")]
    assert h.count == 20
    assert h.positive.tolist() == [10.0, 10.0]


def test_histogram_quantile_of_native_histograms(store: MemorySeriesSelector) -> None:
    res = only_float(run(store, 'histogram_quantile(0.5, h{job="a"})'))
    # Median in bucket (1, 2] at its lower end: rank 15 of 30, 10 below it -> exponential
    # interpolation 2^(0.5) in (1, 2].
    assert res[(("job", "a"),)] == pytest.approx(2 ** 0.5)


def test_last_over_time_and_sum_over_time(store: MemorySeriesSelector) -> None:
    h = only_hist(run(store, 'last_over_time(h{job="a"}[5m])'))[lbl("h", job="a")]
    assert h.count == 30
    s = only_hist(run(store, 'sum_over_time(h{job="a"}[2m])'))[(("job", "a"),)]
    assert s.count == 24 + 30


def test_range_query_output_carries_histograms(store: MemorySeriesSelector) -> None:
    res = Engine().range(store, 'h{job="a"}', 0, 120_000, 60_000)
    s = res.series[0]
    assert s.histograms is not None
    assert [h.count for h in s.histograms if h is not None] == [0, 6, 12]
    assert s.histogram_points()[2][0] == 120_000


def test_histogram_stats_decoding_marks_resets() -> None:
    from clearsight.query.promql.nh_common import stats_decode, stats_selectors
    from clearsight.query.promql.parser import parse

    expr = parse("histogram_count(sum(a)) + histogram_quantile(0.5, b) + histogram_count(last_over_time(a[1m:]))")
    sel = stats_selectors(expr)
    assert len(sel) == 1
    import numpy as np

    arr = np.empty(3, dtype=object)
    arr[:] = [H(5, 5, {0: 5}), H(3, 3, {0: 3}), H(4, 4, {0: 4})]
    out = stats_decode(arr)
    assert [h.counter_reset_hint for h in out] == [CounterResetHint.UNKNOWN, CounterResetHint.RESET,
                                                   CounterResetHint.NOT_RESET]
    assert out[0].positive.size == 0


def test_histogram_json_matches_prometheus_shape() -> None:
    from clearsight.query.promql.result import histogram_json

    h = FloatHistogram.build(schema=0, count=5, sum=7.5, zero_threshold=0.001, zero_count=1,
                             positive={1: 3, 2: 0}, negative={0: 1})
    assert histogram_json(h) == {
        "count": "5", "sum": "7.5",
        "buckets": [[1, "-1", "-0.5", "1"], [3, "-0.001", "0.001", "1"], [0, "1", "2", "3"]]}
    assert histogram_json(FloatHistogram()) == {"count": "0", "sum": "0"}
