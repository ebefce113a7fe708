"""The LogQL log-query subset parser: selectors, chained line filters, Loki-style positioned errors."""

from __future__ import annotations

import pytest

from clearsight.model.matchers import Matcher
from clearsight.query.logql.parser import LogQLParseError, parse_log_query
from clearsight.store.logs_interface import LineFilter


def test_selector_and_chained_filters() -> None:
    q = parse_log_query('{app="api", env=~"prod|stage",x!="",y!~`a.*`} |= "err\\"or" != `time\\out` |~ "(?i)fail" !~ "dbg"')
    assert q.matchers == (Matcher.of("=", "app", "api"), Matcher.of("=~", "env", "prod|stage"),
                          Matcher.of("!=", "x", ""), Matcher.of("!~", "y", "a.*"))
    assert q.filters == (LineFilter("|=", 'err"or'), LineFilter("!=", "time\\out"), LineFilter("|~", "(?i)fail"),
                         LineFilter("!~", "dbg"))
    assert parse_log_query('  {a="b"}  ').filters == ()
    assert parse_log_query('{a="\\u00e9\\n"}').matchers == (Matcher.of("=", "a", "é\n"),)


@pytest.mark.parametrize(("text", "message"), [
    ("", "col 1: syntax error: unexpected end of input, expecting {"),
    ('sum(rate({a="b"}[1m]))', "col 1: syntax error: unexpected"),
    ('{a="b"', "col 7: syntax error: unexpected end of input, expecting , or }"),
    ("{}", "col 2: syntax error: unexpected }, expecting IDENTIFIER"),
    ('{a=~".*"}', "at least one regexp or equality matcher"),
    ('{a~"b"}', "col 3: syntax error: unexpected"),
    ('{a="b} |= "x"', "col 12: syntax error: unexpected 'x\"', expecting , or }"),
    ('{a="b"} |= "x', "col 12: syntax error: unterminated string"),
    ('{a="b"} | json', "col 9: syntax error: parsers, label filters and formatting stages"),
    ('{a="b"} |= "x" or "y"', "col 16: syntax error: 'or' between line filters"),
    ('{a="b"} |~ "("', "col 12: error parsing regexp"),
    ('{a=~"("}', "col 5: error parsing regexp"),
    ('{a="b"} |= 5', "col 12: syntax error: unexpected '5', expecting STRING"),
    ('{a="\\q"}', "col 5: syntax error: invalid escape sequence"),
])
def test_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(LogQLParseError) as exc:
        parse_log_query(text)
    assert str(exc.value).startswith("parse error at line 1, ")
    assert message in str(exc.value)
