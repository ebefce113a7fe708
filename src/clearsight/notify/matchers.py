"""Alertmanager matchers: ``name="value"``, ``name!=value``, ``name=~"re"``, ``name!~re``.

Parsed into the project's ``Matcher`` (anchored RE2 regexes, Prometheus semantics: an absent label
is the empty string). Values may be quoted (Go escapes ``\\"``, ``\\\\``, ``\\n``) or bare; a
brace-wrapped, comma-separated list is accepted where several matchers are.
"""

from __future__ import annotations

import re

from clearsight.model.matchers import Matcher, MatchType, RegexError

_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_ONE = re.compile(rf'^\s*({_NAME}|"[^"]+")\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.S)


class MatcherError(ValueError):
    pass


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        body = value[1:-1]
        out: list[str] = []
        i = 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            if c == '"':
                raise MatcherError(f"unescaped quote in {value}")
            out.append(c)
            i += 1
        return "".join(out)
    if '"' in value:
        raise MatcherError(f"unbalanced quotes in {value}")
    return value


def parse_matcher(text: str) -> Matcher:
    m = _ONE.match(text)
    if m is None:
        raise MatcherError(f"invalid matcher {text!r} (expected name=\"value\", !=, =~ or !~)")
    name, op, raw = m.groups()
    name = name.strip('"')
    value = _unquote(raw)
    try:
        return Matcher.of(MatchType(op), name, value)
    except RegexError as e:
        raise MatcherError(f"invalid regular expression in {text!r}: {e}") from None


def _split(text: str) -> list[str]:
    """Splits on commas outside quotes."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    escaped = False
    for c in text:
        if escaped:
            cur.append(c)
            escaped = False
            continue
        if c == "\\":
            cur.append(c)
            escaped = True
            continue
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    if quoted:
        raise MatcherError(f"unbalanced quotes in {text!r}")
    parts.append("".join(cur))
    return [p for p in (x.strip() for x in parts) if p]


def parse_matchers(text: str) -> list[Matcher]:
    """One matcher, or ``{a="b", c=~"d"}`` / ``a="b", c=~"d"`` (several)."""
    s = text.strip()
    if s.startswith("{"):
        if not s.endswith("}"):
            raise MatcherError(f"missing closing brace in {text!r}")
        s = s[1:-1]
    return [parse_matcher(p) for p in _split(s)]


def format_matchers(matchers: list[Matcher]) -> str:
    return "{" + ", ".join(str(m) for m in matchers) + "}"
