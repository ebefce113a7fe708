"""Generated LogQL queries (valid syntax, random combinations of every construct) evaluated over a
small real store: each answers a value or a clean ``QueryError``, never another exception (which
the HTTP API would turn into a 5xx)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.model.logs import LogBatchBuilder
from clearsight.query.budget import QueryBudget
from clearsight.query.logql.ast import LogSelector, MetricExpr
from clearsight.query.logql.evaluator import LogQLEvaluator, LogQLLimits
from clearsight.query.logql.parser import LogQLParseError, parse_expr
from clearsight.query.logql.printer import format_expr
from clearsight.query.promql.values import QueryError
from clearsight.store.embedded.logs_store import EmbeddedLogStore

S = 1_000_000_000
T0 = 1_764_000_000 * S


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLogStore]:
    st_ = EmbeddedLogStore(Path(tmp_path_factory.mktemp("fuzz")))
    b = LogBatchBuilder()
    a = b.stream(make_labels({"app": "a", "env": "p"}))
    c = b.stream(make_labels({"app": "b", "env": "p"}))
    for i in range(1, 41):
        b.add(a, T0 + i * S, f'{{"level": "{"error" if i % 3 else "info"}", "n": {i}, "d": "{i}ms", "o": {{"k": {i}}}}}',
              attributes=[("trace", f"t{i % 2}")])
        b.add(c, T0 + i * S, f"level={'warn' if i % 2 else 'info'} n={i} d={i}ms size={i}KB msg=\"x y\"")
        b.add(c, T0 + i * S + 1, "\x1b[31mplain\x1b[0m text line")
    st_.append("f", b.build()).result()
    try:
        yield st_
    finally:
        st_.close()


selector = st.sampled_from(['{app="a"}', '{app="b"}', '{env="p"}', '{app=~"a|b"}', '{app!="zz", env="p"}'])
line_filter = st.sampled_from(['|= "n"', '!= "zz"', '|~ "l.v"', '!~ "^x"', '|= "1" or "2"', '|> "<_>n=<_>"',
                               '!> "<_>zz"', '|= ip("10.0.0.0/8")', '!= ip("::1")'])
parser = st.sampled_from(["| json", "| logfmt", "| logfmt --strict", '| regexp "n=(?P<rn>\\\\d+)"',
                          '| pattern "level=<pl> <_>"', "| unpack", "| decolorize", '| json nn="o.k"'])
label_filter = st.sampled_from(['| level="error"', "| n > 5", "| d >= 10ms", "| size < 20KB", '| __error__=""',
                                '| level=~"e.*" or n <= 3', "| n != 7, level!=\"x\"", '| trace="t1"',
                                '| n = ip("1.2.3.0/24")'])
fmt = st.sampled_from(['| line_format "{{.level}} {{.n | printf \\"%03s\\"}}"', '| label_format lv=level',
                       '| label_format q="{{ default \\"-\\" .nope }}"', "| drop n", "| keep app, level"])
stage = st.one_of(line_filter, parser, label_filter, fmt)
pipeline = st.lists(stage, max_size=4).map(" ".join)
rng = st.sampled_from(["[5s]", "[30s]", "[1m]"])
line_op = st.sampled_from(["count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"])
unwrap_op = st.sampled_from(["sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "first_over_time",
                             "last_over_time", "stdvar_over_time", "stddev_over_time", "rate", "rate_counter"])
unwrap = st.sampled_from(["| unwrap n", "| unwrap duration(d)", "| unwrap bytes(size)", '| unwrap n | __error__=""'])
grouping = st.sampled_from(["", " by (level)", " without (n)", " by ()"])


@st.composite
def range_agg(draw: st.DrawFn) -> str:
    sel = draw(selector) + " " + draw(pipeline)
    if draw(st.booleans()):
        return f"{draw(line_op)}({sel} {draw(rng)})"
    op = draw(st.sampled_from(["quantile_over_time", "x"]))
    if op == "quantile_over_time":
        return f"quantile_over_time(0.{draw(st.integers(0, 9))}, {sel} {draw(unwrap)} {draw(rng)}){draw(grouping)}"
    return f"{draw(unwrap_op)}({sel} {draw(unwrap)} {draw(rng)}){draw(grouping)}"


def metric(depth: int) -> st.SearchStrategy[str]:
    base = st.one_of(range_agg(), st.sampled_from(["vector(2)", "3", "0.5"]))
    if depth == 0:
        return base
    inner = metric(depth - 1)
    agg = st.tuples(st.sampled_from(["sum", "avg", "min", "max", "count", "stddev", "stdvar", "sort", "sort_desc"]),
                    grouping, inner).map(lambda t: f"{t[0]}{t[1] if t[0][:4] != 'sort' else ''} ({t[2]})")
    topk = st.tuples(st.sampled_from(["topk", "bottomk"]), st.integers(1, 3), inner).map(
        lambda t: f"{t[0]}({t[1]}, {t[2]})")
    binop = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "^", "> bool", "== bool", "and", "or",
                                              "unless", "/ on(app)", "* ignoring(level) group_left"]), inner).map(
        lambda t: f"({t[0]}) {t[1]} ({t[2]})")
    lr = inner.map(lambda x: f'label_replace({x}, "z", "$1", "app", "(.)")')
    return st.one_of(base, agg, topk, binop, lr)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.one_of(metric(2), st.tuples(selector, pipeline).map(" ".join)), st.booleans())
def test_generated_queries_evaluate_or_fail_cleanly(store: EmbeddedLogStore, text: str, ranged: bool) -> None:
    try:
        e = parse_expr(text)
    except LogQLParseError:
        return  # e.g. a scalar comparison without bool: a clean 400
    assert parse_expr(format_expr(e)) == e
    ev = LogQLEvaluator(store, "f", LogQLLimits(max_series=50), QueryBudget(10**7, time.monotonic() + 30))
    try:
        if isinstance(e, LogSelector):
            ev.logs(e, T0, T0 + 60 * S, 20, "backward" if ranged else "forward")
        else:
            assert isinstance(e, MetricExpr)
            steps = np.arange(T0, T0 + 61 * S, 10 * S) if ranged else np.array([T0 + 45 * S])
            ev.metric(e, steps.astype(np.int64))
    except QueryError:
        pass
