"""Every function on hostile input (NaN, ±Inf, huge values, gaps, empty input, several steps):
no exceptions other than QueryError, no numpy RuntimeWarnings (pytest turns them into errors),
and output shapes that match the query steps."""

from __future__ import annotations

import numpy as np
import pytest

from clearsight.query.promql.functions import FUNCTIONS
from clearsight.query.promql.values import MatrixSteps, ScalarSteps, Value, VectorSteps

from .test_fn_support import L, M, S, ctx, instant, load, matrix, selector

NAN = float("nan")
INF = float("inf")
HOSTILE: list[float | None] = [1, NAN, INF, -INF, 0, -0.0, 1e308, -1e308, None, 5, 3, 5e-324, None, 2]
STEPS = [0, 90 * S, 3 * M, 10 * M]

RANGE_FUNCS = {
    "rate", "increase", "delta", "irate", "idelta", "changes", "resets", "deriv", "avg_over_time",
    "sum_over_time", "count_over_time", "min_over_time", "max_over_time", "stddev_over_time",
    "stdvar_over_time", "last_over_time", "first_over_time", "present_over_time", "mad_over_time",
    "ts_of_last_over_time", "ts_of_first_over_time", "ts_of_max_over_time", "ts_of_min_over_time",
    "absent_over_time",
}


def series() -> dict:
    return load(15 * S, {L(name="m_total", a="1"): HOSTILE, L(name="m_total", a="2"): list(reversed(HOSTILE)),
                         L(name="m_bucket", le="1"): [1, 2, NAN, 4], L(name="m_bucket", le="+Inf"): [2, 1, 5, INF],
                         L(name="m_bucket", le="x"): [1, 1, 1, 1]})


def sc(x: float) -> ScalarSteps:
    return ScalarSteps(np.full(len(STEPS), x))


def args_for(name: str, m: MatrixSteps, v: VectorSteps) -> list[list[Value]] | None:
    if name in RANGE_FUNCS:
        return [[m]]
    if name == "quantile_over_time":
        return [[sc(q), m] for q in (0, 0.5, 1, -1, NAN)]
    if name == "predict_linear":
        return [[m, sc(60)], [m, sc(NAN)]]
    if name == "double_exponential_smoothing":
        return [[m, sc(0.5), sc(0.5)]]
    if name in ("histogram_quantile",):
        return [[sc(q), v] for q in (0, 0.5, 1, 2, NAN)]
    if name == "histogram_quantiles":
        return [[v, "q", sc(0.5), sc(NAN)]]
    if name == "histogram_fraction":
        return [[sc(lo), sc(hi), v] for lo, hi in ((0, 1), (-INF, INF), (NAN, 1), (2, 1))]
    if name in ("clamp",):
        return [[v, sc(lo), sc(hi)] for lo, hi in ((0, 1), (NAN, 1), (1, 0))]
    if name in ("clamp_min", "clamp_max", "round"):
        return [[v, sc(x)] for x in (0, 0.5, NAN, INF)] + ([[v]] if name == "round" else [])
    if name in ("vector",):
        return [[sc(NAN)], [sc(INF)]]
    if name in ("min_of", "max_of"):
        return [[sc(NAN), sc(1)]]
    if name in ("pi", "time", "step", "range", "start", "end"):
        return [[]]
    if name == "label_replace":
        return [[v, "dst", "$1", "a", "(.*)"]]
    if name == "label_join":
        return [[v, "dst", "-", "a", "le"]]
    if name in ("sort_by_label", "sort_by_label_desc"):
        return [[v, "a", "le"]]
    if name in ("year", "month", "day_of_month", "day_of_year", "day_of_week", "days_in_month", "hour", "minute"):
        return [[], [v]]
    return [[v]]


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_survives_hostile_input(name: str, padded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearsight.query.promql import fn_range

    if padded:  # force the whole-window paths of the sequential algorithms
        monkeypatch.setattr(fn_range, "REPLAY_MAX_WINDOW", 0)
    s = series()
    m = matrix(s, 2 * M, STEPS)
    v = instant(s, STEPS)
    cases = args_for(name, m, v)
    assert cases is not None
    empty_m = matrix({}, 2 * M, STEPS)
    empty_v = VectorSteps.empty(len(STEPS))
    for args in cases:
        for a in (args, [empty_m if isinstance(x, MatrixSteps) else empty_v if isinstance(x, VectorSteps) else x for x in args]):
            c = ctx(STEPS, [selector("m_total")])
            out = FUNCTIONS[name](c, list(a))
            if isinstance(out, VectorSteps):
                assert out.values.shape == (out.num_series, len(STEPS))
                assert out.present.shape == out.values.shape
                assert len(out.labels) == out.num_series
            else:
                assert isinstance(out, ScalarSteps) and out.values.shape == (len(STEPS),)


@pytest.mark.parametrize("mode", ["anchored", "smoothed"])
@pytest.mark.parametrize("name", ["rate", "increase", "delta", "changes", "resets"])
def test_extended_selectors_survive_hostile_input(name: str, mode: str) -> None:
    if mode == "smoothed" and name in ("changes", "resets"):
        return
    m = matrix(series(), 2 * M, STEPS, anchored=mode == "anchored", smoothed=mode == "smoothed", lookback_ms=M)
    out = FUNCTIONS[name](ctx(STEPS), [m])
    assert isinstance(out, VectorSteps) and out.values.shape == (out.num_series, len(STEPS))
