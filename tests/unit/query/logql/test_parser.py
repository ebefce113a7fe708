"""The LogQL parser: selectors, pipelines, metric queries, round trips through the printer,
Loki-style positioned errors, and fuzzing (any input is a tree or a clean ``LogQLParseError``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.matchers import Matcher
from clearsight.query.logql.ast import (
    BinaryOp,
    JsonStage,
    LabelAnd,
    LabelCompare,
    LabelFilterStage,
    LineFilterStage,
    LogfmtStage,
    LogSelector,
    NumberLiteral,
    RangeAggregation,
    Stage,
    Unwrap,
    VectorAggregation,
)
from clearsight.query.logql.parser import LogQLParseError, parse_expr, parse_log_query, pushdown_filters
from clearsight.query.logql.printer import format_expr
from clearsight.query.promql.ast import Cardinality
from clearsight.store.logs_interface import LineFilter


def test_selector_and_chained_filters() -> None:
    q = parse_log_query('{app="api", env=~"prod|stage",x!="",y!~`a.*`} |= "err\\"or" != `time\\out` |~ "(?i)fail" !~ "dbg"')
    assert q.matchers == (Matcher.of("=", "app", "api"), Matcher.of("=~", "env", "prod|stage"),
                          Matcher.of("!=", "x", ""), Matcher.of("!~", "y", "a.*"))
    assert q.filters == (LineFilter("|=", 'err"or'), LineFilter("!=", "time\\out"), LineFilter("|~", "(?i)fail"),
                         LineFilter("!~", "dbg"))
    assert parse_log_query('  {a="b"}  ').filters == ()
    assert parse_log_query('{a="\\u00e9\\n"}').matchers == (Matcher.of("=", "a", "é\n"),)


def test_or_chains_push_down_as_one_regex() -> None:
    q = parse_log_query('{a="b"} |= "x.y" or "z" != "q" or "r" |~ "a+" or "b+"')
    assert q.filters == (LineFilter("|~", "(?:x\\.y)|(?:z)"), LineFilter("!~", "(?:q)|(?:r)"),
                         LineFilter("|~", "(?:a+)|(?:b+)"))
    sel = parse_expr('{a="b"} |= "x" | json |= "y"')
    assert isinstance(sel, LogSelector)
    pushed, rest = pushdown_filters(sel.stages)
    assert pushed == (LineFilter("|=", "x"),)
    assert rest == (JsonStage(), LineFilterStage("|=", ("y",)))
    pushed, rest = pushdown_filters(parse_log_query_stages('{a="b"} |> "<_> x <_>" |= "y"'))
    assert pushed == () and len(rest) == 2


def parse_log_query_stages(text: str) -> tuple[Stage, ...]:
    e = parse_expr(text)
    assert isinstance(e, LogSelector)
    return e.stages


def test_pipeline_stages() -> None:
    e = parse_expr('{a="b"} | json x="p.q", y | logfmt --strict --keep-empty | level="error", status >= 500 '
                   'and took > 1.5s or size <= 2KiB | line_format "{{.x}}" | drop a, b="c" | keep x')
    assert isinstance(e, LogSelector)
    assert e.stages[0] == JsonStage((("x", "p.q"), ("y", "y")))
    assert e.stages[1] == LogfmtStage((), strict=True, keep_empty=True)
    lf = e.stages[2]
    assert isinstance(lf, LabelFilterStage)
    # `,` and `and` bind tighter than `or`
    assert type(lf.expr).__name__ == "LabelOr"
    left = lf.expr.left  # type: ignore[union-attr]
    assert isinstance(left, LabelAnd)
    kinds = []
    node: object = lf.expr
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, LabelCompare):
            kinds.append((n.name, n.kind, n.number))
        else:
            stack += [n.left, n.right]  # type: ignore[attr-defined]
    assert sorted(kinds) == [("level", "string", 0.0), ("size", "bytes", 2048.0), ("status", "number", 500.0),
                             ("took", "duration", 1.5)]


def test_metric_queries() -> None:
    e = parse_expr('sum by (level) (rate({app="api"} | json [5m]))')
    assert isinstance(e, VectorAggregation) and e.op == "sum" and e.grouping is not None
    assert e.grouping.labels == ("level",)
    inner = e.expr
    assert isinstance(inner, RangeAggregation) and inner.range_ns == 300 * 10**9 and inner.op == "rate"
    e = parse_expr('quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(took) | __error__="" [1m] '
                   'offset 1h) by (x)')
    assert isinstance(e, RangeAggregation)
    assert e.param == 0.99 and e.offset_ns == 3600 * 10**9
    assert e.unwrap is not None and e.unwrap.label == "took" and e.unwrap.conversion == "duration"
    assert len(e.unwrap.post_filters) == 1
    # the range may come right after the selector
    assert parse_expr('count_over_time({a="b"}[1m] |= "x")') == parse_expr('count_over_time({a="b"} |= "x" [1m])')
    e = parse_expr('sum(count_over_time({a="b"}[1m])) by (c) / on(c) group_left(d) sum(rate({a="b"}[1m])) by (c) '
                   '> bool 2')
    assert isinstance(e, BinaryOp) and e.op == ">" and e.return_bool
    div = e.lhs
    assert isinstance(div, BinaryOp) and div.matching is not None
    assert div.matching.card is Cardinality.MANY_TO_ONE and div.matching.include == ["d"]
    assert parse_expr("1 + 2 * 3") == BinaryOp("+", NumberLiteral(1.0), BinaryOp("*", NumberLiteral(2.0),
                                                                                  NumberLiteral(3.0)))
    assert parse_expr("2 ^ 3 ^ 2") == BinaryOp("^", NumberLiteral(2.0), BinaryOp("^", NumberLiteral(3.0),
                                                                                 NumberLiteral(2.0)))


ROUND_TRIP = [
    '{a="b"}',
    '{a="b", c=~"d|e", f!="", g!~"h"} |= "x" != "y" |~ "z+" !~ "w" |> "<_> q <_>" !> "<_>zz"',
    '{a="b"} |= "x" or "y" | json | logfmt --strict a="b" | regexp "(?P<n>\\\\d+)" | pattern "<ip> - <_>"',
    '{a="b"} | unpack | decolorize | n >= 5 | d > 1m30s | s < 10MB | x =~ "a.*" or (y != "b" and z == 2)',
    '{a="b"} | line_format "{{.x | ToUpper}} {{ printf \\"%05d\\" .n }}" | label_format x=y, z="{{.q}}"',
    '{a="b"} | drop a, b="c", d=~"e" | keep f, g!="h"',
    'count_over_time({a="b"} [5m])',
    'sum by (x, y) (rate({a="b"} | json [1h30m] offset 5m))',
    'sum without (x) (bytes_rate({a="b"} [10s]))',
    'avg_over_time({a="b"} | logfmt | unwrap bytes(size) | __error__="" [1m]) by (host)',
    'quantile_over_time(0.5, {a="b"} | json | unwrap latency [1m])',
    'topk(3, sum by (a) (count_over_time({a="b"} [1m])))',
    'sort_desc(absent_over_time({a="b"} [1m]))',
    '(sum(rate({a="b"} [1m])) / on(x) group_left(y) sum(rate({a="c"} [1m])))',
    '(count_over_time({a="b"} [1m]) > bool 2)',
    '((vector(1) + 2) * -3)',
    'label_replace(rate({a="b"} [1m]), "dst", "$1", "src", "(.*)")',
    '(rate({a="b"} [1m]) or rate({a="c"} [1m]) unless rate({a="d"} [1m]))',
    'rate_counter({a="b"} | logfmt | unwrap n [5m])',
    '{a="b"} |= ip("10.0.0.0/8") != ip("::1") | logfmt | addr=ip("192.168.4.5-192.168.4.20") or peer!=ip("1.2.3.4")',
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text: str) -> None:
    e = parse_expr(text)
    printed = format_expr(e)
    again = parse_expr(printed)
    assert again == e, printed
    assert format_expr(again) == printed


@pytest.mark.parametrize(("text", "message"), [
    ("", "col 1: syntax error: unexpected end of input, expecting {"),
    ('{a="b"', "col 7: syntax error: unexpected end of input, expecting , or }"),
    ("{}", "col 2: syntax error: unexpected }, expecting IDENTIFIER"),
    ('{a=~".*"}', "at least one regexp or equality matcher"),
    ('{a~"b"}', "col 3: syntax error: unexpected"),
    ('{a="b} |= "x"', "col 12: syntax error: unexpected 'x\"', expecting , or }"),
    ('{a="b"} |= "x', "col 12: syntax error: unterminated string"),
    ('{a="b"} |~ "("', "col 12: error parsing regexp"),
    ('{a=~"("}', "col 5: error parsing regexp"),
    ('{a="b"} |= 5', "col 12: syntax error: unexpected '5', expecting STRING"),
    ('{a="\\q"}', "col 5: syntax error: invalid escape sequence"),
    ('{a="b"} | foo', "col 11: syntax error: unexpected 'foo', expecting a parser"),
    ('{a="b"} | regexp "(\\\\d+)"', "col 18: invalid regexp: at least one named capture must be supplied"),
    ('{a="b"} | pattern "<a><b>"', "col 19: syntax error: invalid pattern"),
    ('{a="b"} | line_format "{{.a"', "col 23: invalid template"),
    ('{a="b"} | line_format "{{ nosuchfn .a }}"', 'function "nosuchfn" not defined'),
    ('{a="b"} | x > "s"', "col 15: syntax error: unexpected STRING"),
    ('{a="b"} | x =~ 5', "expecting STRING"),
    ('sum_over_time({a="b"}[1m])', "col 1: invalid aggregation sum_over_time without unwrap"),
    ('count_over_time({a="b"} | unwrap x [1m])', "invalid aggregation count_over_time with unwrap"),
    ('count_over_time({a="b"})', "expecting [ (a range such as [5m])"),
    ('count_over_time({a="b"}[0s])', "invalid duration"),
    ('sum({a="b"})', "expecting a metric query"),
    ('{a="b"} | unwrap x', "unwrap is only allowed in a range aggregation"),
    ('topk(1.5, rate({a="b"}[1m]))', "is not an integer"),
    ("1 > 2", "comparisons between scalars must use BOOL modifier"),
    ('rate({a="b"}[1m]) + {a="b"}', "binary operations need metric queries"),
    ('rate({a="b"}[1m]) foo', "col 19: syntax error: unexpected 'foo', expecting end of input"),
    ('{a="b"} |~ ip("1.2.3.4")', "ip() needs |= or !="),
    ('{a="b"} |= ip("1.2.3")', "col 15: syntax error: invalid ip() argument"),
    ('{a="b"} | x > ip("1.2.3.4")', "ip() needs = or !="),
])
def test_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(LogQLParseError) as exc:
        parse_expr(text)
    assert str(exc.value).startswith("parse error at line 1, ")
    assert message in str(exc.value)


def test_unwrap_and_post_filters_shape() -> None:
    e = parse_expr('sum_over_time({a="b"} | json | unwrap duration_seconds(t) | __error__="" | t2 > 1 [1m])')
    assert isinstance(e, RangeAggregation)
    assert e.unwrap == Unwrap("t", "duration_seconds", e.unwrap.post_filters if e.unwrap else ())
    assert e.unwrap is not None and len(e.unwrap.post_filters) == 2


_ALPHABET = st.sampled_from([*list('{}()[]|=!~<>,"`\\ .-+*/%^#\n'), "a", "b", "1", "5m", "json", "logfmt", "sum", "rate", "by", "or", "and", "unwrap", "offset", "bool", "on", "count_over_time", "line_format", "{{", "}}", "<_>", "label_format", "vector"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_fuzz_tokens_parse_or_fail_cleanly(text: str) -> None:
    try:
        e = parse_expr(text)
    except LogQLParseError as err:
        assert str(err).startswith("parse error at line ")
        return
    assert format_expr(e)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_fuzz_text_parse_or_fail_cleanly(text: str) -> None:
    for candidate in (text, '{a="b"} ' + text, 'rate({a="b"} ' + text):
        try:
            parse_expr(candidate)
        except LogQLParseError:
            pass


@pytest.mark.parametrize("text", ["(" * 3000 + "1" + ")" * 3000, "sum(" * 500 + "vector(1)" + ")" * 500,
                                  '{a="b"} | ' + "(" * 3000 + 'a="b"' + ")" * 3000, "1" + " + 1" * 5000])
def test_deep_nesting_is_a_parse_error_not_a_crash(text: str) -> None:
    with pytest.raises(LogQLParseError, match="nested more than"):
        parse_expr(text)
