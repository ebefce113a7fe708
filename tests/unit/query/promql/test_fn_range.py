"""Range-vector functions: hand-computed cases (mostly Prometheus' own functions.test cases),
edge cases, and a property test against a naive per-step reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.query.promql import ast
from clearsight.query.promql.values import QueryError, VectorSteps

from .test_fn_support import (
    L,
    M,
    S,
    as_dict,
    assert_values,
    call,
    close,
    ctx,
    load,
    matrix,
    scalar,
    selector,
    seq,
)

NAN = float("nan")
INF = float("inf")


def over_time(fn: str, vals: list[float | None], rng: int, at: int, interval: int = 10 * S) -> dict:
    s = load(interval, {L(): vals})
    return as_dict(call(fn, ctx([at]), matrix(s, rng, [at])))


# --------------------------------------------------------------------------- rate & co


def test_increase_extrapolation_and_zero_cutoff() -> None:
    s = load(
        5 * M,
        {
            L(path="/foo"): seq(0, 10, 10),
            L(path="/bar"): seq(0, 18, 5) + seq(0, 18, 5),
            L(path="/dings"): seq(10, 10, 10),
            L(path="/bumms"): seq(1, 10, 10),
        },
    )
    c = ctx([50 * M])
    assert_values(
        call("increase", c, matrix(s, 50 * M, [50 * M])),
        {L(path="/foo"): 100, L(path="/bar"): 160, L(path="/dings"): 100, L(path="/bumms"): 100},
    )
    # Extrapolation to the left stops where a counter would reach zero.
    assert_values(
        call("increase", c, matrix(s, 100 * M, [50 * M])),
        {L(path="/foo"): 100, L(path="/bar"): 162, L(path="/dings"): 105, L(path="/bumms"): 101},
    )


def test_increase_counter_reset_and_rate_zero_cutoff() -> None:
    s = load(5 * M, {L(path="/foo"): [0, 1, 2, 3, 2, 3, 4]})
    assert_values(call("increase", ctx([30 * M]), matrix(s, 30 * M, [30 * M])), {L(path="/foo"): 7})
    s = load(4 * M, {L(start=f"{i}m"): seq(60 * i, 240, 10) for i in range(6)})
    want10 = {"0m": 0.5, "1m": 0.55, "2m": 0.6, "3m": 0.6, "4m": 0.6, "5m": 0.6}
    # One range query over two steps computes both instant cases at once.
    got = call("rate", ctx([10 * M, 50 * M]), matrix(s, 20 * M, [10 * M, 50 * M]))
    assert_values(got, {L(start=k): v for k, v in want10.items()}, step=0)
    assert_values(got, {L(start=k): 0.6 for k in want10}, step=1)


def test_rate_reset_at_end_and_offset() -> None:
    s = load(5 * M, {L(name="c_total"): [*seq(0, 10, 9), 0, 10]})
    c = ctx([50 * M])
    assert as_dict(call("rate", c, matrix(s, 5 * M, [50 * M]))) == {}
    assert_values(call("rate", c, matrix(s, 6 * M, [50 * M])), {L(): 0})
    s = load(5 * M, {L(name="x_total", x="a"): seq(0, 10, 10), L(name="x_total", x="b"): seq(0, 20, 10)})
    got = call("rate", c, matrix(s, 10 * M, [50 * M], offset=5 * M))
    assert_values(got, {L(x="a"): 1 / 30, L(x="b"): 2 / 30})
    assert c.annotations.infos == []


def test_rate_non_counter_info_and_name_dropped() -> None:
    s = load(5 * M, {L(name="requests"): seq(0, 10, 10)})
    c = ctx([50 * M])
    out = call("rate", c, matrix(s, 50 * M, [50 * M]))
    assert isinstance(out, VectorSteps)
    assert out.drop_name is not None and out.drop_name.all()
    assert c.annotations.infos == [
        'PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "requests"'
    ]
    c = ctx([50 * M])
    call("delta", c, matrix(s, 50 * M, [50 * M]))
    assert c.annotations.infos == []


def test_delta_and_single_sample() -> None:
    s = load(5 * M, {L(p="a"): [0, 50, 100, 150, 200], L(p="b"): [200, 150, 100, 50, 0]})
    assert_values(call("delta", ctx([20 * M]), matrix(s, 20 * M, [20 * M])), {L(p="a"): 200, L(p="b"): -200})
    # A window with one sample has no rate.
    assert as_dict(call("rate", ctx([20 * M]), matrix(s, 5 * M, [20 * M]))) == {}


def test_irate_idelta_with_nan_over_range() -> None:
    s = load(5 * M, {L(): [1, NAN, NAN, 5, 11]})
    steps = [0, 5 * M, 10 * M, 15 * M, 20 * M]
    r = call("irate", ctx(steps), matrix(s, 15 * M + 1000, steps))
    assert isinstance(r, VectorSteps)
    assert r.present.tolist() == [[False, True, True, True, True]]
    assert np.isnan(r.values[0, 1:4]).all() and close(r.values[0, 4], 0.02)
    d = call("idelta", ctx(steps), matrix(s, 15 * M + 1000, steps))
    assert isinstance(d, VectorSteps)
    assert d.values[0, 4] == 6


def test_irate_counter_reset() -> None:
    s = load(5 * M, {L(p="foo"): seq(0, 10, 10), L(p="bar"): seq(0, 10, 5) + seq(0, 10, 5)})
    assert_values(call("irate", ctx([30 * M]), matrix(s, 50 * M, [30 * M])), {L(p="foo"): 1 / 30, L(p="bar"): 0})


@pytest.mark.parametrize(
    ("mod", "want"),
    [
        ("", [None, 1.833333333, 2.833333333, 4, 4, 8, 8, 8, 4]),
        ("anchored", [0, 1, 2, 3, 4, 7, 7, 7, 7]),
        ("smoothed", [0.333333333, 1.333333333, 2.333333333, 3.333333333, 5, 7, 7, 7, 6]),
    ],
)
def test_increase_anchored_smoothed(mod: str, want: list[float | None]) -> None:
    s = load(15 * S, {L(): seq(1, 1, 4) + seq(9, 1, 4)})
    steps = [t * S for t in (5, 20, 35, 50, 65, 80, 95, 110, 125)]
    r = call("increase", ctx(steps), matrix(s, M, steps, anchored=mod == "anchored", smoothed=mod == "smoothed"))
    for j, w in enumerate(want):
        d = as_dict(r, j)
        if w is None:
            assert d == {}
        else:
            assert close(d[()], w, 1e-8)


def test_extended_rate_edges() -> None:
    s = load(M, {L(): [1, 2, None, 4, 5]})
    assert_values(call("increase", ctx([2 * M]), matrix(s, M, [2 * M], smoothed=True)), {L(): 1})
    assert as_dict(call("increase", ctx([2 * M]), matrix(s, M, [2 * M], anchored=True))) == {}
    s = load(M, {L(id="1"): [11, -1, 100, 0], L(id="2"): [0, 0, 100, 0, 0, 11, -1]})
    steps = [330 * S, 345 * S]
    r = call("delta", ctx(steps), matrix(s, 5 * M, steps, smoothed=True))
    assert_values(r, {L(id="1"): -5, L(id="2"): 5}, step=0)
    assert_values(r, {L(id="1"): -2, L(id="2"): 2}, step=1)


def test_modifier_restrictions() -> None:
    s = load(M, {L(): [1, 2]})
    with pytest.raises(QueryError, match="anchored modifier can only be used with"):
        call("sum_over_time", ctx([M]), matrix(s, M, [M], anchored=True))
    with pytest.raises(QueryError, match="smoothed modifier can only be used with"):
        call("changes", ctx([M]), matrix(s, M, [M], smoothed=True))


# --------------------------------------------------------------------------- changes / resets


def test_changes_resets() -> None:
    s = load(
        5 * M,
        {
            L(p="foo"): [1, 2, 3, 0, 1, 0, 0, 1, 2, 0],
            L(p="bar"): [1, 2, 3, 4, 5, 1, 2, 3, 4, 5],
            L(p="biz"): [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
        },
    )
    ranges = [5, 10, 20, 30, 32, 50]
    resets = {10: (0, 0, 0), 20: (1, 0, 0), 30: (1, 0, 0), 32: (2, 1, 0), 50: (3, 1, 0)}
    for r in ranges:
        got = as_dict(call("resets", ctx([50 * M]), matrix(s, r * M, [50 * M])))
        want = resets.get(r)
        assert got == ({} if want is None else dict(zip([L(p="foo"), L(p="bar"), L(p="biz")], want, strict=True)))
    changes = {6: (0, 0, 0), 20: (2, 2, 0), 30: (3, 4, 0), 50: (7, 8, 1)}
    for r, want in changes.items():
        got = as_dict(call("changes", ctx([50 * M]), matrix(s, r * M, [50 * M])))
        assert got == dict(zip([L(p="foo"), L(p="bar"), L(p="biz")], want, strict=True))
    s = load(5 * M, {L(a="b"): [NAN, NAN, NAN], L(a="c"): [0, NAN, 0]})
    assert as_dict(call("changes", ctx([15 * M]), matrix(s, 20 * M, [15 * M]))) == {L(a="b"): 0, L(a="c"): 2}


def test_changes_resets_anchored() -> None:
    s = load(M, {L(id="1"): seq(1, 1, 10), L(id="2"): [1, *seq(1, 1, 10)], L(id="3"): seq(99, -1, 10), L(id="4"): [99, *seq(99, -1, 10)]})
    got = as_dict(call("changes", ctx([300 * S]), matrix(s, 5 * M, [300 * S], anchored=True)))
    assert got == {L(id="1"): 5, L(id="2"): 4, L(id="3"): 5, L(id="4"): 4}
    got = as_dict(call("resets", ctx([330 * S]), matrix(s, 5 * M, [330 * S], anchored=True)))
    assert got == {L(id="1"): 0, L(id="2"): 0, L(id="3"): 5, L(id="4"): 4}
    s = load(M, {L(id="1"): [2, None, 1, None, None, None, None, None, 0], L(id="2"): seq(99, -1, 10)})
    assert as_dict(call("changes", ctx([8 * M]), matrix(s, M, [8 * M], anchored=True))) == {L(id="1"): 0, L(id="2"): 1}
    assert as_dict(call("changes", ctx([8 * M]), matrix(s, M + 1, [8 * M], anchored=True))) == {L(id="1"): 1, L(id="2"): 2}


# --------------------------------------------------------------------------- *_over_time


@pytest.mark.parametrize(
    ("vals", "avg", "total"),
    [
        ([1, 2, 3, 4, INF], INF, INF),
        ([1, 2, 3, INF, -INF], NAN, NAN),
        ([INF, 0, INF], INF, INF),
        ([INF, INF, INF, -INF], NAN, NAN),
        ([9.988465674311579e307] * 2, 9.988465674311579e307, INF),
        ([-9.988465674311579e307] * 3, -9.988465674311579e307, -INF),
        ([-9.988465674311579e307, 9.988465674311579e307], 0, 0),
    ],
)
def test_avg_sum_over_time_special_values(vals: list[float | None], avg: float, total: float) -> None:
    assert close(over_time("avg_over_time", vals, M, 55 * S)[()], avg)
    assert close(over_time("sum_over_time", vals, M, 55 * S)[()], total)


def test_sum_avg_over_time_compensated() -> None:
    assert over_time("sum_over_time", [1, 1e100, 1, -1e100], 2 * M, M) == {(): 2}
    assert over_time("avg_over_time", [1, 1e100, 1, -1e100], 2 * M, M) == {(): 0.5}
    # Prometheus' Kahan sum gives 0 here too (the exact answer is -44.848...).
    vals: list[float | None] = [-2.258e220, -1.78264e219, 0.76342771, 1.9592258, 2.3757689e217, -2.3757689e217, 2.258e220, 7.69805412, 1.78264e219, -458.90154]
    assert over_time("avg_over_time", vals, M, 55 * S, 5 * S) == {(): 0}
    vals = [-1.78264e219, 0.76342771, 1.9592258, 2.3757689e217, -2.3757689e217, 2.258e220, 7.69805412, 1.78264e219, -458.90154]
    assert close(over_time("avg_over_time", vals, M, 55 * S, 5 * S)[()], 2.5088888888888888e219)
    assert close(over_time("avg_over_time", [1e10] + [1e-6] * 5, M, 55 * S, 5 * S)[()], 1.6666666666666675e09)
    for r in (100, 110, 120, 130):
        assert over_time("avg_over_time", [52] * 101, r * S, 10 * M) == {(): 52}
    s = load(1, {L(): [1] * 4001})
    for r in (1000, 1001, 2003, 3003):
        assert as_dict(call("sum_over_time", ctx([4 * S]), matrix(s, r, [4 * S]))) == {(): r}


def test_avg_over_time_windows_and_nan() -> None:
    assert over_time("avg_over_time", [1, 2, 3, 4, 5], 10 * S, 55 * S) == {}
    assert over_time("avg_over_time", [1, 2, 3, 4, 5], 20 * S, 55 * S) == {(): 5}
    assert over_time("avg_over_time", [1, 2, 3, 4, 5], M, 55 * S) == {(): 3}
    assert over_time("avg_over_time", [1, 2, 3, NAN, NAN], M, 20 * S) == {(): 2}
    assert math.isnan(over_time("avg_over_time", [1, 2, 3, NAN, NAN], M, 30 * S)[()])


def test_min_max_last_first_count_over_time() -> None:
    s = load(
        10 * S,
        {
            L(t="numbers"): [2, 0, 3],
            L(t="some_nan"): [2, 0, NAN],
            L(t="some_nan2"): [2, NAN, 1],
            L(t="some_nan3"): [NAN, 0, 1],
            L(t="only_nan"): [NAN, NAN, NAN],
            L(t="sparse"): [None, 5, 2, None, 4, None],
        },
    )
    m = matrix(s, 2 * M, [M])
    want = {
        "min_over_time": [0, 0, 1, 0, NAN, 2],
        "max_over_time": [3, 2, 2, 1, NAN, 5],
        "last_over_time": [3, NAN, 1, 1, NAN, 4],
        "first_over_time": [2, 2, 2, NAN, NAN, 5],
        "count_over_time": [3, 3, 3, 3, 3, 3],
        "present_over_time": [1, 1, 1, 1, 1, 1],
    }
    for fn, vals in want.items():
        got = as_dict(call(fn, ctx([M]), m))
        for lb, w in zip(s, vals, strict=True):
            assert close(got[lb], w), (fn, lb, got[lb], w)


def test_last_over_time_keeps_name() -> None:
    s = load(10 * S, {L(name="metric"): [1, 2]})
    last = call("last_over_time", ctx([M]), matrix(s, M, [M]))
    total = call("sum_over_time", ctx([M]), matrix(s, M, [M]))
    assert isinstance(last, VectorSteps) and isinstance(total, VectorSteps)
    assert last.drop_name is not None and not last.drop_name.any()
    assert total.drop_name is not None and total.drop_name.all()


def test_stddev_stdvar_mad_over_time() -> None:
    assert close(over_time("stdvar_over_time", [0, 8, 8, 2, 3], 2 * M, M)[()], 10.56)
    assert close(over_time("stddev_over_time", [0, 8, 8, 2, 3], 2 * M, M)[()], 3.249615, 1e-6)
    assert over_time("stdvar_over_time", [1.5990505637277868] * 3, M, 55 * S) == {(): 0}
    assert over_time("mad_over_time", [4, 6, 2, 1, 999, 1, 2], 70 * S, 70 * S) == {(): 1}
    assert over_time("mad_over_time", [1, 2, 3, 4, 5], 50 * S, 40 * S) == {(): 1}
    assert over_time("mad_over_time", [7] * 5, 50 * S, 40 * S) == {(): 0}
    assert over_time("mad_over_time", [5], 10 * S, 0) == {(): 0}
    assert math.isnan(over_time("mad_over_time", [1, 2, NAN, 4], 40 * S, 30 * S)[()])


def test_ts_of_functions() -> None:
    vals: list[float | None] = [1, 2, 3, 0, 5, 6, 2, 1, 4]
    assert over_time("ts_of_min_over_time", vals, 90 * S, 90 * S, 10053) == {(): 30.159}
    assert over_time("ts_of_max_over_time", vals, 90 * S, 90 * S, 10053) == {(): 50.265}
    assert over_time("ts_of_last_over_time", [1, 2, 3, None, None], 90 * S, 95 * S, 10053) == {(): 20.106}
    assert over_time("ts_of_first_over_time", [None, None, 1, 2, 3], 90 * S, 95 * S, 10053) == {(): 20.106}
    assert over_time("ts_of_first_over_time", [None, None, 1, 2, 3], 90 * S, 15 * S, 10053) == {}
    # All NaN: the last sample wins.
    assert over_time("ts_of_max_over_time", [NAN, NAN], M, 20 * S) == {(): 10}


def test_quantile_over_time() -> None:
    s = load(10 * S, {L(t="two"): [0, 1], L(t="three"): [0, 1, 2], L(t="uneven"): [0, 1, 4]})
    m = matrix(s, 2 * M, [M])
    cases = {0: (0, 0, 0), 0.5: (0.5, 1, 1), 0.75: (0.75, 1.5, 2.5), 0.8: (0.8, 1.6, 2.8), 1: (1, 2, 4)}
    for q, want in cases.items():
        c = ctx([M])
        got = call("quantile_over_time", c, scalar(q), m)
        assert_values(got, dict(zip([L(t="two"), L(t="three"), L(t="uneven")], want, strict=True)))
        assert c.annotations.warnings == []
    c = ctx([M])
    got = as_dict(call("quantile_over_time", c, scalar(-1), m))
    assert set(got.values()) == {-INF}
    assert c.annotations.warnings == ["PromQL warning: quantile value should be between 0 and 1, got -1"]
    # NaNs sort first, as in Prometheus.
    s = load(10 * S, {L(): [NAN, 3, 1]})
    got = as_dict(call("quantile_over_time", ctx([M]), scalar(0), matrix(s, 2 * M, [M])))
    assert math.isnan(got[()])
    got = as_dict(call("quantile_over_time", ctx([M]), scalar(1), matrix(s, 2 * M, [M])))
    assert got == {(): 3}


def test_deriv_predict_linear() -> None:
    s = load(5 * M, {L(): seq(0, 10, 4) + seq(0, 10, 5)})
    assert_values(call("deriv", ctx([50 * M]), matrix(s, 100 * M, [50 * M])), {L(): 0.010606060606060607})
    assert_values(call("predict_linear", ctx([50 * M]), matrix(s, 50 * M, [50 * M]), scalar(3600)), {L(): 70})
    # With @ 3000 the window is fixed but the prediction is relative to the evaluation time.
    steps = [50 * M, 10 * M, 70 * M]
    got = call("predict_linear", ctx(steps), matrix(s, 55 * M, [3000 * S] * 3), scalar(3600, 3))
    for j, want in enumerate([76.81818181818181, 51.36363636363637, 89.54545454545455]):
        assert_values(got, {L(): want}, step=j)
    s = load(5 * M, {L(): [-INF, *seq(0, 80, 10), INF]})
    assert math.isnan(as_dict(call("deriv", ctx([100 * M]), matrix(s, 100 * M, [100 * M])))[()])
    s = load(5 * M, {L(): [3, 3, 3]})
    assert as_dict(call("deriv", ctx([10 * M]), matrix(s, 10 * M, [10 * M]))) == {(): 0}


def test_double_exponential_smoothing() -> None:
    s = load(
        10 * S,
        {
            L(i="0p"): seq(0, 10, 1000) + seq(100, 30, 1000),
            L(i="1c"): seq(0, 40, 2000),
            L(i="neg"): seq(0, -40, 1000) + seq(0, 40, 1000),
        },
    )
    got = call("double_exponential_smoothing", ctx([8000 * S]), matrix(s, M, [8000 * S]), scalar(0.01), scalar(0.1))
    assert_values(got, {L(i="0p"): 8000, L(i="1c"): 32000, L(i="neg"): -32000})
    with pytest.raises(QueryError, match="invalid smoothing factor"):
        call("double_exponential_smoothing", ctx([8000 * S]), matrix(s, M, [8000 * S]), scalar(1), scalar(0.1))
    # Invalid factors do not matter where there is no data.
    empty = call("double_exponential_smoothing", ctx([0]), matrix(s, M, [-M]), scalar(1), scalar(0.1))
    assert as_dict(empty) == {}


def test_absent_over_time_and_present_over_time() -> None:
    s = load(M, {L(name="req_total", path="/foo"): seq(1, 1, 10), L(name="req_total", path="/bar"): seq(1, 1, 10)})
    expr = ast.MatrixSelector(selector("req_total", ("handler", "=", "/foo"), ("x", "=~", "y")), 5 * M)
    steps = [5 * M, 15 * M, 16 * M]
    got = call("absent_over_time", ctx(steps, [expr]), matrix(s, 6 * M, steps))
    assert as_dict(got, 0) == {}
    assert as_dict(got, 1) == {}
    assert as_dict(got, 2) == {L(handler="/foo"): 1}
    none = call("absent_over_time", ctx([M], [expr]), matrix({}, 5 * M, [M]))
    assert as_dict(none) == {L(handler="/foo"): 1}
    sub = ast.SubqueryExpr(expr, 5 * M)
    assert as_dict(call("absent_over_time", ctx([M], [sub]), matrix({}, 5 * M, [M]))) == {(): 1}


def test_empty_matrix() -> None:
    for fn in ("rate", "sum_over_time", "avg_over_time", "changes", "deriv", "irate", "stddev_over_time"):
        got = call(fn, ctx([0, M]), matrix({}, M, [0, M]))
        assert isinstance(got, VectorSteps) and got.num_series == 0 and got.values.shape == (0, 2)


# --------------------------------------------------------------------------- property test


def _kahan(inc: float, s: float, c: float) -> tuple[float, float]:
    t = s + inc
    if math.isinf(t):
        c = 0.0
    elif abs(s) >= abs(inc):
        c += (s - t) + inc
    else:
        c += (inc - t) + s
    return t, c


def ref_window(fn: str, ts: list[int], vs: list[float], start: int, end: int, range_ms: int) -> float | None:
    """Straightforward per-window transcription of Prometheus' algorithms."""
    pts = [(t, v) for t, v in zip(ts, vs, strict=True) if start < t <= end]
    if not pts:
        return None
    fv = [v for _, v in pts]
    if fn == "count_over_time":
        return float(len(pts))
    if fn == "sum_over_time":
        s = c = 0.0
        for v in fv:
            s, c = _kahan(v, s, c)
        return s if math.isinf(s) else s + c
    if fn == "max_over_time":
        best = fv[0]
        for v in fv:
            if v > best or math.isnan(best):
                best = v
        return best
    if fn == "last_over_time":
        return fv[-1]
    if fn == "first_over_time":
        return fv[0]
    if fn == "min_over_time":
        best = fv[0]
        for v in fv:
            if v < best or math.isnan(best):
                best = v
        return best
    if fn == "avg_over_time":
        total, count, mean, c, incremental = fv[0], 1.0, 0.0, 0.0, False
        for i, v in enumerate(fv[1:]):
            count = float(i + 2)
            if not incremental:
                ns, nc = _kahan(v, total, c)
                if not math.isinf(ns):
                    total, c = ns, nc
                    continue
                incremental = True
                mean = total / (count - 1)
                c /= count - 1
            q = (count - 1) / count
            mean, c = _kahan(v / count, q * mean, q * c)
        return mean + c if incremental else total / count + c / count
    if fn == "quantile_over_time":
        ordered = sorted(fv, key=lambda x: (not math.isnan(x), x))  # NaNs first, as Prometheus
        rank = 0.3 * (len(ordered) - 1)
        lower = max(0.0, math.floor(rank))
        upper = min(len(ordered) - 1.0, lower + 1)
        weight = rank - math.floor(rank)
        return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight
    if fn == "changes":
        return float(sum(1 for a, b in itertools.pairwise(fv) if b != a and not (math.isnan(a) and math.isnan(b))))
    if fn == "resets":
        return float(sum(1 for a, b in itertools.pairwise(fv) if b < a))
    if fn == "stdvar_over_time":
        n = mean = cm = aux = ca = 0.0
        for v in fv:
            n += 1
            d = v - (mean + cm)
            mean, cm = _kahan(d / n, mean, cm)
            aux, ca = _kahan(d * (v - (mean + cm)), aux, ca)
        return (aux + ca) / n
    if len(pts) < 2:
        return None
    if fn in ("rate", "increase", "delta"):
        counter = fn != "delta"
        res = fv[-1] - fv[0]
        if counter:
            for a, b in itertools.pairwise(fv):
                if b < a:
                    res += a
        first_t, last_t = pts[0][0], pts[-1][0]
        to_start = (first_t - start) / 1000
        to_end = (end - last_t) / 1000
        sampled = (last_t - first_t) / 1000
        avg = sampled / (len(pts) - 1)
        if to_start >= avg * 1.1:
            to_start = avg / 2
        if counter:
            to_zero = to_start
            if res > 0 and fv[0] >= 0:
                to_zero = sampled * (fv[0] / res)
            if to_zero < to_start:
                to_start = to_zero
        if to_end >= avg * 1.1:
            to_end = avg / 2
        factor = (sampled + to_start + to_end) / sampled
        if fn == "rate":
            factor /= range_ms / 1000
        return res * factor
    if fn == "irate":
        (t0, a), (t1, b) = pts[-2], pts[-1]
        return (b if b < a else b - a) / ((t1 - t0) / 1000)
    if fn == "idelta":
        return pts[-1][1] - pts[-2][1]
    if fn == "deriv":
        n = 0.0
        sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
        const = all(v == fv[0] for v in fv[1:])
        for t, v in pts:
            n += 1
            x = (t - pts[0][0]) / 1e3
            sx, cx = _kahan(x, sx, cx)
            sy, cy = _kahan(v, sy, cy)
            sxy, cxy = _kahan(x * v, sxy, cxy)
            sx2, cx2 = _kahan(x * x, sx2, cx2)
        if const:
            return math.nan if math.isinf(fv[0]) else 0.0
        sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
        return (sxy - sx * sy / n) / (sx2 - sx * sx / n)
    raise AssertionError(fn)


PROPERTY_FUNCS = [
    "count_over_time",
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "last_over_time",
    "first_over_time",
    "quantile_over_time",
    "idelta",
    "changes",
    "resets",
    "stdvar_over_time",
    "rate",
    "increase",
    "delta",
    "irate",
    "deriv",
]

values_st = st.one_of(
    st.integers(-50, 1000).map(float),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.just(NAN),
    st.sampled_from([1.7e308, -1.7e308, INF, -INF, 1e100, -1e100]),
)


@st.composite
def series_sets(draw: st.DrawFn) -> tuple[list[list[int]], list[list[float]], list[int], int]:
    n = draw(st.integers(0, 4))
    tss, vss = [], []
    for _ in range(n):
        ts = sorted(set(draw(st.lists(st.integers(0, 600), max_size=25))))
        tss.append([t * 1000 for t in ts])
        vss.append([draw(values_st) for _ in ts])
    steps = draw(st.lists(st.integers(-10, 700), min_size=1, max_size=8))
    rng = draw(st.integers(1, 200)) * 1000
    return tss, vss, [s * 1000 for s in steps], rng


@settings(max_examples=300, deadline=None)
@given(series_sets(), st.sampled_from(PROPERTY_FUNCS))
def test_vectorized_matches_naive_reference(data: tuple[list[list[int]], list[list[float]], list[int], int], fn: str) -> None:
    tss, vss, steps, rng = data
    series = {L(name="m_total", i=str(i)): (ts, vs) for i, (ts, vs) in enumerate(zip(tss, vss, strict=True))}
    extra = [scalar(0.3, len(steps))] if fn == "quantile_over_time" else []
    with np.errstate(all="ignore"):
        got = call(fn, ctx(steps), *extra, matrix(series, rng, steps))
    assert isinstance(got, VectorSteps)
    got_by_labels = {lb: i for i, lb in enumerate(got.labels)}
    for lb, (ts, vs) in series.items():
        for j, e in enumerate(steps):
            with np.errstate(all="ignore"):
                want = ref_window(fn, ts, vs, e - rng, e, rng)
            i = got_by_labels.get(lb)
            if want is None:
                assert i is None or not got.present[i, j]
                continue
            assert i is not None and got.present[i, j], (lb, j)
            # sum/avg take a plain-sum fast path where it is provably within 1e-9 of Kahan.
            tol = 1e-9 if fn in ("sum_over_time", "avg_over_time") else 1e-12
            assert close(float(got.values[i, j]), want, tol), (fn, lb, j, got.values[i, j], want)


def test_window_search_fallback_matches_global_search() -> None:
    """Bounds far outside the data take the per-series search path; results must not change."""
    s = load(10 * S, {L(a="1"): seq(1, 1, 30), L(a="2"): seq(5, 2, 20)})
    far = -(1 << 42)
    steps = [far, 100 * S, 200 * S, 300 * S]
    got = call("sum_over_time", ctx(steps), matrix(s, M, steps))
    ref = call("sum_over_time", ctx(steps[1:]), matrix(s, M, steps[1:]))
    assert isinstance(got, VectorSteps) and isinstance(ref, VectorSteps)
    assert not got.present[:, 0].any()
    np.testing.assert_array_equal(got.values[:, 1:], ref.values)
    np.testing.assert_array_equal(got.present[:, 1:], ref.present)


def ref_extended(ts: list[int], vs: list[float], e: int, rng: int, lookback: int, smoothed: bool, is_counter: bool) -> float | None:
    """Per-window transcription of Prometheus' extendedRate (anchored/smoothed), increase/delta."""
    range_start, range_end = e - rng, e
    hi_t = e + (lookback if smoothed else 0)
    f = [(t, v) for t, v in zip(ts, vs, strict=True) if range_start - lookback < t <= hi_t]
    if not f:
        return None
    last = len(f) - 1
    first = next((i for i in range(last) if f[i][0] > range_start), last)
    first = max(0, first - 1)
    if smoothed:
        last = next((i for i in range(last) if f[i][0] >= range_end), last)
    if f[last][0] <= range_start:
        return None
    if smoothed and f[first][0] > range_end:
        return None

    def interp(p1: tuple[int, float], p2: tuple[int, float], t: int) -> float:
        y1, y2 = p1[1], p2[1]
        if is_counter and y2 < y1:
            y1 = 0.0
        return y1 + (y2 - y1) * float(t - p1[0]) / float(p2[0] - p1[0])

    left = interp(f[first], f[first + 1], range_start) if smoothed and f[first][0] < range_start else f[first][1]
    right = interp(f[last - 1], f[last], range_end) if smoothed and last > 0 and f[last][0] > range_end else f[last][1]
    result = right - left
    if is_counter:
        if f[first][0] <= range_start:
            first += 1
        if f[last][0] >= range_end:
            last -= 1
        corr, prev = 0.0, left
        for _, v in f[first : last + 1]:
            if v < prev:
                corr += prev
            prev = v
        if right < prev:
            corr += prev
        result += corr
    return result


@settings(max_examples=200, deadline=None)
@given(series_sets(), st.booleans(), st.booleans(), st.integers(1, 400))
def test_extended_rate_matches_naive_reference(
    data: tuple[list[list[int]], list[list[float]], list[int], int], smoothed: bool, counter: bool, lookback_s: int
) -> None:
    tss, vss, steps, rng = data
    lookback = lookback_s * 1000
    series = {L(i=str(i)): (ts, vs) for i, (ts, vs) in enumerate(zip(tss, vss, strict=True))}
    fn = "increase" if counter else "delta"
    m = matrix(series, rng, steps, anchored=not smoothed, smoothed=smoothed, lookback_ms=lookback)
    with np.errstate(all="ignore"):
        got = call(fn, ctx(steps), m)
    assert isinstance(got, VectorSteps)
    rows = {lb: i for i, lb in enumerate(got.labels)}
    for lb, (ts, vs) in series.items():
        for j, e in enumerate(steps):
            with np.errstate(all="ignore"):
                want = ref_extended(ts, vs, e, rng, lookback, smoothed, counter)
            i = rows.get(lb)
            if want is None:
                assert i is None or not got.present[i, j]
                continue
            assert i is not None and got.present[i, j], (lb, j)
            assert close(float(got.values[i, j]), want, 1e-12), (fn, smoothed, lb, j, got.values[i, j], want)


@pytest.mark.parametrize("fn", ["deriv", "predict_linear"])
def test_long_window_regression_path_agrees_with_replay(fn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearsight.query.promql import fn_range

    rnd = np.random.default_rng(7)
    series = {}
    for i in range(5):
        ts = np.cumsum(rnd.integers(10_000, 20_000, 300)).tolist()
        vs = (np.cumsum(rnd.normal(3, 1, 300)) + 1e6 * i).tolist()
        series[L(i=str(i))] = (ts, vs)
    steps = list(range(600_000, 4_000_000, 250_000))
    extra = [scalar(3600, len(steps))] if fn == "predict_linear" else []

    def run() -> VectorSteps:
        out = call(fn, ctx(steps), matrix(series, 30 * M, steps), *extra)
        assert isinstance(out, VectorSteps)
        return out

    monkeypatch.setattr(fn_range, "REPLAY_MAX_WINDOW", 10_000)
    replay = run()
    monkeypatch.setattr(fn_range, "REPLAY_MAX_WINDOW", 0)
    padded = run()
    assert replay.labels == padded.labels
    np.testing.assert_array_equal(replay.present, padded.present)
    np.testing.assert_allclose(padded.values, replay.values, rtol=1e-9)


def test_predict_linear_long_window_exact_line() -> None:
    ts = list(range(0, 6 * 3600 * S + 1, 15 * S))
    series = {L(): (ts, [5 + 2 * t / 1000 for t in ts])}
    at = 6 * 3600 * S
    got = as_dict(call("predict_linear", ctx([at]), matrix(series, 6 * 3600 * S, [at]), scalar(3600)))
    assert close(got[()], 5 + 2 * (at / 1000 + 3600), 1e-12)
    flat = {L(): (ts, [7.0] * len(ts))}
    assert as_dict(call("deriv", ctx([at]), matrix(flat, 6 * 3600 * S, [at]))) == {(): 0}


def test_long_window_variance_agrees_with_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    from clearsight.query.promql import fn_range

    rnd = np.random.default_rng(3)
    series = {L(i=str(i)): (list(range(0, 3000 * S, 10 * S)), rnd.normal(50 * i, 3, 300).tolist()) for i in range(4)}
    series[L(i="const")] = (list(range(0, 3000 * S, 10 * S)), [1.5990505637277868] * 300)
    series[L(i="nan")] = (list(range(0, 3000 * S, 10 * S)), [1.0, NAN] * 150)
    steps = list(range(100 * S, 3000 * S, 170 * S))

    def run() -> VectorSteps:
        out = call("stdvar_over_time", ctx(steps), matrix(series, 20 * M, steps))
        assert isinstance(out, VectorSteps)
        return out

    monkeypatch.setattr(fn_range, "REPLAY_MAX_WINDOW", 10_000)
    replay = run()
    monkeypatch.setattr(fn_range, "REPLAY_MAX_WINDOW", 0)
    padded = run()
    np.testing.assert_array_equal(replay.present, padded.present)
    np.testing.assert_allclose(padded.values, replay.values, rtol=1e-9)
    const_row = padded.labels.index(L(i="const"))
    assert (padded.values[const_row][padded.present[const_row]] == 0).all()


def test_per_series_window_search_matches_global(monkeypatch: pytest.MonkeyPatch) -> None:
    from clearsight.query.promql import fn_common

    s = load(15 * S, {L(a=str(i)): seq(i, 1.5, 200) for i in range(6)})
    steps = list(range(0, 3000 * S, 7 * S))
    monkeypatch.setattr(fn_common, "_PER_SERIES_MIN_STEPS", 10**9)
    ref = call("rate", ctx(steps), matrix(s, 2 * M, steps))
    monkeypatch.setattr(fn_common, "_PER_SERIES_MIN_STEPS", 1)
    got = call("rate", ctx(steps), matrix(s, 2 * M, steps))
    assert isinstance(ref, VectorSteps) and isinstance(got, VectorSteps)
    np.testing.assert_array_equal(got.present, ref.present)
    np.testing.assert_array_equal(got.values, ref.values)
