"""Property tests: format/parse round trip on generated queries; arbitrary input only ever raises
ParseError."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.matchers import Matcher
from clearsight.query.promql.ast import Expr
from clearsight.query.promql.parser import ParseError, parse
from clearsight.query.promql.printer import format_expr, prettify_expr


def normalized(node: Any) -> Any:
    """A comparable form of a tree: matchers sorted (the printer sorts them), NaN made equal."""
    if isinstance(node, float):
        return "NaN" if math.isnan(node) else node
    if isinstance(node, Matcher):
        return ("matcher", node.type.value, node.name, node.value)
    if isinstance(node, enum.Enum):
        return node.value
    if isinstance(node, list):
        items = [normalized(x) for x in node]
        if node and all(isinstance(x, Matcher) for x in node):
            return ("matchers", tuple(sorted(items)))
        return tuple(items)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = tuple((f.name, normalized(getattr(node, f.name))) for f in dataclasses.fields(node))
        return (type(node).__name__, *fields)
    return node


# --- a generator of type-correct queries --------------------------------------------------------

METRICS = st.sampled_from(["foo", "bar_total", "job:rate:5m", "sum", "offset", "by", "and", "x1"])
LABELS = st.sampled_from(["job", "instance", "le", "on", "by", "offset", "a_b", "sum"])
QUOTED_LABELS = st.sampled_from(['"a.b"', '"ü"', '"0"', "'x-y'"])
DURATIONS = st.sampled_from(["1s", "30s", "1m", "5m", "1h30m", "1d", "1w", "1y", "100ms", "90", "1.5"])
VALUE_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)


def go_quote_simple(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@st.composite
def matcher_text(draw: st.DrawFn) -> str:
    name = draw(st.one_of(LABELS, QUOTED_LABELS))
    op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    if op in ("=~", "!~"):
        value = draw(st.sampled_from(["a.*", ".+", "x|y", "[0-9]+", "(a|b)c?"]))
    else:
        value = draw(VALUE_TEXT)
    quote = draw(st.sampled_from(['"', "'", "`"]))
    if quote == "`" and "`" not in value:
        v = f"`{value}`"
    elif quote == "'":
        v = "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
    else:
        v = go_quote_simple(value)
    return f"{name}{op}{v}"


@st.composite
def selector(draw: st.DrawFn) -> str:
    name = draw(st.one_of(st.none(), METRICS))
    matchers = draw(st.lists(matcher_text(), max_size=3))
    if name is None:
        matchers.append(draw(st.sampled_from(['job="x"', '"my.metric"', '__name__=~"f.+"'])))
    body = ""
    empty_braces: bool = draw(st.booleans())
    trailing_comma: bool = draw(st.booleans())
    if matchers or empty_braces:
        trailing = "," if matchers and trailing_comma else ""
        body = "{" + ", ".join(matchers) + trailing + "}"
    return (name or "") + body


@st.composite
def modifiers(draw: st.DrawFn) -> str:
    out = ""
    if draw(st.booleans()):
        out += " @ " + draw(st.sampled_from(["100", "-5.5", "start()", "end()", "1e3"]))
    if draw(st.booleans()):
        out += " offset " + draw(st.one_of(
            st.tuples(st.sampled_from(["", "-"]), DURATIONS).map("".join),
            st.sampled_from(["(1m+30s)", "-(2*3)", "step()", "-step()", "min_of(step(), 1s)",
                             "(range() / 2)", "-(step() ^ 2)", "max_of(1m, range())"])))
    return out


@st.composite
def range_vector(draw: st.DrawFn, iv: st.SearchStrategy[str]) -> str:
    if draw(st.booleans()):
        rng = draw(st.one_of(DURATIONS, st.sampled_from(["5m+1m", "2m*3", "step()", "step()+1m",
                                                         "max_of(range(), 5s)"])))
        ext = draw(st.sampled_from(["", "", " anchored", " smoothed"]))
        return f"{draw(selector())}[{rng}]{ext}{draw(modifiers())}"
    step = draw(st.sampled_from(["", "1m", "10s", "step()"]))
    return f"({draw(iv)})[{draw(DURATIONS)}:{step}]{draw(modifiers())}"


def number_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=0, max_value=10**6).map(str),
        st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["Inf", "NaN", "0x1f", "1e-3", ".5", "5m"]),
    )


def wrap(s: str) -> str:
    return f"({s})"


def scalars(iv: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    leaf = st.one_of(number_text(), st.just("time()"), st.just("pi()"), iv.map(lambda v: f"scalar({v})"))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "^", "atan2"]), inner).map(
            lambda t: f"{wrap(t[0])} {t[1]} {wrap(t[2])}"),
        st.tuples(inner, st.sampled_from(["==", "!=", ">", "<=", ">=", "<"]), inner).map(
            lambda t: f"{wrap(t[0])} {t[1]} bool {wrap(t[2])}"),
        inner.map(lambda s: f"-{wrap(s)}"),
    ), max_leaves=3)


SIMPLE_VECTORS = st.tuples(st.deferred(lambda: selector()), st.deferred(lambda: modifiers())).map(
    lambda t: t[0] + t[1])
SIMPLE_SCALARS = scalars(SIMPLE_VECTORS)


GROUPING = st.lists(st.one_of(LABELS, QUOTED_LABELS), max_size=3).map(lambda ls: "(" + ", ".join(ls) + ")")


def instant_vectors() -> st.SearchStrategy[str]:
    def extend(iv: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        sc = SIMPLE_SCALARS
        return st.one_of(
            st.tuples(st.sampled_from(["sum", "avg", "min", "max", "count", "group", "stddev"]),
                      st.sampled_from(["", " by ", " without "]), GROUPING, iv).map(
                lambda t: f"{t[0]}{t[1]}{t[2] if t[1] else ''}({t[3]})"),
            st.tuples(st.sampled_from(["topk", "bottomk", "quantile", "limitk"]), sc, iv).map(
                lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            iv.map(lambda v: f'count_values("value", {v})'),
            st.tuples(st.sampled_from(["rate", "increase", "delta", "avg_over_time", "changes"]),
                      range_vector(iv)).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(["abs", "ceil", "sort", "timestamp", "ln"]), iv).map(
                lambda t: f"{t[0]}({t[1]})"),
            st.tuples(sc, range_vector(iv)).map(lambda t: f"quantile_over_time({t[0]}, {t[1]})"),
            iv.map(lambda v: f'label_replace({v}, "dst", "$1", "src", "(.*)")'),
            st.tuples(iv, st.sampled_from(["+", "-", "*", "/", "%", "^", "atan2", "==", ">", "!="]),
                      st.sampled_from(["", " bool", " on(job)", " ignoring(le)", " on(a) group_left(b)",
                                       " ignoring() group_right()", " fill(0)", " fill_left(1) fill_right(-2)"]),
                      iv).map(lambda t: f"{wrap(t[0])} {t[1]}{t[2] if t[1] in ('==', '>', '!=') or t[2] != ' bool' else ''} {wrap(t[3])}"),
            st.tuples(iv, st.sampled_from(["and", "or", "unless"]),
                      st.sampled_from(["", " on(job)", " ignoring(a, b)"]), iv).map(
                lambda t: f"{wrap(t[0])} {t[1]}{t[2]} {wrap(t[3])}"),
            st.tuples(iv, st.sampled_from(["+", "*", ">", "<"]), sc).map(
                lambda t: f"{wrap(t[0])} {t[1]} {wrap(t[2])}"),
            iv.map(lambda v: f"-{wrap(v)}"),
            sc.map(lambda s: f"vector({s})"),
        )
    return st.recursive(SIMPLE_VECTORS, extend, max_leaves=6)


INSTANT_VECTORS = instant_vectors()
QUERIES = st.one_of(INSTANT_VECTORS, scalars(INSTANT_VECTORS), range_vector(INSTANT_VECTORS))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERIES)
def test_format_then_parse_round_trips(q: str) -> None:
    tree = parse(q)
    text = format_expr(tree)
    again = parse(text)
    assert normalized(again) == normalized(tree), (q, text)
    # formatting is a fixed point
    assert format_expr(again) == text
    # the multi-line form parses back to the same tree too
    assert normalized(parse(prettify_expr(tree))) == normalized(tree)


TOKENS = ["sum", "by", "(", ")", "{", "}", "[", "]", ",", "foo", "a", "=", "=~", "!=", "\"x\"", "'y'",
          "5m", "1", "0x1", "1e", "+", "-", "*", "/", "^", "==", "bool", "on", "ignoring", "group_left",
          "offset", "@", "start()", ":", "rate", "topk", "and", "or", "fill", "fill_left", "anchored",
          "smoothed", "step()", "min_of", "#", "\n", "`", "\\", "Inf", "NaN", ".", "<", ">/", "</"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=20), st.lists(st.sampled_from(["", " "]), max_size=20))
def test_token_soup_only_raises_parse_error(tokens: list[str], seps: list[str]) -> None:
    text = "".join(t + (seps[i] if i < len(seps) else "") for i, t in enumerate(tokens))
    _parse_or_parse_error(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_random_text_only_raises_parse_error(text: str) -> None:
    _parse_or_parse_error(text)


def _parse_or_parse_error(text: str) -> None:
    try:
        tree = parse(text)
    except ParseError as e:
        assert e.message
        assert 0 <= e.position <= len(text)
        assert "parse error" in str(e)
        return
    assert isinstance(tree, Expr)
    # whatever parses must also format and re-parse to the same tree
    assert normalized(parse(format_expr(tree))) == normalized(tree)
