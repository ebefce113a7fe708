"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) with Prometheus semantics.

Regex matchers are fully anchored (``^(?:re)$``) and use Python's ``re`` (RE2 syntax differences
are documented in docs/promql.md). A matcher against an absent label sees the empty string.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from clearsight.model.labels import Labels, get


class MatchType(enum.Enum):
    EQ = "="
    NEQ = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True)
class Matcher:
    type: MatchType
    name: str
    value: str
    _re: re.Pattern[str] | None = field(default=None, compare=False, repr=False, hash=False)

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


_RE_CACHE: dict[str, re.Pattern[str]] = {}


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Compiles a Prometheus regex (anchored at both ends). Raises ValueError when invalid."""
    hit = _RE_CACHE.get(pattern)
    if hit is not None:
        return hit
    try:
        compiled = re.compile(f"(?:{pattern})", re.DOTALL)
    except re.error as e:
        raise ValueError(f"invalid regular expression {pattern!r}: {e}") from e
    if len(_RE_CACHE) > 4096:
        _RE_CACHE.clear()
    _RE_CACHE[pattern] = compiled
    return compiled


def matches_all(matchers: list[Matcher] | tuple[Matcher, ...], labels: Labels) -> bool:
    return all(m.matches_labels(labels) for m in matchers)
