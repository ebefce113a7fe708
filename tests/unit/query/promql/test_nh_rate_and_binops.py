"""Native-histogram arithmetic of the range functions and the binary operators, on the code the
engine runs (``nh_functions.histogram_rate``, ``nh_binops.elem_binop``, the engine itself).

These cases were written against a second, unused copy of the same arithmetic
(``model/histogram_range.py``, ``model/histogram_ops.py``, since removed); the ones the promqltest
conformance files do not already pin are kept here. Expected values follow Prometheus'
``promql/functions.go`` (``histogramRate``, ``instantValue``, ``*_over_time``) and ``engine.go``
(``vectorElemBinop``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.histogram_text import parse_histogram, promqltest_equal
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.fn_start_ts import is_st_reset, st_overlap
from clearsight.query.promql.nh_binops import elem_binop
from clearsight.query.promql.nh_functions import histogram_rate
from clearsight.query.promql.result import QueryResult
from clearsight.query.promql.values import Annotations, FuncContext
from clearsight.store.memory import MemorySeriesSelector

NAN = math.nan
NOT_GAUGE = 'PromQL warning: this native histogram metric is not a gauge: "m"'
NOT_COUNTER = 'PromQL warning: this native histogram metric is not a counter: "m"'
MIXED = ('PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas '
         'for metric name "m"')


def H(text: str) -> FloatHistogram:
    return parse_histogram(text).histogram


def check(expected: str, got: FloatHistogram | None) -> None:
    p = parse_histogram(expected)
    assert got is not None and promqltest_equal(p.histogram, got, p.counter_reset_hint_set), repr(got)


def ctx() -> FuncContext:
    return FuncContext(np.zeros(1, dtype=np.int64), [], Annotations())


def store(hs: list[FloatHistogram], ts: list[int], sts: list[int] | None = None) -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    s.add((("__name__", "m"),), ts, [NAN] * len(hs), list(hs), start_timestamps=sts)
    return s


def one_hist(res: QueryResult) -> FloatHistogram:
    assert len(res.series) == 1
    hs = res.series[0].histograms
    assert hs is not None and hs[0] is not None
    return hs[0]


# ------------------------------------------------------------------ rate / increase / delta


def test_rate_compensates_resets_and_delta_does_not() -> None:
    pts = [H("{{count:4 sum:4 buckets:[4]}}"), H("{{count:6 sum:6 buckets:[6]}}"),
           H("{{count:1 sum:1 buckets:[1]}}"), H("{{count:3 sum:3 buckets:[3]}}")]
    c = ctx()
    # 6 - 4 before the reset, then 3 after it from zero.
    check("{{count:5 sum:5 buckets:[5] counter_reset_hint:gauge}}", histogram_rate(c, pts, True, "m"))
    assert c.annotations.warnings == [] and c.annotations.infos == []
    # delta() ignores resets (3 - 4) and warns that the input is not a gauge.
    c = ctx()
    d = histogram_rate(c, pts, False, "m")
    assert d is not None and d.count == -1
    assert c.annotations.warnings == [NOT_GAUGE]


def test_reset_right_after_the_first_point_ignores_it_and_its_layout() -> None:
    pts = [H("{{schema:2 count:9 sum:9 buckets:[9]}}"), H("{{schema:0 count:1 sum:1 buckets:[1]}}"),
           H("{{schema:0 count:2 sum:2 buckets:[2]}}")]
    d = histogram_rate(ctx(), pts, True, "m")
    assert d is not None and d.schema == 0
    check("{{count:2 sum:2 buckets:[2]}}", d)


def test_lowest_schema_wins_and_a_finer_schema_is_a_reset() -> None:
    pts = [H("{{schema:1 count:1 sum:1 buckets:[1]}}"), H("{{schema:0 count:2 sum:2 buckets:[2]}}"),
           H("{{schema:1 count:3 sum:3 buckets:[3]}}")]
    c = ctx()
    d = histogram_rate(c, pts, True, "m")
    # Going back to a finer schema counts as a reset: (3 - 1) + 2.
    assert d is not None and d.schema == 0 and d.count == 4
    assert c.annotations.warnings == []


def test_counter_and_gauge_warnings() -> None:
    pts = [H("{{count:1 sum:1 buckets:[1] counter_reset_hint:gauge}}"),
           H("{{count:2 sum:2 buckets:[2] counter_reset_hint:gauge}}"),
           H("{{count:3 sum:3 buckets:[3] counter_reset_hint:gauge}}")]
    c = ctx()
    assert histogram_rate(c, pts, True, "m") is not None
    assert c.annotations.warnings == [NOT_COUNTER]
    c = ctx()
    assert histogram_rate(c, pts, False, "m") is not None
    assert c.annotations.warnings == []


def test_exponential_and_custom_buckets() -> None:
    nhcb = H("{{schema:-53 count:2 custom_values:[1] buckets:[2]}}")
    exp = H("{{count:1 buckets:[1]}}")
    # A switch to custom buckets right after the first point is a reset: the first is ignored.
    c = ctx()
    d = histogram_rate(c, [exp, nhcb], True, "m")
    assert d is not None and d.count == 2 and d.uses_custom_buckets
    assert c.annotations.warnings == []
    c = ctx()
    assert histogram_rate(c, [exp, nhcb], False, "m") is None
    assert c.annotations.warnings == [MIXED]
    c = ctx()
    assert histogram_rate(c, [nhcb, exp, nhcb], True, "m") is None
    assert c.annotations.warnings == [MIXED]


def test_delta_reconciles_custom_bounds() -> None:
    pts = [H("{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}"),
           H("{{schema:-53 count:2 sum:2 custom_values:[5 10] buckets:[2]}}")]
    c = ctx()
    d = histogram_rate(c, pts, False, "m")
    assert d is not None and d.custom_values is not None and d.custom_values.tolist() == [5.0]
    assert c.annotations.infos == ["PromQL info: mismatched custom buckets were reconciled during subtraction"]


def test_increase_with_start_timestamps() -> None:
    pts = [H("{{count:5 sum:5 buckets:[5]}}"), H("{{count:6 sum:6 buckets:[6]}}"), H("{{count:7 sum:7 buckets:[7]}}")]
    ts = [10_000, 20_000, 30_000]
    q = "increase(m[25s])"  # window (5 s, 30 s]: extrapolated 5 s to its start, x (20 + 5) / 20
    # The third sample started after the second one: a reset the counts do not show: 2 + 6.
    res = Engine().instant(store(pts, ts, [1_000, 1_000, 25_000]), q, 30_000)
    assert one_hist(res).count == pytest.approx(8 * 1.25)
    assert res.annotations.warnings == []
    # The same start all along: no reset.
    res = Engine().instant(store(pts, ts, [1_000, 1_000, 1_000]), q, 30_000)
    assert one_hist(res).count == pytest.approx(2 * 1.25)
    # A start before the previous sample's time (and unlike its start) overlaps it: a warning.
    res = Engine().instant(store(pts, ts, [1_000, 5_000, 5_000]), q, 30_000)
    assert one_hist(res).count == pytest.approx(2 * 1.25)
    assert res.annotations.warnings == [
        'PromQL warning: sample has start time that overlaps with previous sample timestamp for metric "m" (1:10)']


def test_start_timestamp_edge_cases() -> None:
    # The previous sample's start equals its own time: not a valid start, so no delta reset.
    assert not is_st_reset(10, 10, 10, 20)
    # Same start as the previous sample: no overlap.
    assert not st_overlap(5, 10, 5)


# ------------------------------------------------------------------------------ irate / idelta


def test_irate_and_idelta() -> None:
    a, b = H("{{count:4 sum:4 buckets:[4]}}"), H("{{count:6 sum:6 buckets:[6]}}")
    res = Engine().instant(store([a, b], [0, 10_000]), "irate(m[1m])", 10_000)
    h = one_hist(res)
    assert h.count == pytest.approx(0.2) and h.counter_reset_hint == CounterResetHint.GAUGE
    assert res.annotations.warnings == []
    # A reset between the two points: irate uses the last histogram itself.
    assert one_hist(Engine().instant(store([b, a], [0, 10_000]), "irate(m[1m])", 10_000)).count == pytest.approx(0.4)
    res = Engine().instant(store([a, b], [0, 10_000]), "idelta(m[1m])", 10_000)
    assert one_hist(res).count == 2
    assert res.annotations.warnings == [NOT_GAUGE + " (1:8)"]


# --------------------------------------------------------------------- sum / avg_over_time


def test_sum_and_avg_over_time_are_compensated() -> None:
    pts = [H("{{count:1 sum:1e100 buckets:[1]}}"), H("{{count:1 sum:1 buckets:[1]}}"),
           H("{{count:1 sum:-1e100 buckets:[1]}}")]
    s = store(pts, [0, 10_000, 20_000])
    h = one_hist(Engine().instant(s, "sum_over_time(m[1m])", 20_000))
    assert h.sum == 1 and h.count == 3
    a = one_hist(Engine().instant(s, "avg_over_time(m[1m])", 20_000))
    assert a.count == 1 and a.sum == pytest.approx(1 / 3)


def test_over_time_warnings() -> None:
    pts = [H("{{count:1 sum:1 buckets:[1]}}").with_hint(CounterResetHint.RESET),
           H("{{count:1 sum:1 buckets:[1]}}").with_hint(CounterResetHint.NOT_RESET)]
    res = Engine().instant(store(pts, [0, 10_000]), "sum_over_time(m[1m])", 10_000)
    assert one_hist(res).count == 2
    assert res.annotations.warnings == ["PromQL warning: conflicting counter resets during histogram aggregation (1:15)"]
    mixed = [H("{{count:1 sum:1 buckets:[1]}}"), H("{{schema:-53 count:1 buckets:[1]}}")]
    for fn in ("sum_over_time", "avg_over_time"):
        res = Engine().instant(store(mixed, [0, 10_000]), f"{fn}(m[1m])", 10_000)
        assert res.series == []
        assert res.annotations.warnings == [f"{MIXED} (1:{len(fn) + 2})"]


def test_avg_over_time_switches_to_an_incremental_mean_on_overflow() -> None:
    big = 1.5e308
    pts = [FloatHistogram.build(count=big, sum=big, positive={0: big}) for _ in range(3)]
    a = one_hist(Engine().instant(store(pts, [0, 10_000, 20_000]), "avg_over_time(m[1m])", 20_000))
    assert a.count == pytest.approx(big) and math.isfinite(a.sum)
    assert a.positive[0] == pytest.approx(big)


# --------------------------------------------------------------------------- binary operators

M = "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}"  # native_histograms.test "metric" at 5m


def test_subtraction_makes_gauges() -> None:
    m = H(M).with_hint(CounterResetHint.NOT_RESET)
    half = elem_binop("*", 0.5, NAN, None, m)
    assert half.keep and half.h is not None
    check("{{count:2 sum:2 counter_reset_hint:gauge buckets:[0.5 1 0.5]}}", elem_binop("-", NAN, NAN, m, half.h).h)
    twice = elem_binop("*", NAN, 2, m, None).h
    assert twice is not None
    check("{{count:-4 sum:-4 counter_reset_hint:gauge buckets:[-1 -2 -1]}}", elem_binop("-", NAN, NAN, m, twice).h)
    # Unary minus is multiplication by -1.
    check("{{count:-4 sum:-4 counter_reset_hint:gauge buckets:[-1 -2 -1]}}", elem_binop("*", NAN, -1, m, None).h)


def test_addition_and_subtraction_annotations() -> None:
    a = H("{{count:1 buckets:[1] counter_reset_hint:reset}}")
    b = H("{{count:1 buckets:[1] counter_reset_hint:not_reset}}")
    # Conflicting counter resets: Prometheus returns the warning as the cell's error, so the
    # sample is dropped.
    r = elem_binop("+", NAN, NAN, a, b)
    assert not r.keep and r.err == ("warn", "PromQL warning: conflicting counter resets during histogram addition")
    r = elem_binop("-", NAN, NAN, a, b)
    assert not r.keep and r.err == ("warn", "PromQL warning: conflicting counter resets during histogram subtraction")
    c1 = H("{{schema:-53 sum:1 count:1 custom_values:[10] buckets:[1]}}")
    c2 = H("{{schema:-53 sum:1 count:1 custom_values:[2 10] buckets:[1]}}")
    r = elem_binop("+", NAN, NAN, c1, c2)
    assert r.keep and r.err is None
    assert r.info == "PromQL info: mismatched custom buckets were reconciled during addition"
    check("{{schema:-53 count:2 sum:2 custom_values:[10] buckets:[2]}}", r.h)
    r = elem_binop("-", NAN, NAN, c1, c2)
    assert r.info == "PromQL info: mismatched custom buckets were reconciled during subtraction"
    check("{{schema:-53 custom_values:[10] counter_reset_hint:gauge}}", r.h)
    # Exponential with custom buckets: the sample is dropped with a warning.
    r = elem_binop("+", NAN, NAN, c1, H(M))
    assert not r.keep and r.err == ("warn", "PromQL warning: incompatible bucket layout encountered for binary operator +")


def test_histogram_and_scalar_operands() -> None:
    m = H(M)
    check("{{count:2 sum:2 buckets:[0.5 1 0.5]}}", elem_binop("/", NAN, 2, m, None).h)
    # Multiplying by zero leaves only empty buckets, which are compacted away.
    z = elem_binop("*", NAN, 0, m, None).h
    assert z is not None and z.positive.size == 0
    t = elem_binop("</", NAN, 1, m, None).h
    assert t is not None and t.count == 1
    for op in ("+", "-", "/", "^", "%", "==", "!=", ">", "<", ">=", "<=", "atan2", "</", ">/"):
        r = elem_binop(op, 1.0, NAN, None, m)
        assert not r.keep and r.err == (
            "info", f'PromQL info: incompatible sample types encountered for binary operator "{op}": '
                    f"float {op} histogram"), op
    for op in ("+", "-", "^", "%", "==", "!=", ">", "<", ">=", "<=", "atan2"):
        r = elem_binop(op, NAN, 1.0, m, None)
        assert not r.keep and r.err == (
            "info", f'PromQL info: incompatible sample types encountered for binary operator "{op}": '
                    f"histogram {op} float"), op


def test_histogram_comparisons() -> None:
    a = H("{{schema:-53 sum:1 count:1 custom_values:[5 10] buckets:[1]}}")
    b = H("{{schema:-53 sum:1 count:1 custom_values:[2] buckets:[1]}}")
    assert elem_binop("==", NAN, NAN, a, a).keep
    r = elem_binop("!=", NAN, NAN, b, a)
    assert r.keep and r.h is b
    assert not elem_binop("==", NAN, NAN, b, a).keep
    for op in ("*", "/", "^", "%", ">", "<", ">=", "<=", "atan2", "</", ">/"):
        r = elem_binop(op, NAN, NAN, a, a)
        assert not r.keep and r.err == (
            "info", f'PromQL info: incompatible sample types encountered for binary operator "{op}": '
                    f"histogram {op} histogram"), op


def test_trim_at_nan_with_a_zero_width_zero_bucket() -> None:
    # Go divides NaN by the zero bucket's width 0 and gets NaN counts; the engine used to raise
    # ZeroDivisionError here (its own copy of the trim arithmetic divided without fdiv).
    h = FloatHistogram.build(count=3, sum=1, zero_threshold=0, zero_count=1, positive={0: 2})
    s = MemorySeriesSelector()
    s.add((("__name__", "m"),), [0], [NAN], [h])
    for q in ("m </ NaN", "m >/ NaN"):
        got = one_hist(Engine().instant(s, q, 0))
        assert math.isnan(got.count) and math.isnan(got.zero_count) and got.positive.size == 0, q
