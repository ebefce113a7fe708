"""Canonical formatting (format_expr), checked against Prometheus' format_query output."""

from __future__ import annotations

import math

import pytest

from clearsight.query.promql.parser import parse
from clearsight.query.promql.printer import format_duration, format_expr, format_float


@pytest.mark.parametrize(("q", "want"), [
    ("sum by(job) (rate(foo[5m]))", "sum by (job) (rate(foo[5m]))"),
    ("sum(rate(foo[5m])) by (job)", "sum by (job) (rate(foo[5m]))"),
    ("sum by() (x)", "sum(x)"),
    ("sum without() (x)", "sum without () (x)"),
    ("sum without(instance) (x)", "sum without (instance) (x)"),
    ('sum by("foo.bar") (x)', 'sum by ("foo.bar") (x)'),
    ("topk(5, x)", "topk(5, x)"),
    ("topk(5, x) by (a)", "topk by (a) (5, x)"),
    ('count_values("value", x)', 'count_values("value", x)'),
    ("a - on() c", "a - on () c"),
    ("a - on(b) group_left(x, y) c", "a - on (b) group_left (x, y) c"),
    ("a - on(b) group_left c", "a - on (b) group_left () c"),
    ("a - ignoring(b) c", "a - ignoring (b) c"),
    ("a - ignoring() c", "a - c"),
    ("a - ignoring() group_left c", "a - ignoring () group_left () c"),
    ("a and b", "a and b"),
    ("a > bool b", "a > bool b"),
    ("a + fill(-23) b", "a + fill (-23) b"),
    ("a + fill_left(-23) fill_right(42) b", "a + fill_left (-23) fill_right (42) b"),
    ("a + fill_left(5) fill_right(5) b", "a + fill (5) b"),
    ("a + fill(1e6) b", "a + fill (1e+06) b"),
    ("a @ 10", "a @ 10.000"),
    ("a[1m] @ 10", "a[1m] @ 10.000"),
    ("a @ start()", "a @ start()"),
    ("a[1m] offset 1h30m @ end()", "a[1m] @ end() offset 1h30m"),
    ("a offset -5m", "a offset -5m"),
    ("a[5m:] offset 1m", "a[5m:] offset 1m"),
    ("rate(a[5m])[1h:1m] @ 100", "rate(a[5m])[1h:1m] @ 100.000"),
    ("a[90s]", "a[1m30s]"),
    ("a[3600000ms]", "a[1h]"),
    ("a[1w]", "a[1w]"),
    ("a[26m+4m]", "a[30m]"),
    ("a[step() + 1m]", "a[step() + 1m]"),
    ("a[max_of(range(), 5s)]", "a[max_of(range(), 5s)]"),
    ("a offset -min_of(step(), 1s)", "a offset -min_of(step(), 1s)"),
    ("increase(a[1m] anchored)", "increase(a[1m] anchored)"),
    ("rate(a[1m] smoothed offset 1m)", "rate(a[1m] smoothed offset 1m)"),
    ('{"_0"="1"}', '{_0="1"}'),
    ('{"0"="1"}', '{"0"="1"}'),
    ('{"a.b"="c"}', '{"a.b"="c"}'),
    ('foo{b="2", a="1"}', 'foo{a="1",b="2"}'),
    ('{__name__="foo", job="x"}', '{__name__="foo",job="x"}'),
    ('{"my.metric"}', '{__name__="my.metric"}'),
    ('foo{a="line\\nbreak \\"q\\""}', 'foo{a="line\\nbreak \\"q\\""}'),
    ("'single'", '"single"'),
    ("`raw\\n`", '"raw\\\\n"'),
    ("-foo", "-foo"),
    ("-(1 + 2)", "-(1 + 2)"),
    ("- -1", "1"),
    ("1e100", "1" + "0" * 100),
    ("0.0000001", "0.0000001"),
    ("0x10", "16"),
    ("Inf", "+Inf"),
    ("-Inf", "-Inf"),
    ("NaN", "NaN"),
    ("5m", "5m"),
    ("-5m", "-5m"),
    ("2 ^ 3 ^ 4", "2 ^ 3 ^ 4"),
    ("(2 ^ 3) ^ 4", "(2 ^ 3) ^ 4"),
    ("a # comment\n  or b", "a or b"),
])
def test_format(q: str, want: str) -> None:
    assert format_expr(parse(q)) == want


@pytest.mark.parametrize(("ms", "want"), [
    (0, "0s"), (1, "1ms"), (1000, "1s"), (90_500, "1m30s500ms"), (86_400_000, "1d"),
    (8 * 86_400_000, "1w1d"), (365 * 86_400_000 + 1, "1y1ms"), (-60_000, "-1m"),
])
def test_format_duration(ms: int, want: str) -> None:
    assert format_duration(ms) == want


@pytest.mark.parametrize(("v", "want"), [
    (1.0, "1"), (-0.5, "-0.5"), (1e21, "1000000000000000000000"), (1.5e-7, "0.00000015"),
    (123456.789, "123456.789"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (0.1 + 0.2, "0.30000000000000004"),
])
def test_format_float(v: float, want: str) -> None:
    assert format_float(v) == want


def test_prettify_keeps_short_queries_on_one_line() -> None:
    from clearsight.query.promql.printer import prettify_expr

    assert prettify_expr(parse("sum(rate(foo[5m])) by (job)")) == "sum by (job) (rate(foo[5m]))"


def test_prettify_splits_long_nodes() -> None:
    from clearsight.query.promql.printer import prettify_expr

    sel = 'http_requests_total{job="apiserver", handler="/api/comments", instance="localhost:9090"}'
    q = f"sum by (job) (rate({sel}[5m])) / on (job) group_left () sum by (job) (rate({sel}[5m]))"
    inner = 'rate(http_requests_total{handler="/api/comments",instance="localhost:9090",job="apiserver"}[5m])'
    want = "\n".join([
        "  sum by (job) (", f"    {inner}", "  )",
        "/ on (job) group_left ()",
        "  sum by (job) (", f"    {inner}", "  )",
    ])
    got = prettify_expr(parse(q))
    assert got == want
    assert format_expr(parse(got)) == format_expr(parse(q))


def test_prettify_aggregation_with_param_and_unary() -> None:
    from clearsight.query.promql.printer import prettify_expr

    name = "a_very_long_metric_name_" + "x" * 90
    got = prettify_expr(parse(f"-topk(5, {name})"))
    assert got == f"-topk(\n  5,\n  {name}\n)"


def test_ast_to_json_shape() -> None:
    import json

    from clearsight.query.promql.printer import ast_to_json

    tree = ast_to_json(parse('sum by (job) (rate(foo{a="b"}[5m] offset (step()+1m))) > bool on(job) bar @ start()'))
    json.dumps(tree)  # serializable
    assert tree["type"] == "binaryExpr" and tree["op"] == ">" and tree["bool"] is True
    assert tree["matching"] == {"card": "one-to-one", "labels": ["job"], "on": True, "include": [],
                                "fillValues": {"lhs": None, "rhs": None}}
    agg = tree["lhs"]
    assert (agg["type"], agg["op"], agg["grouping"], agg["without"], agg["param"]) == (
        "aggregation", "sum", ["job"], False, None)
    call = agg["expr"]
    assert call["func"] == {"name": "rate", "argTypes": ["matrix"], "variadic": 0, "returnType": "vector"}
    ms = call["args"][0]
    assert (ms["type"], ms["name"], ms["range"], ms["rangeExpr"], ms["offset"]) == (
        "matrixSelector", "foo", 300_000, None, 0)
    assert ms["offsetExpr"] == {
        "type": "durationExpr", "op": "+", "wrapped": True,
        "lhs": {"type": "durationExpr", "op": "step", "lhs": None, "rhs": None, "wrapped": False},
        "rhs": {"type": "numberLiteral", "val": "60", "duration": True}}
    assert ms["matchers"] == [{"name": "a", "value": "b", "type": "="},
                              {"name": "__name__", "value": "foo", "type": "="}]
    rhs = tree["rhs"]
    assert (rhs["type"], rhs["startOrEnd"], rhs["timestamp"]) == ("vectorSelector", "start", None)
    sq = ast_to_json(parse("-max_over_time((foo)[5m:] @ 10)"))
    assert sq["type"] == "unaryExpr"
    inner = sq["expr"]["args"][0]
    assert (inner["type"], inner["range"], inner["step"], inner["timestamp"]) == ("subquery", 300_000, 0, 10_000)
    assert inner["expr"]["type"] == "parenExpr"
    assert ast_to_json(parse('"s"')) == {"type": "stringLiteral", "val": "s"}
