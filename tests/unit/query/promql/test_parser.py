"""Unit tests for the PromQL parser: one group per construct, then errors."""

from __future__ import annotations

import math

import pytest

from clearsight.model.matchers import Matcher, MatchType
from clearsight.query.promql.ast import (
    AggregateExpr,
    AtModifier,
    BinaryExpr,
    Call,
    Cardinality,
    DurationExpr,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorMatching,
    VectorSelector,
)
from clearsight.query.promql.parser import (
    ParseError,
    parse,
    parse_duration,
    parse_duration_param,
    parse_metric,
    parse_series_selector,
    resolve_duration,
)


def vs(name: str | None, *matchers: tuple[str, str, str], offset: int = 0,
       at: AtModifier | None = None) -> VectorSelector:
    ms = [Matcher.of(t, n, v) for n, t, v in matchers]
    if name is not None:
        ms.append(Matcher.of(MatchType.EQ, "__name__", name))
    return VectorSelector(name=name, matchers=ms, offset=offset, at=at)


def num(v: float) -> NumberLiteral:
    return NumberLiteral(v)


def perr(q: str) -> ParseError:
    with pytest.raises(ParseError) as ei:
        parse(q)
    return ei.value


# --- literals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "want"), [
    ("1", 1.0), ("+1", 1.0), ("-1", -1.0), ("1.5", 1.5), (".5", 0.5), ("5.", 5.0),
    ("1e3", 1000.0), ("1E-2", 0.01), ("0x1F", 31.0), ("0X_ff", 255.0), ("010", 8.0),
    ("1_000", 1000.0), ("Inf", math.inf), ("+inf", math.inf), ("-INF", -math.inf),
    ("99999999999999999999", 1e20),
])
def test_number_literals(q: str, want: float) -> None:
    e = parse(q)
    assert isinstance(e, NumberLiteral)
    assert e.value == want


def test_nan_literal_any_case() -> None:
    for q in ("NaN", "nan", "nAn"):
        e = parse(q)
        assert isinstance(e, NumberLiteral) and math.isnan(e.value)


@pytest.mark.parametrize(("q", "seconds"), [("5m", 300.0), ("1h30m", 5400.0), ("100ms", 0.1),
                                            ("1y", 365 * 86400.0), ("2w", 14 * 86400.0)])
def test_durations_are_numbers_in_expressions(q: str, seconds: float) -> None:
    e = parse(q)
    assert e == NumberLiteral(seconds, duration=True)
    assert e.type is ValueType.SCALAR


@pytest.mark.parametrize(("q", "want"), [
    ('"abc"', "abc"), ("'abc'", "abc"), ("`a\\nb`", "a\\nb"),
    (r'"a\nb\tc\\d\"e"', 'a\nb\tc\\d"e'), (r"'it\'s'", "it's"), (r'"\x41\101\u00e9\U0001F600"', "AAé😀"),
    ('"☺"', "☺"),
])
def test_string_literals(q: str, want: str) -> None:
    assert parse(q) == StringLiteral(want)


def test_string_with_invalid_utf8_byte_escape_is_kept_as_surrogate() -> None:
    e = parse(r'"a\xc5z"')
    assert isinstance(e, StringLiteral)
    assert e.value.encode("utf-8", "surrogateescape") == b"a\xc5z"


# --- selectors --------------------------------------------------------------------------------


def test_vector_selector_forms() -> None:
    assert parse("foo") == vs("foo")
    assert parse("foo:bar:rate5m") == vs("foo:bar:rate5m")
    assert parse('foo{a="b"}') == vs("foo", ("a", "=", "b"))
    assert parse('foo{a="b", c!="d", e=~"f.*", g!~"h",}') == vs(
        "foo", ("a", "=", "b"), ("c", "!=", "d"), ("e", "=~", "f.*"), ("g", "!~", "h"))
    assert parse('{__name__="foo"}') == vs(None, ("__name__", "=", "foo"))
    assert parse('{__name__=~"foo|bar"}') == vs(None, ("__name__", "=~", "foo|bar"))


def test_utf8_quoted_names() -> None:
    assert parse('{"my.metric"}') == vs(None, ("__name__", "=", "my.metric"))
    assert parse('{"my.metric", "label.x"="v"}') == vs(
        None, ("__name__", "=", "my.metric"), ("label.x", "=", "v"))
    e = parse('sum by ("foo.bar") (x)')
    assert isinstance(e, AggregateExpr) and e.grouping == ["foo.bar"]


def test_keywords_as_label_and_metric_names() -> None:
    assert parse('foo{by="1", on="2", offset="3", sum="4", and="5"}') == vs(
        "foo", ("by", "=", "1"), ("on", "=", "2"), ("offset", "=", "3"), ("sum", "=", "4"),
        ("and", "=", "5"))
    e = parse("sum by (on, offset, sum, bool) (x)")
    assert isinstance(e, AggregateExpr) and e.grouping == ["on", "offset", "sum", "bool"]
    # fill/fill_left/fill_right are only keywords when followed by "(" (Prometheus 3.x)
    e2 = parse("fill + fill_left")
    assert isinstance(e2, BinaryExpr) and e2.lhs == vs("fill") and e2.rhs == vs("fill_left")
    assert parse("offset") == vs("offset")
    assert parse('min{a="b"}') == vs("min", ("a", "=", "b"))


def test_matrix_selector() -> None:
    e = parse("foo[5m]")
    assert e == MatrixSelector(vector=vs("foo"), range=300_000)
    assert e.type is ValueType.MATRIX
    assert parse("foo[1h30m]") == MatrixSelector(vector=vs("foo"), range=5_400_000)
    assert parse("foo[90]") == MatrixSelector(vector=vs("foo"), range=90_000)
    assert parse("foo[1.5]") == MatrixSelector(vector=vs("foo"), range=1_500)


def test_offset_and_at() -> None:
    assert parse("foo offset 5m") == vs("foo", offset=300_000)
    assert parse("foo offset -5m") == vs("foo", offset=-300_000)
    assert parse("foo OFFSET 1h") == vs("foo", offset=3_600_000)
    assert parse("foo[5m] offset 1m") == MatrixSelector(vector=vs("foo", offset=60_000), range=300_000)
    assert parse("foo @ 100") == vs("foo", at=AtModifier(timestamp_ms=100_000))
    assert parse("foo @ -1.5") == vs("foo", at=AtModifier(timestamp_ms=-1_500))
    assert parse("foo @ 1e3") == vs("foo", at=AtModifier(timestamp_ms=1_000_000))
    assert parse("foo @ start()") == vs("foo", at=AtModifier(start_or_end="start"))
    assert parse("foo @ end()") == vs("foo", at=AtModifier(start_or_end="end"))
    both = vs("foo", offset=60_000, at=AtModifier(timestamp_ms=5_000))
    assert parse("foo @ 5 offset 1m") == both
    assert parse("foo offset 1m @ 5") == both
    assert parse("foo[5m] @ 5 offset 1m") == MatrixSelector(vector=both, range=300_000)


def test_subqueries() -> None:
    inner = Call("rate", [MatrixSelector(vector=vs("foo"), range=60_000)], ValueType.VECTOR)
    assert parse("rate(foo[1m])[5m:1m]") == SubqueryExpr(expr=inner, range=300_000, step=60_000)
    assert parse("rate(foo[1m])[5m:]") == SubqueryExpr(expr=inner, range=300_000, step=0)
    e = parse("foo[5m:] offset 1m @ end()")
    assert e == SubqueryExpr(expr=vs("foo"), range=300_000, offset=60_000,
                             at=AtModifier(start_or_end="end"))
    nested = parse("max_over_time(max_over_time(rate(foo[1m])[5m:1m])[10m:])")
    assert isinstance(nested, Call)
    outer = nested.args[0]
    assert isinstance(outer, SubqueryExpr) and isinstance(outer.expr, Call)
    assert isinstance(outer.expr.args[0], SubqueryExpr)


# --- operators --------------------------------------------------------------------------------


def test_arithmetic_precedence_and_associativity() -> None:
    e = parse("1 + 2 * 3 ^ 4 ^ 5")
    assert e == BinaryExpr("+", num(1), BinaryExpr("*", num(2), BinaryExpr(
        "^", num(3), BinaryExpr("^", num(4), num(5)))))
    e = parse("1 - 2 - 3")
    assert e == BinaryExpr("-", BinaryExpr("-", num(1), num(2)), num(3))
    e = parse("a or b and c unless d")
    assert isinstance(e, BinaryExpr) and e.op == "or"
    assert isinstance(e.rhs, BinaryExpr) and e.rhs.op == "unless"
    e = parse("a + b > bool c * d")
    assert isinstance(e, BinaryExpr) and e.op == ">" and e.return_bool
    e = parse("2 * 3 atan2 4")
    assert e == BinaryExpr("atan2", BinaryExpr("*", num(2), num(3)), num(4))


def test_unary_binds_like_multiplication() -> None:
    # -a ^ b is -(a ^ b); -a * b is (-a) * b
    assert parse("-2 ^ 2") == UnaryExpr("-", BinaryExpr("^", num(2), num(2)))
    assert parse("-2 * 3") == BinaryExpr("*", num(-2), num(3))
    assert parse("-foo") == UnaryExpr("-", vs("foo"))
    assert parse("+foo") == UnaryExpr("+", vs("foo"))
    assert parse("- -1") == num(1)
    assert parse("-foo offset 5m") == UnaryExpr("-", vs("foo", offset=300_000))
    assert parse("2 ^ -1") == BinaryExpr("^", num(2), num(-1))


def test_vector_matching_modifiers() -> None:
    e = parse("a + on(b, c) group_left(d) e")
    assert isinstance(e, BinaryExpr)
    assert e.matching == VectorMatching(card=Cardinality.MANY_TO_ONE, on=True, labels=["b", "c"],
                                        include=["d"])
    e = parse("a / ignoring(b) group_right e")
    assert isinstance(e, BinaryExpr)
    assert e.matching == VectorMatching(card=Cardinality.ONE_TO_MANY, on=False, labels=["b"])
    e = parse("a and on() b")
    assert isinstance(e, BinaryExpr)
    assert e.matching == VectorMatching(card=Cardinality.MANY_TO_MANY, on=True)
    e = parse("a > bool on(x) b")
    assert isinstance(e, BinaryExpr) and e.return_bool and e.matching is not None and e.matching.on
    # no matching between a vector and a scalar
    e = parse("a * 2")
    assert isinstance(e, BinaryExpr) and e.matching is None
    assert e.type is ValueType.VECTOR
    assert parse("1 + 2").type is ValueType.SCALAR


def test_fill_modifiers() -> None:
    e = parse("a + fill(0) b")
    assert isinstance(e, BinaryExpr) and e.matching is not None
    assert (e.matching.fill_left, e.matching.fill_right) == (0.0, 0.0)
    e = parse("a + fill_left(-1) b")
    assert isinstance(e, BinaryExpr) and e.matching is not None
    assert (e.matching.fill_left, e.matching.fill_right) == (-1.0, None)
    e = parse("a + fill_right(2) fill_left(3) b")
    assert isinstance(e, BinaryExpr) and e.matching is not None
    assert (e.matching.fill_left, e.matching.fill_right) == (3.0, 2.0)
    e = parse("a + on(x) group_left(y) fill_left(1) fill_right(2) b")
    assert isinstance(e, BinaryExpr) and e.matching is not None
    assert e.matching.card is Cardinality.MANY_TO_ONE
    assert (e.matching.fill_left, e.matching.fill_right) == (1.0, 2.0)


def test_set_and_trim_operators() -> None:
    e = parse("a unless b")
    assert isinstance(e, BinaryExpr) and e.matching is not None
    assert e.matching.card is Cardinality.MANY_TO_MANY
    e = parse("h >/ -Inf")
    assert isinstance(e, BinaryExpr) and e.op == ">/" and e.rhs == num(-math.inf)
    e = parse("h </ 10")
    assert isinstance(e, BinaryExpr) and e.op == "</"


# --- aggregations and calls -------------------------------------------------------------------


def test_aggregations() -> None:
    want = AggregateExpr("sum", vs("x"), grouping=["a", "b"])
    assert parse("sum by (a, b) (x)") == want
    assert parse("sum(x) by (a, b,)") == want
    assert parse("SUM BY (a, b) (x)") == want
    assert parse("sum without (a) (x)") == AggregateExpr("sum", vs("x"), grouping=["a"], without=True)
    assert parse("sum without () (x)") == AggregateExpr("sum", vs("x"), without=True)
    assert parse("topk(3, x)") == AggregateExpr("topk", vs("x"), param=num(3))
    assert parse('count_values("v", x)') == AggregateExpr("count_values", vs("x"), param=StringLiteral("v"))
    assert parse("quantile(0.9, x) by (a)") == AggregateExpr("quantile", vs("x"), param=num(0.9),
                                                             grouping=["a"])
    assert parse("limitk(2, x)") == AggregateExpr("limitk", vs("x"), param=num(2))
    assert parse("limit_ratio(0.5, x)") == AggregateExpr("limit_ratio", vs("x"), param=num(0.5))
    assert parse("group(x)") == AggregateExpr("group", vs("x"))


def test_calls_set_return_type() -> None:
    e = parse("rate(foo[5m])")
    assert e == Call("rate", [MatrixSelector(vector=vs("foo"), range=300_000)], ValueType.VECTOR)
    e = parse("time()")
    assert e == Call("time", [], ValueType.SCALAR) and e.type is ValueType.SCALAR
    assert parse("scalar(foo)").type is ValueType.SCALAR
    assert isinstance(parse("round(foo)"), Call)
    assert isinstance(parse("round(foo, 5)"), Call)
    assert isinstance(parse('label_join(foo, "a", ",", "b", "c", "d")'), Call)
    assert isinstance(parse('sort_by_label(foo, "a", "b")'), Call)
    assert isinstance(parse("histogram_quantile(0.9, rate(foo[5m]))"), Call)
    assert isinstance(parse('info(foo, {k8s_cluster_name=~".+"})'), Call)
    assert isinstance(parse("info(foo)"), Call)
    assert parse("start()") == Call("start", [], ValueType.SCALAR)
    assert parse("pi()").type is ValueType.SCALAR


def test_parens_and_comments() -> None:
    assert parse("(1)") == ParenExpr(num(1))
    assert parse("((foo))") == ParenExpr(ParenExpr(vs("foo")))
    assert parse("foo # a comment\n+ 1") == BinaryExpr("+", vs("foo"), num(1))
    assert parse("# leading comment\nfoo") == vs("foo")


# --- duration expressions ---------------------------------------------------------------------


@pytest.mark.parametrize(("q", "ms"), [
    ("foo[26m+4m]", 1_800_000), ("foo[2m*(10+5)]", 1_800_000), ("foo[1h/2]", 1_800_000),
    ("foo[60*30]", 1_800_000), ("foo[1h30m % 1h]", 1_800_000), ("foo[-5m+35m]", 1_800_000),
    ("foo[24m+((1.5*2m)+2m)]", 1_740_000), ("foo[2^3]", 8_000),
    ("foo[max_of(1m, 2m)]", 120_000), ("foo[min_of(1m, 2m)]", 60_000),
])
def test_constant_duration_expressions_are_folded(q: str, ms: int) -> None:
    e = parse(q)
    assert isinstance(e, MatrixSelector) and e.range == ms


def test_offset_duration_expressions() -> None:
    assert parse("foo offset (1m+2m)") == vs("foo", offset=180_000)
    assert parse("foo offset -(1m+2m)") == vs("foo", offset=-180_000)
    # without parentheses an offset takes one signed operand; the rest is a binary expression
    assert parse("foo offset 100 + 2") == BinaryExpr("+", vs("foo", offset=100_000), num(2))
    assert parse("foo offset -2 ^ 2") == BinaryExpr("^", vs("foo", offset=-2_000), num(2))
    assert parse("foo offset (-2 ^ 2)") == vs("foo", offset=-4_000)


def test_subquery_duration_expressions() -> None:
    e = parse("foo[29s+1s:20*500ms] offset (20*2)")
    assert e == SubqueryExpr(vs("foo"), range=30_000, step=10_000, offset=40_000)


def test_step_and_range_durations_are_deferred() -> None:
    e = parse("count_over_time(foo[step()+1ms])")
    assert isinstance(e, Call)
    m = e.args[0]
    assert isinstance(m, MatrixSelector) and isinstance(m.range, DurationExpr)
    assert resolve_duration(m.range, step_ms=10_000, range_ms=0) == 10_001
    e2 = parse("foo offset min_of(step(), 1s)")
    assert isinstance(e2, VectorSelector) and isinstance(e2.offset, DurationExpr)
    assert resolve_duration(e2.offset, step_ms=5_000, range_ms=0, allow_negative=True) == 1_000
    e3 = parse("foo offset -step()*2")
    assert isinstance(e3, BinaryExpr) and isinstance(e3.lhs, VectorSelector)
    assert isinstance(e3.lhs.offset, DurationExpr)
    assert resolve_duration(e3.lhs.offset, step_ms=5_000, range_ms=0, allow_negative=True) == -5_000
    e4 = parse("foo[range()]")
    assert isinstance(e4, MatrixSelector) and isinstance(e4.range, DurationExpr)
    assert resolve_duration(e4.range, step_ms=1, range_ms=10_000) == 10_000
    with pytest.raises(ValueError, match="duration must be greater than 0"):
        resolve_duration(e4.range, step_ms=1, range_ms=0)
    e5 = parse("foo[1+(STep()-5)*2]")
    assert isinstance(e5, MatrixSelector) and isinstance(e5.range, DurationExpr)
    assert resolve_duration(e5.range, step_ms=10_000, range_ms=0) == 11_000


def test_computed_non_positive_range_fails_at_evaluation() -> None:
    e = parse("foo[-2^2]")
    assert isinstance(e, MatrixSelector) and isinstance(e.range, DurationExpr)
    with pytest.raises(ValueError, match="greater than 0"):
        resolve_duration(e.range, step_ms=1000, range_ms=0)


def test_anchored_and_smoothed() -> None:
    e = parse("increase(foo[1m] anchored)")
    assert isinstance(e, Call)
    m = e.args[0]
    assert isinstance(m, MatrixSelector) and m.anchored and not m.smoothed
    e = parse("rate(foo[1m] smoothed)")
    assert isinstance(e, Call)
    m = e.args[0]
    assert isinstance(m, MatrixSelector) and m.smoothed
    i = parse("foo anchored")
    assert isinstance(i, VectorSelector) and i.anchored


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "msg", "pos"), [
    ("", "no expression found in input", 0),
    ("# only a comment\n", "no expression found in input", 0),
    ("1+", "unexpected end of input", 2),
    ("*1", "unexpected <op:*>", 0),
    ("(1))", "unexpected right parenthesis ')'", 4),
    ("((1)", "unclosed left parenthesis", 4),
    (".", "unexpected character: '.'", 0),
    ("2.5.", 'bad number or duration syntax: "2.5."', 0),
    ("0deadbeef", 'bad number or duration syntax: "0de"', 0),
    ("1 == 1", "comparisons between scalars must use BOOL modifier", 2),
    ("1 and 1", 'set operator "and" not allowed in binary scalar expression', 0),
    ("foo or 1", 'set operator "or" not allowed in binary scalar expression', 0),
    ("1 =~ 1", "unexpected character after '=': '~'", 2),
    ('-"s"', 'unary expression only allowed on expressions of type scalar or instant vector, got "string"', 0),
    ("-foo[5m]", 'unary expression only allowed on expressions of type scalar or instant vector, got "range vector"', 0),
    ("1 offset 1d", "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0),
    ("foo offset 1s offset 2s", "offset may not be set multiple times", 0),
    ("foo @ 1 @ 2", "@ <timestamp> may not be set multiple times", 0),
    ("a - on(b) ignoring(c) d", "unexpected <ignoring>", 10),
    ("foo + group_left(baz) bar", "unexpected <group_left>", 6),
    ("foo == on(bar) 10", "vector matching only allowed between instant vectors", 0),
    ("foo and on(bar) group_left(baz) bar", 'no grouping allowed for "and" operation', 0),
    ("foo + bool bar", "bool modifier can only be used on comparison operators", 4),
    ("a + on(x) group_left(x) b", 'label "x" must not occur in ON and GROUP clause at once', 2),
    ("a and fill(0) b", "filling in missing series not allowed for set operators", 0),
    ("a + fill(0) 1", "filling in missing series only allowed between instant vectors", 0),
    ("foo @ +Inf", "timestamp out of bounds for @ modifier: +Inf", 0),
    ("foo @ NaN", "timestamp out of bounds for @ modifier: NaN", 0),
    ("{", "unexpected end of input inside braces", 1),
    ("}", "unexpected character: '}'", 0),
    ("some_metric{a=b}", 'unexpected identifier "b" in label matching, expected string', 14),
    ("foo{a*\"b\"}", "unexpected character inside braces: '*'", 5),
    ("foo{gibberish}", 'unexpected "}" in label matching, expected label matching operator', 13),
    ("foo{,}", 'unexpected "," in label matching, expected identifier or "}"', 4),
    ('foo{a="b" c}', 'unexpected identifier "c" in label matching, expected "," or "}"', 10),
    ("{}", "vector selector must contain at least one non-empty matcher", 0),
    ('{x=~".*"}', "vector selector must contain at least one non-empty matcher", 0),
    ('foo{__name__="bar"}', 'metric name must not be set twice: "foo" or "bar"', 0),
    ("foo[5mm]", 'bad number or duration syntax: "5mm"', 4),
    ("foo[5m1h]", 'not a valid duration string: "5m1h"', 4),
    ("foo[5y1hs]", 'unknown unit "hs" in duration "5y1hs"', 4),
    ("foo[0m]", "duration must be greater than 0", 4),
    ("foo[-1]", "duration must be greater than 0", 4),
    ('foo["5m"]', "unexpected character in duration expression: '\"'", 4),
    ("foo[]", 'unexpected "]" in subquery or range selector, expected number, duration, step(), or range()', 4),
    ("foo[step]", 'unexpected "]" in subquery or range selector, expected number, duration, step(), or range()', 8),
    ("foo[5s x 5s]", "unexpected character: 'x', expected ':'", 7),
    ("foo[5s/0d]", "division by zero", 6),
    ("foo[5s%0d]", "modulo by zero", 6),
    ("foo offset (4d/0)", "division by zero", 14),
    ("foo offset 9.5e10", "duration out of range", 11),
    ("foo[5m] OFFSET", "unexpected end of input in offset, expected number, duration, step(), or range()", 14),
    ("foo[5m] @", "unexpected end of input in @, expected timestamp", 9),
    ("foo OFFSET 1m[5m]", "no offset modifiers allowed before range", 13),
    ("foo @ 1234 [5m]", "no @ modifiers allowed before range", 11),
    ("(foo + bar)[5m]", "ranges only allowed for vector selectors", 11),
    ("rate(food[1m])[1h] offset 1h", "ranges only allowed for vector selectors", 14),
    ("1[5m] smoothed", "ranges only allowed for vector selectors", 1),
    ("foo[5m] anchored smoothed", "anchored and smoothed modifiers cannot be used together", 0),
    ("foo[5m:1m] anchored", "anchored modifier is not supported for subqueries", 0),
    ("foo[5d] offset 10s [10m:5s]", "subquery is only allowed on instant vector, got matrix instead", 0),
    ('sum by ("foo)(x)', "unterminated quoted string", 8),
    ("sum without(==)(x)", "unexpected <op:==> in grouping opts, expected label", 12),
    ("sum without(foo,,)(x)", 'unexpected "," in grouping opts, expected label', 16),
    ("sum x by (test)", 'unexpected identifier "x"', 4),
    ("sum (x) by test", 'unexpected identifier "test" in grouping opts, expected "("', 11),
    ("sum () by (test)", "no arguments for aggregate expression provided", 0),
    ("sum (x) without (a) by (b)", "unexpected <by>", 20),
    ("topk(x)", "wrong number of arguments for aggregate expression provided, expected 2, got 1", 0),
    ("topk(x,)", "trailing commas not allowed in function call args", 6),
    ("topk(x, y)", "expected type scalar in aggregation parameter, got instant vector", 5),
    ("count_values(5, x)", "expected type string in aggregation parameter, got scalar", 13),
    ("sum(foo[5m])", "expected type instant vector in aggregation expression, got range vector", 4),
    ("rate(x[5m]) @ 1234", "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0),
    ("floor()", 'expected 1 argument(s) in call to "floor", got 0', 0),
    ("floor(1)", 'expected type instant vector in call to function "floor", got scalar', 6),
    ("hour(a, b, c)", 'expected at most 1 argument(s) in call to "hour", got 3', 0),
    ("label_join(a)", 'expected at least 3 argument(s) in call to "label_join", got 1', 0),
    ("time(x)", 'expected 0 argument(s) in call to "time", got 1', 0),
    ("nonexistent()", 'unknown function with name "nonexistent"', 0),
    ("rate(x)", 'expected type range vector in call to function "rate", got instant vector', 5),
    ("a>b()", 'unknown function with name "b"', 2),
    ("`abc", "unterminated raw string", 0),
    ('"\\c"', "unknown escape sequence U+0063 'c'", 0),
    ('"\\x."', "illegal character U+002E '.' in escape sequence", 0),
    ("foo[", "unexpected end of input in duration expression", 4),
    ("sum(rate(", "unclosed left parenthesis", 9),
    ('info(rate(x[5m]), target_info{a="b"})', "expected label selectors only, got vector selector instead", 18),
    ('info(x, {a="b"} == 1)', "expected label selectors only", 8),
    ("foo + 'a'", "binary expression must contain only scalar and instant vector types", 6),
    ("sum by (a)", "unexpected end of input in aggregation", 10),
    ("sum(a b)", 'unexpected identifier "b" in aggregation', 6),
    ("rate(a b)", 'unexpected identifier "b"', 7),
    ("foo start", 'unexpected "start"', 4),
    ("foo by", "unexpected <by>", 4),
    ("foo sum", "unexpected <aggr:sum>", 4),
    ("foo 1", 'unexpected number "1"', 4),
    ("foo 'a'", "unexpected string \"'a'\"", 4),
])
def test_errors(q: str, msg: str, pos: int) -> None:
    e = perr(q)
    assert (e.message, e.position) == (msg, pos)


def test_invalid_regex_is_a_parse_error_at_the_matcher() -> None:
    e = perr('foo{a=~"("}')
    assert e.message.startswith("error parsing regexp: ")
    assert e.position == 4


def test_error_string_format_is_prometheus_like() -> None:
    e = perr("foo *")
    assert str(e) == "1:6: parse error: unexpected end of input"
    e = perr("a +\n* b")
    assert str(e) == "2:1: parse error: unexpected <op:*>"
    assert e.line_col == (2, 1)


def test_hostile_input_is_rejected_cleanly() -> None:
    deep = "(" * 5000 + "1" + ")" * 5000
    e = perr(deep)
    assert "nested too deeply" in e.message
    e = perr("-" * 5000 + "1")
    assert "nested too deeply" in e.message
    e = perr("2" + " ^ 2" * 3000)
    assert "nested too deeply" in e.message
    e = perr(" + ".join(["a"] * 600))
    assert "nested too deeply" in e.message
    e = perr("sum(" * 300 + "x" + ")" * 300)
    assert "nested too deeply" in e.message
    with pytest.raises(ParseError, match="query too long"):
        parse("a" * (128 * 1024 + 1))
    with pytest.raises(ParseError, match="query too long"):
        parse("a" * 11, max_length=10)
    assert parse("(" * 150 + "1" + ")" * 150) is not None


def test_experimental_functions_can_be_disabled() -> None:
    with pytest.raises(ParseError, match='function "mad_over_time" is not enabled'):
        parse("mad_over_time(x[5m])", enable_experimental=False)
    with pytest.raises(ParseError, match="limitk\\(\\) is experimental"):
        parse("limitk(1, x)", enable_experimental=False)


# --- other entry points -----------------------------------------------------------------------


@pytest.mark.parametrize(("s", "ms"), [("5m", 300_000), ("1h30m", 5_400_000), ("100ms", 100), ("1y", 31_536_000_000),
                                       ("1w", 604_800_000), ("1d", 86_400_000), ("0", 0), ("1m30s500ms", 90_500)])
def test_parse_duration(s: str, ms: int) -> None:
    assert parse_duration(s) == ms


@pytest.mark.parametrize("s", ["", "5", "1.5m", "5m1h", "1hh", "-5m", "5 m", "1x"])
def test_parse_duration_rejects(s: str) -> None:
    with pytest.raises(ParseError):
        parse_duration(s)


@pytest.mark.parametrize(("s", "ms"), [("30", 30_000), ("1.5", 1_500), ("5m", 300_000), ("0.001", 1),
                                       ("1h", 3_600_000), ("-2", -2_000)])
def test_parse_duration_param(s: str, ms: int) -> None:
    assert parse_duration_param(s) == ms


@pytest.mark.parametrize("s", ["", "abc", "NaN", "Inf", "1e300", "5mm"])
def test_parse_duration_param_rejects(s: str) -> None:
    with pytest.raises(ParseError, match="cannot parse"):
        parse_duration_param(s)


def test_parse_series_selector() -> None:
    assert parse_series_selector("up") == [Matcher.of("=", "__name__", "up")]
    assert parse_series_selector('{job="x"}') == [Matcher.of("=", "job", "x")]
    assert parse_series_selector('up{a=~"b"}') == [Matcher.of("=~", "a", "b"), Matcher.of("=", "__name__", "up")]
    assert parse_series_selector('{"my.metric"}') == [Matcher.of("=", "__name__", "my.metric")]
    with pytest.raises(ParseError, match="at least one non-empty matcher"):
        parse_series_selector('{a=~".*"}')
    with pytest.raises(ParseError, match="unexpected"):
        parse_series_selector("up offset 5m")
    with pytest.raises(ParseError):
        parse_series_selector("rate(up[5m])")
    with pytest.raises(ParseError):
        parse_series_selector("")


def test_parse_metric() -> None:
    assert parse_metric('http_requests{job="api", instance="0"}') == (
        ("__name__", "http_requests"), ("instance", "0"), ("job", "api"))
    assert parse_metric('{__name__="a"}') == (("__name__", "a"),)
    assert parse_metric("up") == (("__name__", "up"),)
    assert parse_metric('{"my.metric", "a.b"="c",}') == (("__name__", "my.metric"), ("a.b", "c"))
    assert parse_metric('sum{by="x"}') == (("__name__", "sum"), ("by", "x"))
    with pytest.raises(ParseError, match="expected string"):
        parse_metric("foo{a=b}")
    with pytest.raises(ParseError, match='expected "="'):
        parse_metric('foo{a!="b"}')
    with pytest.raises(ParseError, match="duplicate label name"):
        parse_metric('foo{a="1", a="2"}')


def _walk(e: Expr) -> list[Expr]:
    out = [e]
    for child in getattr(e, "args", []) or []:
        out += _walk(child)
    for attr in ("expr", "lhs", "rhs", "param", "vector"):
        c = getattr(e, attr, None)
        if isinstance(c, Expr):
            out += _walk(c)
    return out


def test_call_return_types_come_from_the_signature_table() -> None:
    e = parse("vector(scalar(sum(rate(foo[5m]))))")
    kinds = [(n.func, n.type) for n in _walk(e) if isinstance(n, Call)]
    assert kinds == [("vector", ValueType.VECTOR), ("scalar", ValueType.SCALAR), ("rate", ValueType.VECTOR)]


def test_parse_with_positions() -> None:
    from clearsight.query.promql.parser import parse_with_positions

    q = "sum by (a) (rate(foo[5m])) + -bar offset 1m"
    tree, pos = parse_with_positions(q)
    assert isinstance(tree, BinaryExpr) and isinstance(tree.lhs, AggregateExpr)
    call = tree.lhs.expr
    assert isinstance(call, Call)
    m = call.args[0]
    assert isinstance(m, MatrixSelector)
    assert pos[id(tree)] == 0
    assert pos[id(call)] == q.index("rate")
    assert pos[id(m)] == q.index("foo")
    assert pos[id(m.vector)] == q.index("foo")
    assert isinstance(tree.rhs, UnaryExpr)
    assert pos[id(tree.rhs)] == q.index("-bar")
    assert pos[id(tree.rhs.expr)] == q.index("bar")
    assert len(pos) == 7


@pytest.mark.parametrize(("q", "error"), [
    ("foo[5s/(1-1)]", "division by zero"),
    ("foo[1m-2m]", "duration must be greater than 0"),
    ("foo[(0^-1)]", "duration is NaN or infinite"),
])
def test_computed_duration_errors_are_deferred_to_evaluation(q: str, error: str) -> None:
    # Prometheus checks literals while parsing and computed durations while evaluating.
    e = parse(q)
    assert isinstance(e, MatrixSelector) and isinstance(e.range, DurationExpr)
    with pytest.raises(ValueError, match=error):
        resolve_duration(e.range, step_ms=1000, range_ms=0)


def test_negative_computed_offset_is_folded() -> None:
    assert parse("foo offset (1m-2m)") == vs("foo", offset=-60_000)


def test_parse_error_pickles() -> None:
    import pickle

    e = perr("foo +")
    e2 = pickle.loads(pickle.dumps(e))
    assert isinstance(e2, ParseError)
    assert (e2.message, e2.position, str(e2)) == (e.message, e.position, str(e))
