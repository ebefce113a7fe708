"""The engine core on hand-built ASTs: selectors (lookback, staleness, offset, @), subqueries,
aggregations, binary operators and vector matching, name dropping, errors and limits."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import STALE_NAN
from clearsight.query.promql.ast import (
    AggregateExpr,
    AtModifier,
    BinaryExpr,
    Call,
    Cardinality,
    Expr,
    MatrixSelector,
    NumberLiteral,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorMatching,
    VectorSelector,
)
from clearsight.query.promql.engine import Engine, QueryCanceled, with_at_everywhere
from clearsight.query.promql.result import QueryResult
from clearsight.query.promql.values import (
    FuncContext,
    MatrixSteps,
    QueryError,
    QueryLimitExceeded,
    QueryTimeout,
    ScalarSteps,
    Value,
    VectorSteps,
)
from clearsight.store.memory import MemorySeriesSelector

M = 60_000


def L(name: str | None = None, **kw: str) -> Labels:
    d = dict(kw)
    if name is not None:
        d["__name__"] = name
    return tuple(sorted(d.items()))


def sel(name: str, offset: int = 0, at: AtModifier | None = None, **eq: str) -> VectorSelector:
    ms = [Matcher.of(MatchType.EQ, "__name__", name)] + [Matcher.of(MatchType.EQ, k, v) for k, v in eq.items()]
    return VectorSelector(name, ms, offset, at)


def num(v: float) -> NumberLiteral:
    return NumberLiteral(v)


def _last_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    """A tiny range function for engine tests (the real library lives in functions.py)."""
    m = args[0]
    assert isinstance(m, MatrixSteps)
    k = m.window_end.shape[0]
    vals = np.zeros((m.num_series, k))
    pres = np.zeros((m.num_series, k), dtype=bool)
    for i in range(m.num_series):
        ts, vs = m.timestamps[i], m.values[i]
        idx = np.searchsorted(ts, m.window_end, side="right") - 1
        ok = (idx >= 0) & (ts[np.maximum(idx, 0)] > m.window_end - m.range_ms)
        vals[i] = vs[np.maximum(idx, 0)]
        pres[i] = ok
    return VectorSteps(list(m.labels), vals, pres)


def _count_over_time(ctx: FuncContext, args: list[Value]) -> Value:
    m = args[0]
    assert isinstance(m, MatrixSteps)
    k = m.window_end.shape[0]
    vals = np.zeros((m.num_series, k))
    for i in range(m.num_series):
        ts = m.timestamps[i]
        hi = np.searchsorted(ts, m.window_end, side="right")
        lo = np.searchsorted(ts, m.window_end - m.range_ms, side="right")
        vals[i] = hi - lo
    return VectorSteps(list(m.labels), vals, vals > 0, np.ones(m.num_series, dtype=bool))


def _abs(ctx: FuncContext, args: list[Value]) -> Value:
    v = args[0]
    assert isinstance(v, VectorSteps)
    return VectorSteps(v.labels, np.abs(v.values), v.present, np.ones(v.num_series, dtype=bool))


FUNCS = {"last_over_time": _last_over_time, "count_over_time": _count_over_time, "abs": _abs}


@pytest.fixture
def store() -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    # a: 0,1,2,...,10 every minute
    s.add(L("a", job="x"), [i * M for i in range(11)], [float(i) for i in range(11)])
    # b: only at 0 and 10m
    s.add(L("b", job="x"), [0, 10 * M], [5.0, 7.0])
    # s: stale marker at 3m
    s.add(L("s", job="x"), [0, M, 2 * M, 3 * M, 6 * M], [1.0, 2.0, 3.0, STALE_NAN, 9.0])
    return s


def engine() -> Engine:
    return Engine(functions=dict(FUNCS))


def vec(res: QueryResult) -> dict[Labels, float]:
    assert res.result_type == "vector"
    return {s.labels: float(s.values[0]) for s in res.series}


def mat(res: QueryResult) -> dict[Labels, list[tuple[int, float]]]:
    assert res.result_type == "matrix"
    return {s.labels: s.points() for s in res.series}


# ---- selectors ----

def test_instant_selector_picks_latest_sample_in_lookback(store: MemorySeriesSelector) -> None:
    assert vec(engine().instant(store, sel("a"), 150_000)) == {L("a", job="x"): 2.0}
    # b's sample at 0 is visible until 5m (exclusive): lookback window is (t-5m, t]
    assert vec(engine().instant(store, sel("b"), 5 * M - 1)) == {L("b", job="x"): 5.0}
    assert vec(engine().instant(store, sel("b"), 5 * M)) == {}


def test_stale_marker_hides_series_until_next_sample(store: MemorySeriesSelector) -> None:
    res = engine().range(store, sel("s"), 0, 6 * M, M)
    assert mat(res) == {L("s", job="x"): [(0, 1.0), (M, 2.0), (2 * M, 3.0), (6 * M, 9.0)]}


def test_offset_and_negative_offset(store: MemorySeriesSelector) -> None:
    assert vec(engine().instant(store, sel("a", offset=2 * M), 5 * M)) == {L("a", job="x"): 3.0}
    assert vec(engine().instant(store, sel("a", offset=-2 * M), 5 * M)) == {L("a", job="x"): 7.0}


def test_at_modifier_is_step_invariant(store: MemorySeriesSelector) -> None:
    res = engine().range(store, sel("a", at=AtModifier(timestamp_ms=4 * M)), 0, 3 * M, M)
    assert mat(res) == {L("a", job="x"): [(t, 4.0) for t in (0, M, 2 * M, 3 * M)]}
    res = engine().range(store, sel("a", at=AtModifier(start_or_end="end")), 0, 3 * M, M)
    assert mat(res) == {L("a", job="x"): [(t, 3.0) for t in (0, M, 2 * M, 3 * M)]}


def test_matrix_selector_window_is_left_open(store: MemorySeriesSelector) -> None:
    res = engine().instant(store, MatrixSelector(sel("a"), 2 * M), 5 * M)
    assert res.result_type == "matrix"
    assert mat(res) == {L("a", job="x"): [(4 * M, 4.0), (5 * M, 5.0)]}


def test_range_function_over_matrix_selector(store: MemorySeriesSelector) -> None:
    e = Call("count_over_time", [MatrixSelector(sel("a"), 3 * M)])
    res = engine().range(store, e, 3 * M, 5 * M, M)
    assert mat(res) == {L(job="x"): [(3 * M, 3.0), (4 * M, 3.0), (5 * M, 3.0)]}


# ---- subqueries ----

def test_subquery_steps_are_aligned_to_absolute_multiples(store: MemorySeriesSelector) -> None:
    # [5m:2m] at 7m: inner steps are the multiples of 2m in (2m, 7m]: 4m, 6m
    e = SubqueryExpr(sel("a"), 5 * M, 2 * M)
    res = engine().instant(store, e, 7 * M)
    assert mat(res) == {L("a", job="x"): [(4 * M, 4.0), (6 * M, 6.0)]}


def test_subquery_default_step_is_one_minute(store: MemorySeriesSelector) -> None:
    e = Call("count_over_time", [SubqueryExpr(sel("a"), 5 * M)])
    assert vec(engine().instant(store, e, 10 * M)) == {L(job="x"): 5.0}


def test_subquery_respects_name_dropping_inside(store: MemorySeriesSelector) -> None:
    e = Call("last_over_time", [SubqueryExpr(Call("abs", [sel("a")]), 5 * M)])
    assert vec(engine().instant(store, e, 10 * M)) == {L(job="x"): 10.0}


# ---- aggregations ----

@pytest.fixture
def agg_store() -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    for i, (grp, v) in enumerate([("a", 1.0), ("a", 3.0), ("b", 10.0), ("b", math.nan)]):
        s.add(L("m", grp=grp, inst=str(i)), [0], [v])
    return s


@pytest.mark.parametrize(("op", "want_a", "want_b"), [
    ("sum", 4.0, math.nan),
    ("avg", 2.0, math.nan),
    ("min", 1.0, 10.0),
    ("max", 3.0, 10.0),
    ("count", 2.0, 2.0),
    ("group", 1.0, 1.0),
    ("stdvar", 1.0, math.nan),
    ("stddev", 1.0, math.nan),
])
def test_aggregations_by_group(agg_store: MemorySeriesSelector, op: str, want_a: float, want_b: float) -> None:
    got = vec(engine().instant(agg_store, AggregateExpr(op, sel("m"), grouping=["grp"]), 0))
    for key, want in ((L(grp="a"), want_a), (L(grp="b"), want_b)):
        assert (math.isnan(got[key]) and math.isnan(want)) or got[key] == pytest.approx(want)


def test_sum_uses_compensated_summation() -> None:
    s = MemorySeriesSelector()
    for i, v in enumerate([1e100, 1.0, -1e100]):
        s.add(L("m", i=str(i)), [0], [v])
    assert vec(engine().instant(s, AggregateExpr("sum", sel("m")), 0)) == {(): 1.0}


def test_avg_survives_overflowing_sum() -> None:
    s = MemorySeriesSelector()
    for i in range(3):
        s.add(L("m", i=str(i)), [0], [1.5e308])
    assert vec(engine().instant(s, AggregateExpr("avg", sel("m")), 0)) == {(): pytest.approx(1.5e308)}


def test_without_drops_name_and_listed_labels(agg_store: MemorySeriesSelector) -> None:
    got = vec(engine().instant(agg_store, AggregateExpr("count", sel("m"), grouping=["inst"], without=True), 0))
    assert got == {L(grp="a"): 2.0, L(grp="b"): 2.0}


def test_topk_orders_instant_output_and_skips_nan(agg_store: MemorySeriesSelector) -> None:
    res = engine().instant(agg_store, AggregateExpr("topk", sel("m"), num(3)), 0)
    assert [float(s.values[0]) for s in res.series] == [10.0, 3.0, 1.0]
    res = engine().instant(agg_store, AggregateExpr("bottomk", sel("m"), num(1), grouping=["grp"]), 0)
    assert [(dict(s.labels)["grp"], float(s.values[0])) for s in res.series] == [("a", 1.0), ("b", 10.0)]


def test_topk_nan_parameter_is_an_error(agg_store: MemorySeriesSelector) -> None:
    with pytest.raises(QueryError, match="Parameter value is NaN"):
        engine().instant(agg_store, AggregateExpr("topk", sel("nothing"), num(math.nan)), 0)


def test_quantile_interpolates_and_warns_out_of_range(agg_store: MemorySeriesSelector) -> None:
    got = vec(engine().instant(agg_store, AggregateExpr("quantile", sel("m", grp="a"), num(0.5)), 0))
    assert got == {(): 2.0}
    res = engine().instant(agg_store, AggregateExpr("quantile", sel("m"), num(2)), 0)
    assert vec(res) == {(): math.inf}
    assert res.annotations.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2"]


def test_count_values_labels_by_value(agg_store: MemorySeriesSelector) -> None:
    e = AggregateExpr("count_values", sel("m"), StringLiteral("v"))
    got = vec(engine().instant(agg_store, e, 0))
    assert got == {L(v="1"): 1.0, L(v="3"): 1.0, L(v="10"): 1.0, L(v="NaN"): 1.0}


def test_limitk_keeps_first_series_in_input_order(agg_store: MemorySeriesSelector) -> None:
    got = vec(engine().instant(agg_store, AggregateExpr("limitk", sel("m"), num(1), grouping=["grp"]), 0))
    assert set(got) == {L("m", grp="a", inst="0"), L("m", grp="b", inst="2")}


def test_limit_ratio_halves_are_complementary(agg_store: MemorySeriesSelector) -> None:
    pos = vec(engine().instant(agg_store, AggregateExpr("limit_ratio", sel("m"), num(0.5)), 0))
    neg = vec(engine().instant(agg_store, AggregateExpr("limit_ratio", sel("m"), num(-0.5)), 0))
    assert set(pos).isdisjoint(neg)
    assert len(pos) + len(neg) == 4


# ---- binary operators ----

@pytest.fixture
def bin_store() -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    s.add(L("req", method="get", code="200"), [0], [10.0])
    s.add(L("req", method="post", code="200"), [0], [20.0])
    s.add(L("req", method="get", code="500"), [0], [2.0])
    s.add(L("lim", code="200"), [0], [100.0])
    s.add(L("lim", code="500"), [0], [50.0])
    return s


def test_vector_scalar_arithmetic_drops_name(bin_store: MemorySeriesSelector) -> None:
    got = vec(engine().instant(bin_store, BinaryExpr("*", sel("lim"), num(2)), 0))
    assert got == {L(code="200"): 200.0, L(code="500"): 100.0}


def test_comparison_filters_and_keeps_name(bin_store: MemorySeriesSelector) -> None:
    got = vec(engine().instant(bin_store, BinaryExpr(">", sel("lim"), num(60)), 0))
    assert got == {L("lim", code="200"): 100.0}
    got = vec(engine().instant(bin_store, BinaryExpr(">", num(60), sel("lim")), 0))
    assert got == {L("lim", code="500"): 50.0}
    got = vec(engine().instant(bin_store, BinaryExpr(">", sel("lim"), num(60), return_bool=True), 0))
    assert got == {L(code="200"): 1.0, L(code="500"): 0.0}


def test_scalar_scalar_and_unary() -> None:
    s = MemorySeriesSelector()
    res = engine().instant(s, BinaryExpr("^", num(2), num(10)), 0)
    assert res.result_type == "scalar" and res.scalar_value == 1024.0
    res = engine().instant(s, UnaryExpr("-", BinaryExpr("%", num(-7), num(3))), 0)
    assert res.scalar_value == 1.0


def test_group_left_matching(bin_store: MemorySeriesSelector) -> None:
    m = VectorMatching(card=Cardinality.MANY_TO_ONE, on=True, labels=["code"])
    got = vec(engine().instant(bin_store, BinaryExpr("/", sel("req"), sel("lim"), matching=m), 0))
    assert got == {L(method="get", code="200"): 0.1, L(method="post", code="200"): 0.2,
                   L(method="get", code="500"): 0.04}


def test_one_to_one_with_duplicates_is_an_error(bin_store: MemorySeriesSelector) -> None:
    m = VectorMatching(card=Cardinality.ONE_TO_ONE, on=True, labels=["code"])
    with pytest.raises(QueryError, match="many-to-one matching must be explicit"):
        engine().instant(bin_store, BinaryExpr("/", sel("req"), sel("lim"), matching=m), 0)
    with pytest.raises(QueryError, match="many-to-many matching not allowed"):
        engine().instant(bin_store, BinaryExpr("/", sel("lim"), sel("req"), matching=m), 0)


def test_set_operators(bin_store: MemorySeriesSelector) -> None:
    m = VectorMatching(card=Cardinality.MANY_TO_MANY, on=True, labels=["code"])
    lim500 = BinaryExpr(">", sel("lim"), num(60))
    got = vec(engine().instant(bin_store, BinaryExpr("and", sel("req"), lim500, matching=m), 0))
    assert set(got) == {L("req", method="get", code="200"), L("req", method="post", code="200")}
    got = vec(engine().instant(bin_store, BinaryExpr("unless", sel("req"), lim500, matching=m), 0))
    assert set(got) == {L("req", method="get", code="500")}
    got = vec(engine().instant(bin_store, BinaryExpr("or", sel("lim"), sel("req"), matching=m), 0))
    assert set(got) == {L("lim", code="200"), L("lim", code="500")}


def test_fill_modifiers(bin_store: MemorySeriesSelector) -> None:
    bin_store.add(L("lim", code="404"), [0], [7.0])
    m = VectorMatching(card=Cardinality.MANY_TO_ONE, on=True, labels=["code"], fill_left=0.0)
    got = vec(engine().instant(bin_store, BinaryExpr("+", sel("req"), sel("lim"), matching=m), 0))
    assert got[L(code="404")] == 7.0
    assert got[L(method="get", code="200")] == 110.0


def test_duplicate_labelset_after_name_drop_is_an_error() -> None:
    s = MemorySeriesSelector()
    s.add(L("x", a="1"), [0], [1.0])
    s.add(L("y", a="1"), [0], [2.0])
    e = Call("abs", [VectorSelector(None, [Matcher.of(MatchType.RE, "__name__", "x|y")])])
    with pytest.raises(QueryError, match="same labelset"):
        engine().instant(s, e, 0)


def test_or_of_name_dropped_series_merges_non_overlapping_steps() -> None:
    s = MemorySeriesSelector()
    s.add(L("a"), [0], [1.0])
    s.add(L("b"), [0, 10 * M], [3.0, 4.0])
    e = BinaryExpr("or", UnaryExpr("-", sel("a")), UnaryExpr("-", sel("b")),
                   matching=VectorMatching(card=Cardinality.MANY_TO_MANY))
    assert mat(engine().range(s, e, 0, 20 * M, 10 * M)) == {(): [(0, -1.0), (10 * M, -4.0)]}


# ---- results, errors, limits ----

def test_range_query_of_scalar_is_a_matrix() -> None:
    res = engine().range(MemorySeriesSelector(), num(3), 0, 2 * M, M)
    assert mat(res) == {(): [(0, 3.0), (M, 3.0), (2 * M, 3.0)]}


def test_string_result_and_range_type_errors(store: MemorySeriesSelector) -> None:
    res = engine().instant(store, StringLiteral("hi"), 5)
    assert res.result_type == "string" and res.string == (5, "hi")
    with pytest.raises(QueryError, match="range query"):
        engine().range(store, MatrixSelector(sel("a"), M), 0, M, M)


def test_points_per_series_limit_names_the_limit(store: MemorySeriesSelector) -> None:
    with pytest.raises(QueryLimitExceeded, match="11,000 points per timeseries"):
        engine().range(store, sel("a"), 0, 11_000 * M, M)


def test_max_samples_limit() -> None:
    s = MemorySeriesSelector()
    s.add(L("m"), list(range(0, 1000)), [1.0] * 1000)
    with pytest.raises(QueryLimitExceeded, match="max_samples"):
        Engine(max_samples=100).instant(s, MatrixSelector(sel("m"), 10 * M), 999)


def test_timeout_and_cancel(store: MemorySeriesSelector) -> None:
    with pytest.raises(QueryTimeout):
        Engine(timeout_s=-1.0).instant(store, sel("a"), 0)
    ev = threading.Event()
    ev.set()
    with pytest.raises(QueryCanceled):
        engine().instant(store, sel("a"), 0, cancel=ev)


def test_stats_count_loaded_samples(store: MemorySeriesSelector) -> None:
    res = engine().instant(store, MatrixSelector(sel("a"), 3 * M), 5 * M)
    assert res.stats.samples_loaded == 3
    assert res.stats.series_fetched == 1


def test_unknown_function_is_a_query_error(store: MemorySeriesSelector) -> None:
    with pytest.raises(QueryError, match="not implemented"):
        engine().instant(store, Call("nope", [sel("a")]), 0)


def test_with_at_everywhere_pins_selectors_but_not_inside_subqueries() -> None:
    inner = sel("a")
    e: Expr = BinaryExpr("+", sel("b"), Call("last_over_time", [SubqueryExpr(inner, 5 * M)]))
    out = with_at_everywhere(e, 42)
    assert out is not None
    new, _ = out
    assert isinstance(new, BinaryExpr)
    assert isinstance(new.lhs, VectorSelector) and new.lhs.at == AtModifier(timestamp_ms=42)
    rhs = new.rhs
    assert isinstance(rhs, Call)
    sq = rhs.args[0]
    assert isinstance(sq, SubqueryExpr) and sq.at == AtModifier(timestamp_ms=42)
    assert isinstance(sq.expr, VectorSelector) and sq.expr.at is None
    assert inner.at is None  # the original is untouched
    assert with_at_everywhere(Call("time", [], ValueType.SCALAR), 1) is None


def test_scalar_value_type_in_function_args(store: MemorySeriesSelector) -> None:
    def scalar_fn(ctx: FuncContext, args: list[Value]) -> Value:
        return ScalarSteps(ctx.step_times.astype(np.float64) / 1000.0)

    e = Engine(functions={"time": scalar_fn})
    res = e.range(store, Call("time", [], ValueType.SCALAR), 0, 2 * M, M)
    assert mat(res) == {(): [(0, 0.0), (M, 60.0), (2 * M, 120.0)]}


def test_large_group_sum_and_avg_stay_compensated() -> None:
    s = MemorySeriesSelector()
    values = [1e100, 1.0, -1e100] + [0.5] * 200 + [3.0]
    for i, v in enumerate(values):
        s.add(L("m", i=f"{i:04d}"), [0, M], [v, 2.0])
    res = engine().range(s, AggregateExpr("sum", sel("m")), 0, M, M)
    assert mat(res) == {(): [(0, 104.0), (M, 2.0 * len(values))]}
    res = engine().range(s, AggregateExpr("avg", sel("m")), 0, M, M)
    got = mat(res)[()]
    assert got[0][1] == pytest.approx(104.0 / len(values)) and got[1][1] == 2.0


def test_large_group_avg_falls_back_to_incremental_mean_on_overflow() -> None:
    s = MemorySeriesSelector()
    for i in range(300):
        s.add(L("m", i=f"{i:04d}"), [0], [1.5e308])
    assert vec(engine().instant(s, AggregateExpr("avg", sel("m")), 0)) == {(): pytest.approx(1.5e308)}


def test_annotations_carry_the_position_of_the_expression(agg_store: MemorySeriesSelector) -> None:
    res = Engine().instant(agg_store, "quantile(2, m)", 0)
    assert res.annotations.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)"]


def test_query_strings_are_parsed(store: MemorySeriesSelector) -> None:
    res = Engine().range(store, 'sum by (job) (a{job="x"}) * 2', 0, 2 * M, M)
    assert mat(res) == {L(job="x"): [(0, 0.0), (M, 2.0), (2 * M, 4.0)]}


def test_info_enriches_with_target_info_data_labels() -> None:
    s = MemorySeriesSelector()
    s.add(L("up", instance="a", job="j"), [0, M], [1.0, 1.0])
    s.add(L("target_info", instance="a", job="j", region="eu"), [0], [1.0])
    s.add(L("target_info", instance="a", job="j", region="us"), [M], [1.0])
    e = Call("info", [sel("up")])
    res = engine().range(s, e, 0, M, M)
    assert mat(res) == {L("up", instance="a", job="j", region="eu"): [(0, 1.0)],
                        L("up", instance="a", job="j", region="us"): [(M, 1.0)]}


def test_info_data_matcher_not_matching_empty_drops_unenriched_series() -> None:
    s = MemorySeriesSelector()
    s.add(L("up", instance="a", job="j"), [0], [1.0])
    s.add(L("up", instance="b", job="j"), [0], [2.0])
    s.add(L("target_info", instance="a", job="j", region="eu"), [0], [1.0])
    data = VectorSelector(None, [Matcher.of(MatchType.RE, "region", ".+")])
    got = vec(engine().instant(s, Call("info", [sel("up"), data]), 0))
    assert got == {L("up", instance="a", job="j", region="eu"): 1.0}


def test_smoothed_selector_interpolates(store: MemorySeriesSelector) -> None:
    e = VectorSelector("b", [Matcher.of(MatchType.EQ, "__name__", "b")], smoothed=True)
    # b: 5 at 0, 7 at 10m; the lookback is 5m on both sides, so 4m sees only the left sample
    assert vec(Engine(lookback_delta_ms=10 * M).instant(store, e, 5 * M)) == {L("b", job="x"): 6.0}
    assert vec(engine().instant(store, e, 4 * M)) == {L("b", job="x"): 5.0}


def test_sort_by_label_uses_natural_order() -> None:
    s = MemorySeriesSelector()
    for i in ("10", "9", "100"):
        s.add(L("m", i=i), [0], [1.0])
    res = engine().instant(s, Call("sort_by_label", [sel("m"), StringLiteral("i")]), 0)
    assert [dict(x.labels)["i"] for x in res.series] == ["9", "10", "100"]
    res = engine().instant(s, Call("sort_by_label_desc", [sel("m"), StringLiteral("i")]), 0)
    assert [dict(x.labels)["i"] for x in res.series] == ["100", "10", "9"]


def test_subquery_with_at_is_step_invariant(store: MemorySeriesSelector) -> None:
    e = Call("count_over_time", [SubqueryExpr(sel("a"), 3 * M, M, at=AtModifier(timestamp_ms=5 * M))])
    assert mat(engine().range(store, e, 0, 2 * M, M)) == {L(job="x"): [(0, 3.0), (M, 3.0), (2 * M, 3.0)]}


@pytest.mark.parametrize("n_gone", [0, 1, 3, 5000])
def test_without_positions_matches_a_mask(n_gone: int) -> None:
    from clearsight.query.promql.engine import _without_positions

    rng = np.random.default_rng(n_gone)
    a = rng.random(12_000)
    gone = np.sort(rng.choice(a.shape[0], size=n_gone, replace=False)).astype(np.int64)
    if n_gone == 3:
        gone = np.array([0, 1, a.shape[0] - 1], dtype=np.int64)  # ends and neighbours
    keep = np.ones(a.shape[0], dtype=bool)
    keep[gone] = False
    assert np.array_equal(_without_positions(a, gone), a[keep])
