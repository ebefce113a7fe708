"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) with Prometheus semantics.

Regex matchers are fully anchored (``^(?s:re)$``) and use RE2 (the ``google-re2`` binding): the
same syntax and linear-time matching as Prometheus, so a hostile pattern cannot hang a query.
A matcher against an absent label sees the empty string.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

import re2

from clearsight.model.labels import Labels, get


class MatchType(enum.Enum):
    EQ = "="
    NEQ = "!="
    RE = "=~"
    NRE = "!~"

    # Members are singletons compared by identity: the identity hash, in C, rather than Enum's
    # (a Python call hashing the member's name), computed for every matcher of every selection
    # looked up (store/embedded/selection_cache.py).
    __hash__ = object.__hash__


@dataclass(frozen=True)
class Matcher:
    type: MatchType
    name: str
    value: str
    _re: Regex | None = field(default=None, compare=False, repr=False, hash=False)

    @staticmethod
    def of(type_: MatchType | str, name: str, value: str) -> Matcher:
        t = type_ if isinstance(type_, MatchType) else MatchType(type_)
        compiled = None
        if t in (MatchType.RE, MatchType.NRE):
            compiled = compile_anchored(value)
        return Matcher(t, name, value, compiled)

    def matches(self, value: str) -> bool:
        t = self.type
        if t is MatchType.EQ:
            return value == self.value
        if t is MatchType.NEQ:
            return value != self.value
        assert self._re is not None
        hit = self._re.fullmatch(value) is not None
        return hit if t is MatchType.RE else not hit

    def matches_labels(self, labels: Labels) -> bool:
        return self.matches(get(labels, self.name))

    def matches_empty(self) -> bool:
        """Whether the matcher selects series that lack the label."""
        return self.matches("")

    def __str__(self) -> str:
        v = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.type.value}"{v}"'


class Regex(Protocol):
    """A compiled RE2 pattern (what ``compile_anchored`` returns)."""

    def fullmatch(self, text: str) -> Any: ...

    def search(self, text: str) -> Any: ...


_RE_OPTIONS = re2.Options()
_RE_OPTIONS.log_errors = False
_RE_OPTIONS.max_mem = 64 << 20  # bound the memory of one compiled pattern
_RE_CACHE: dict[str, Regex] = {}


# RE2's error texts -> Go regexp/syntax's (what Prometheus users see).
_GO_ERRORS = (
    ("missing )", "missing closing )"),
    ("missing ]", "missing closing ]"),
    ("unexpected )", "unexpected )"),
    ("missing argument to repetition operator", "missing argument to repetition operator"),
    ("bad repetition operator", "invalid nested repetition operator"),
    ("invalid perl operator", "invalid or unsupported Perl syntax"),
    ("trailing \\", "trailing backslash at end of expression"),
    ("invalid escape sequence", "invalid escape sequence"),
    ("invalid character class range", "invalid character class range"),
    ("invalid character class", "invalid character class"),
    ("invalid named capture group", "invalid named capture"),
    ("bad repetition", "invalid repeat count"),
    ("no argument for repetition operator", "missing argument to repetition operator"),
    ("invalid repetition size", "invalid repeat count"),
)


class RegexError(ValueError):
    """An invalid regex; ``detail`` is Go's wording (``missing closing ): `(```)."""

    def __init__(self, pattern: str, detail: str) -> None:
        super().__init__(f"invalid regular expression {pattern!r}: {detail}")
        self.pattern = pattern
        self.detail = detail


def compile_regex(pattern: str) -> Regex:
    """Compiles an RE2 pattern with ``.`` matching newlines. Raises RegexError when invalid."""
    if (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1:
        raise RegexError(pattern, "trailing backslash at end of expression: ``")
    try:
        compiled: Regex = re2.compile(f"(?s:{pattern})", _RE_OPTIONS)
    except re2.error as e:
        msg = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        detail = msg
        for re2_text, go_text in _GO_ERRORS:
            if msg.startswith(re2_text):
                detail = f"{go_text}: `{pattern}`"
                break
        raise RegexError(pattern, detail) from None
    return compiled


def compile_anchored(pattern: str) -> Regex:
    """Compiles a Prometheus regex (matched with ``fullmatch``: anchored at both ends)."""
    hit = _RE_CACHE.get(pattern)
    if hit is not None:
        return hit
    compiled = compile_regex(pattern)
    if len(_RE_CACHE) > 4096:
        _RE_CACHE.clear()
    _RE_CACHE[pattern] = compiled
    return compiled


def matches_all(matchers: list[Matcher] | tuple[Matcher, ...], labels: Labels) -> bool:
    return all(m.matches_labels(labels) for m in matchers)
