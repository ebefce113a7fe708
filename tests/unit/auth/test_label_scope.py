"""Query narrowing of label-scoped roles (auth/label_scope.py): every vector selector of any PromQL
query that parses, and every stream selector of a LogQL query, gets the role's matchers, and the
printed query parses again (hypothesis over random token soups); selectors are checked."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.auth.errors import InvalidInput
from clearsight.auth.label_scope import _map, narrow_logql, narrow_promql, parse_selector, rewrite_params
from clearsight.model.matchers import Matcher
from clearsight.query.logql import ast as logql_ast
from clearsight.query.logql.parser import parse_expr as parse_logql
from clearsight.query.promql.ast import VectorSelector
from clearsight.query.promql.parser import ParseError
from clearsight.query.promql.parser import parse as parse_promql

TEXT, EXTRA = parse_selector('{team="payments", env=~"prod|stage"}')
PARTS = st.sampled_from(
    [
        "up",
        "m",
        "sum",
        "rate(",
        "(",
        ")",
        "[5m]",
        "[1m:10s]",
        "{",
        "}",
        'job="a"',
        'team="x"',
        ",",
        " by (job) ",
        "+",
        "/",
        " offset 5m",
        " @ 100",
        "topk(2,",
        "histogram_quantile(0.9,",
        "1",
        "and",
        "or",
        "unless",
        "on(job)",
        "label_replace(",
        '"a"',
        "absent(",
        "vector(1)",
        "time()",
        "count_values(",
        '{__name__=~"m.*"}',
        " ",
    ]
)


def _selectors(node: Any, kind: type) -> list[Any]:
    found: list[Any] = []

    def visit(n: Any) -> Any | None:
        if isinstance(n, kind):
            found.append(n)
        return None

    _map(node, visit)
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(PARTS, min_size=1, max_size=14))
def test_every_promql_selector_is_narrowed(parts: list[str]) -> None:
    query = "".join(parts)
    try:
        before = parse_promql(query)
    except ParseError:
        with pytest.raises(InvalidInput):  # refused, never passed on unnarrowed
            narrow_promql(query, EXTRA)
        return
    after = parse_promql(narrow_promql(query, EXTRA))
    sels = _selectors(after, VectorSelector)
    assert len(sels) == len(_selectors(before, VectorSelector))
    for vs in sels:
        assert set(EXTRA) <= set(vs.matchers), (query, vs)


@pytest.mark.parametrize(
    "query",
    [
        '{app="x"}',
        '{app="x"} |= "err" | json | level="error"',
        'sum by (level) (count_over_time({app="x"} | logfmt [5m]))',
        'sum(rate({app="a"}[1m])) / sum(rate({app="b"}[1m]))',
        'topk(3, sum by (app) (bytes_over_time({app=~".+"}[1h])))',
        'quantile_over_time(0.9, {app="x"} | json | unwrap latency [5m]) by (app)',
    ],
)
def test_every_logql_selector_is_narrowed(query: str) -> None:
    after = parse_logql(narrow_logql(query, EXTRA))
    sels = _selectors(after, logql_ast.LogSelector)
    assert sels and all(set(EXTRA) <= set(s.matchers) for s in sels)
    assert len(sels) == len(_selectors(parse_logql(query), logql_ast.LogSelector))


@pytest.mark.parametrize(
    "bad", ["team", "{}", 'up{team="a"}', '{__name__="up"}', '{a="b"} offset 1m', "{a=", "1"]
)
def test_bad_selectors(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_selector(bad)


def test_params() -> None:
    rule = (("match[]", "match"),)
    assert rewrite_params([("match[]", "up"), ("match[]", '{job="a"}')], rule, TEXT, EXTRA) == [
        ("match[]", 'up{env=~"prod|stage",team="payments"}'),
        ("match[]", '{env=~"prod|stage",job="a",team="payments"}'),
    ]
    assert rewrite_params([("start", "1")], rule, TEXT, EXTRA) == [("start", "1"), ("match[]", TEXT)]
    assert (
        rewrite_params([("match", '{a="b"}')], (("match[]", "logmatch"),), TEXT, EXTRA)[0][1].count("team")
        == 1
    )
    assert all(isinstance(m, Matcher) for m in EXTRA)
