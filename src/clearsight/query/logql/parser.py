"""The LogQL log-query subset: a stream selector and chained line filters.

    {app="api", env=~"prod|stage"} |= "error" != "timeout" |~ `(?i)fail` !~ "debug"

Matchers use ``=``, ``!=``, ``=~``, ``!~`` (regexes fully anchored, as in Prometheus/Loki); line
filters ``|=`` (contains), ``!=`` (does not), ``|~`` (RE2 regex matches anywhere), ``!~``.
Strings are double-quoted (Go escapes) or back-quoted (raw). Anything else (parsers, metric
queries, ``or`` in filters) is a parse error that names the construct. Errors follow Loki's
wording: ``parse error at line 1, col 7: syntax error: unexpected ...``.
A selector needs at least one matcher that does not match the empty string, as in Loki.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clearsight.model.matchers import Matcher, RegexError, compile_anchored
from clearsight.store.logs_interface import LineFilter, LineOp

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SPACE = re.compile(r"\s*")
_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
        "v": "\v"}


class LogQLParseError(ValueError):
    def __init__(self, text: str, pos: int, message: str) -> None:
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        super().__init__(f"parse error at line {line}, col {col}: {message}")
        self.pos = pos


@dataclass(frozen=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    filters: tuple[LineFilter, ...]


class _P:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def ws(self) -> None:
        m = _SPACE.match(self.s, self.i)
        self.i = m.end() if m else self.i

    def err(self, message: str, pos: int | None = None) -> LogQLParseError:
        return LogQLParseError(self.s, self.i if pos is None else pos, message)

    def unexpected(self, expecting: str) -> LogQLParseError:
        rest = self.s[self.i:]
        tok = "end of input" if not rest else repr(rest.split()[0][:20]) if rest.split() else repr(rest[:1])
        return self.err(f"syntax error: unexpected {tok}, expecting {expecting}")

    def peek(self, tok: str) -> bool:
        return self.s.startswith(tok, self.i)

    def string(self) -> str:
        start = self.i
        if self.peek("`"):
            end = self.s.find("`", self.i + 1)
            if end < 0:
                raise self.err("syntax error: unterminated raw string", start)
            self.i = end + 1
            return self.s[start + 1:end]
        if not self.peek('"'):
            raise self.unexpected("STRING")
        out: list[str] = []
        j = self.i + 1
        while j < len(self.s):
            c = self.s[j]
            if c == '"':
                self.i = j + 1
                return "".join(out)
            if c == "\\":
                if j + 1 >= len(self.s):
                    break
                e = self.s[j + 1]
                if e in _ESC:
                    out.append(_ESC[e])
                    j += 2
                    continue
                if e in "xuU":
                    width = {"x": 2, "u": 4, "U": 8}[e]
                    digits = self.s[j + 2:j + 2 + width]
                    if len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
                        out.append(chr(int(digits, 16)))
                        j += 2 + width
                        continue
                raise self.err(f"syntax error: invalid escape sequence '\\{e}' in string", j)
            out.append(c)
            j += 1
        raise self.err("syntax error: unterminated string", start)


def parse_log_query(text: str) -> LogQuery:
    """Parses the subset above; raises ``LogQLParseError`` with the position."""
    p = _P(text)
    p.ws()
    if not p.peek("{"):
        raise p.unexpected("{ (only log queries are supported: a stream selector and line filters)")
    p.i += 1
    matchers: list[Matcher] = []
    p.ws()
    while not p.peek("}"):
        p.ws()
        m = _NAME.match(p.s, p.i)
        if m is None:
            raise p.unexpected("IDENTIFIER")
        name = m.group()
        p.i = m.end()
        p.ws()
        for op in ("=~", "!~", "!=", "="):
            if p.peek(op):
                p.i += len(op)
                break
        else:
            raise p.unexpected("=, !=, =~ or !~")
        p.ws()
        vpos = p.i
        value = p.string()
        if op in ("=~", "!~"):
            try:
                compile_anchored(value)
            except RegexError as e:
                raise p.err(f"error parsing regexp: {e}", vpos) from None
        matchers.append(Matcher.of(op, name, value))
        p.ws()
        if p.peek(","):
            p.i += 1
            p.ws()
            continue
        if not p.peek("}"):
            raise p.unexpected(", or }")
    close = p.i
    p.i += 1
    if not matchers:
        raise p.err("syntax error: unexpected }, expecting IDENTIFIER", close)
    if all(m.matches("") for m in matchers):
        raise LogQLParseError(text, 0, "queries require at least one regexp or equality matcher that does not "
                                       "have an empty-compatible value. For instance, app=~\".*\" does not meet "
                                       "this requirement, but app=~\".+\" will")
    filters: list[LineFilter] = []
    while True:
        p.ws()
        if p.i >= len(p.s):
            break
        op_: LineOp | None = None
        for cand in ("|=", "|~", "!=", "!~"):
            if p.peek(cand):
                op_ = cand
                break
        if op_ is None:
            if p.peek("|"):
                raise p.err("syntax error: parsers, label filters and formatting stages (| json, | logfmt, ...) are "
                            "not supported yet: only line filters |=, !=, |~, !~")
            raise p.unexpected("|=, !=, |~, !~ or end of input")
        p.i += 2
        p.ws()
        vpos = p.i
        pattern = p.string()
        if op_ in ("|~", "!~"):
            try:
                re.compile(pattern)
            except re.error as e:
                raise p.err(f"error parsing regexp: {e}", vpos) from None
        filters.append(LineFilter(op_, pattern))
        p.ws()
        if p.peek("or"):
            raise p.err("syntax error: 'or' between line filters is not supported yet")
    return LogQuery(tuple(matchers), tuple(filters))
