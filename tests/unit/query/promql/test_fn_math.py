"""Instant-vector math, clamping, rounding, scalar conversions and calendar functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clearsight.query.promql.fn_common import format_openmetrics_float, go_format_g
from clearsight.query.promql.functions import FUNCTIONS
from clearsight.query.promql.values import ScalarSteps, VectorSteps

from .test_fn_support import L, M, S, as_dict, assert_values, call, close, ctx, instant, load, scalar, seq

NAN = float("nan")
INF = float("inf")

SPECIAL = [2.5, 2, -2.5, -2, 0, -0.0, INF, -INF, NAN]


def special_vector() -> VectorSteps:
    return instant(load(5 * M, {L(name="data", t=str(i)): [x] for i, x in enumerate(SPECIAL)}), [0])


@pytest.mark.parametrize(
    ("fn", "want"),
    [
        ("abs", [2.5, 2, 2.5, 2, 0, 0, INF, INF, NAN]),
        ("ceil", [3, 2, -2, -2, 0, 0, INF, -INF, NAN]),
        ("floor", [2, 2, -3, -2, 0, 0, INF, -INF, NAN]),
        ("round", [3, 2, -2, -2, 0, 0, INF, -INF, NAN]),
        ("sgn", [1, 1, -1, -1, 0, 0, 1, -1, NAN]),
    ],
)
def test_rounding_and_sign(fn: str, want: list[float]) -> None:
    got = call(fn, ctx([0]), special_vector())
    assert isinstance(got, VectorSteps)
    assert got.drop_name is not None and got.drop_name.all()
    for i, w in enumerate(want):
        assert close(float(got.values[i, 0]), w), (fn, i)


def test_round_to_nearest() -> None:
    v = instant(load(M, {L(): [7.3], L(a="b"): [-7.3]}), [0])
    assert as_dict(call("round", ctx([0]), v, scalar(5))) == {(): 5, L(a="b"): -5}
    assert as_dict(call("round", ctx([0]), v, scalar(0.5))) == {(): 7.5, L(a="b"): -7.5}


def test_exp_ln_log_sqrt() -> None:
    v = instant(load(5 * M, {L(l="x"): [10], L(l="y"): [20]}), [M])
    c = ctx([M])
    # Expected values from Prometheus' functions.test (Go's math library may differ by an ulp).
    assert_values(call("exp", c, v), {L(l="x"): 22026.465794806718, L(l="y"): 485165195.4097903}, rel=1e-15)
    assert_values(call("ln", c, v), {L(l="x"): 2.302585092994046, L(l="y"): 2.995732273553991}, rel=1e-15)
    assert_values(call("log2", c, v), {L(l="x"): 3.3219280948873626, L(l="y"): 4.321928094887363}, rel=1e-15)
    assert_values(call("log10", c, v), {L(l="x"): 1, L(l="y"): 1.301029995663981}, rel=1e-15)
    assert_values(call("sqrt", c, v), {L(l="x"): 3.1622776601683795, L(l="y"): 4.47213595499958}, rel=1e-15)
    eight = instant(load(M, {L(): [8]}), [0])
    assert as_dict(call("log2", c, eight)) == {(): 3.0}
    neg = instant(load(5 * M, {L(l="x"): [-10], L(l="y"): [0]}), [M])
    got = as_dict(call("ln", c, neg))
    assert math.isnan(got[L(l="x")]) and got[L(l="y")] == -INF


def test_trig() -> None:
    v = instant(load(M, {L(): [0.5]}), [0])
    for name, f in [("sin", math.sin), ("cos", math.cos), ("tan", math.tan), ("asin", math.asin), ("acos", math.acos),
                    ("atan", math.atan), ("sinh", math.sinh), ("cosh", math.cosh), ("tanh", math.tanh),
                    ("asinh", math.asinh), ("atanh", math.atanh)]:
        assert close(as_dict(call(name, ctx([0]), v))[()], f(0.5)), name
    two = instant(load(M, {L(): [2]}), [0])
    assert close(as_dict(call("acosh", ctx([0]), two))[()], math.acosh(2))
    assert close(as_dict(call("deg", ctx([0]), two))[()], 2 * 180 / math.pi)
    assert close(as_dict(call("rad", ctx([0]), two))[()], 2 * math.pi / 180)
    pi = call("pi", ctx([0, M]))
    assert isinstance(pi, ScalarSteps) and pi.values.tolist() == [math.pi, math.pi]


def test_clamp_family() -> None:
    v = instant(load(5 * M, {L(name="c", s="a"): [-50], L(name="c", s="b"): [0], L(name="c", s="c"): [100]}), [0])
    c = ctx([0])
    assert as_dict(call("clamp_max", c, v, scalar(75))) == {L(s="a"): -50, L(s="b"): 0, L(s="c"): 75}
    assert as_dict(call("clamp_min", c, v, scalar(-25))) == {L(s="a"): -25, L(s="b"): 0, L(s="c"): 100}
    assert as_dict(call("clamp", c, v, scalar(-25), scalar(75))) == {L(s="a"): -25, L(s="b"): 0, L(s="c"): 75}
    assert all(math.isnan(x) for x in as_dict(call("clamp", c, v, scalar(0), scalar(NAN))).values())
    assert all(math.isnan(x) for x in as_dict(call("clamp", c, v, scalar(NAN), scalar(0))).values())
    assert as_dict(call("clamp", c, v, scalar(5), scalar(-5))) == {}


def test_clamp_per_step_bounds() -> None:
    s = load(M, {L(): [1, 2, 3]})
    steps = [0, M, 2 * M]
    got = call("clamp", ctx(steps), instant(s, steps), ScalarSteps(np.array([0.0, 5.0, 0.0])), ScalarSteps(np.array([1.5, 1.0, 2.5])))
    assert isinstance(got, VectorSteps)
    assert got.present.tolist() == [[True, False, True]]
    assert got.values[0, 0] == 1 and got.values[0, 2] == 2.5


def test_scalar_vector_time_timestamp() -> None:
    s = load(M, {L(l="x"): [1], L(l="y"): [2]})
    c = ctx([0])
    assert np.isnan(call("scalar", c, instant(s, [0])).values).all()  # type: ignore[union-attr]
    one = instant(load(M, {L(l="x"): [1]}), [0])
    assert call("scalar", c, one).values.tolist() == [1.0]  # type: ignore[union-attr]
    assert np.isnan(call("scalar", c, VectorSteps.empty(1)).values).all()  # type: ignore[union-attr]
    vec = call("vector", ctx([0, 5 * S]), ScalarSteps(np.array([0.0, 5.0])))
    assert isinstance(vec, VectorSteps) and vec.labels == [()] and vec.values.tolist() == [[0.0, 5.0]]
    assert call("time", ctx([1, 3000 * S])).values.tolist() == [0.001, 3000.0]  # type: ignore[union-attr]
    m = load(M, {L(name="metric"): seq(0, 1, 1000)})
    steps = list(range(0, 62 * S, S))
    ts = call("timestamp", ctx(steps), instant(m, steps))
    assert isinstance(ts, VectorSteps) and ts.drop_name is not None and ts.drop_name.all()
    assert ts.values[0, :60].tolist() == [0.0] * 60 and ts.values[0, 60:].tolist() == [60.0, 60.0]
    computed = VectorSteps([()], np.array([[1.0, 2.0]]), np.array([[True, True]]))
    assert call("timestamp", ctx([10 * S, 20 * S]), computed).values.tolist() == [[10.0, 20.0]]  # type: ignore[union-attr]


def test_min_of_max_of_and_query_context() -> None:
    c = ctx([0])
    assert call("min_of", c, scalar(3), scalar(5)).values.tolist() == [3.0]  # type: ignore[union-attr]
    assert call("max_of", c, scalar(-2), scalar(-5)).values.tolist() == [-2.0]  # type: ignore[union-attr]
    assert np.isnan(call("max_of", c, scalar(NAN), scalar(3)).values).all()  # type: ignore[union-attr]
    r = ctx([100 * S, 110 * S, 120 * S, 130 * S])
    assert call("step", r).values.tolist() == [10.0] * 4  # type: ignore[union-attr]
    assert call("range", r).values.tolist() == [30.0] * 4  # type: ignore[union-attr]
    assert call("start", r).values.tolist() == [100.0] * 4  # type: ignore[union-attr]
    assert call("end", r).values.tolist() == [130.0] * 4  # type: ignore[union-attr]
    assert call("step", ctx([0])).values.tolist() == [0.0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fn", "secs", "want"),
    [
        ("year", 1136239445, 2006),
        ("month", 1136239445, 1),
        ("day_of_month", 1136239445, 2),
        ("day_of_year", 1136239445, 2),
        ("day_of_week", 1136239445, 1),
        ("hour", 1136239445, 22),
        ("minute", 1136239445, 4),
        ("year", 1230767999, 2008),
        ("year", 1230768000, 2009),
        ("month", 1456790399, 2),
        ("day_of_month", 1456790399, 29),
        ("month", 1456790400, 3),
        ("day_of_year", 1483191420, 366),
        ("day_of_year", 1672493820, 365),
        ("days_in_month", 1454284800, 29),
        ("days_in_month", 1485907200, 28),
        ("hour", -1, 23),  # 1969-12-31T23:59:59
        ("year", -1.5, 1969),  # truncated toward zero: -1 s
        ("day_of_week", 1136239445.9, 1),
    ],
)
def test_calendar_with_argument(fn: str, secs: float, want: float) -> None:
    v = call("vector", ctx([0]), scalar(secs))
    got = call(fn, ctx([0]), v)
    assert as_dict(got) == {(): want}
    assert isinstance(got, VectorSteps) and got.drop_name is not None


def test_calendar_without_argument_uses_step_time() -> None:
    c = ctx([0, 3600 * S + 59 * S, 59 * 86400 * S])
    assert call("year", c).values.tolist() == [[1970.0, 1970.0, 1970.0]]  # type: ignore[union-attr]
    assert call("hour", c).values.tolist() == [[0.0, 1.0, 0.0]]  # type: ignore[union-attr]
    assert call("minute", c).values.tolist() == [[0.0, 0.0, 0.0]]  # type: ignore[union-attr]
    assert call("month", c).values.tolist() == [[1.0, 1.0, 3.0]]  # type: ignore[union-attr]
    assert call("day_of_week", c).values.tolist() == [[4.0, 4.0, 0.0]]  # type: ignore[union-attr]
    assert call("days_in_month", c).values.tolist() == [[31.0, 31.0, 31.0]]  # type: ignore[union-attr]


def test_calendar_non_finite_is_nan() -> None:
    v = instant(load(M, {L(a="1"): [INF], L(a="2"): [NAN]}), [0])
    assert all(math.isnan(x) for x in as_dict(call("year", ctx([0]), v)).values())


@pytest.mark.parametrize(
    ("x", "prec", "want"),
    [(1.0, -1, "1"), (1000.0, -1, "1000"), (1e6, -1, "1e+06"), (123456.0, -1, "123456"), (0.0001, -1, "0.0001"),
     (1e-05, -1, "1e-05"), (-0.1, -1, "-0.1"), (1.01, -1, "1.01"), (NAN, -1, "NaN"), (-INF, -1, "-Inf"),
     (10.0, 2, "10"), (123.0, 2, "1.2e+02"), (1.5, 2, "1.5"), (0.0, 2, "0"), (2.5e-7, -1, "2.5e-07")],
)
def test_go_format_g(x: float, prec: int, want: str) -> None:
    assert go_format_g(x, prec) == want


def test_openmetrics_float() -> None:
    assert [format_openmetrics_float(x) for x in (0, 1, -1, 0.5, 2, 1e21, NAN, INF)] == [
        "0.0", "1.0", "-1.0", "0.5", "2.0", "1e+21", "NaN", "+Inf"
    ]


def test_every_documented_function_is_registered() -> None:
    documented = {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
        "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "days_in_month",
        "day_of_month", "day_of_week", "day_of_year", "deg", "delta", "deriv", "double_exponential_smoothing",
        "exp", "first_over_time", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
        "histogram_quantile", "histogram_quantiles", "histogram_stddev", "histogram_stdvar", "histogram_sum",
        "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10",
        "log2", "mad_over_time", "max_of", "max_over_time", "min_of", "min_over_time", "minute", "month", "pi",
        "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
        "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt",
        "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp",
        "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time", "ts_of_min_over_time", "vector",
        "year", "step", "range", "start", "end", "start_timestamp",
    }
    assert documented <= set(FUNCTIONS)
    v = instant(load(M, {L(name="x"): [1]}), [0])
    assert call("start_timestamp", ctx([0]), v).num_series == 0  # type: ignore[union-attr]
