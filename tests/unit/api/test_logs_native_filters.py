"""Native log API helpers: filters to matchers, line filters and the equivalent LogQL; cursors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from clearsight.api.logs_native import decode_cursor, encode_cursor, parse_filters
from clearsight.api.logs_query import BadRequest
from clearsight.query.logql.ast import LogSelector
from clearsight.query.logql.parser import parse_expr


def test_filters_become_matchers_line_filters_and_logql() -> None:
    f = parse_filters(QueryParams([("service", "api"), ("service", "a.b"), ("level", "error"), ("label", "env=prod"),
                                   ("text", 'say "hi"'), ("regex", "^x+$")]))
    assert [(m.type.value, m.name, m.value) for m in f.matchers] == [
        ("=~", "service_name", r"api|a\.b"), ("=~", "level", "(?i)error"), ("=", "env", "prod")]
    assert [(lf.op, lf.pattern) for lf in f.line_filters] == [("|=", 'say "hi"'), ("|~", "^x+$")]
    assert isinstance(parse_expr(f.logql), LogSelector)  # the tail parses the same filters
    assert parse_filters(QueryParams([("text", "x")])).logql == ""  # no stream filter: no selector


@pytest.mark.parametrize(("params", "words"), [
    ([("label", "x")], "invalid label filter"), ([("label", "1a=b")], "invalid label filter"),
    ([("regex", "(")], "invalid regex"), ([("trace_id", "00")], "invalid trace_id")])
def test_bad_filters_name_the_problem(params: list[tuple[str, str]], words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        parse_filters(QueryParams(params))


@given(st.integers(0, 2**63 - 1), st.integers(0, 10**6))
def test_cursor_round_trip(ts: int, k: int) -> None:
    assert decode_cursor(encode_cursor(ts, k)) == (ts, k)


@given(st.text(max_size=30))
def test_bad_cursors_are_400_never_a_crash(raw: str) -> None:
    try:
        ts, k = decode_cursor(raw)
    except BadRequest:
        return
    assert k >= 0 and isinstance(ts, int)


@given(st.text(min_size=1, max_size=20), st.text(max_size=20))
def test_any_filter_values_give_a_valid_tail_query(service: str, text: str) -> None:
    f = parse_filters(QueryParams([("service", service), ("text", text), ("label", f"app={service}")]))
    sel = parse_expr(f.logql)
    assert isinstance(sel, LogSelector)
    assert ("service_name", f.matchers[0].value) in [(m.name, m.value) for m in sel.matchers]
