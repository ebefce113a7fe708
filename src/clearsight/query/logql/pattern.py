"""LogQL patterns (``| pattern "<ip> - <_> [<ts>]"`` and the ``|>``/``!>`` line filters).

A pattern is literal text and captures: ``<name>`` extracts, ``<_>`` skips. Matching runs left
to right: a leading literal must start the line; a capture takes everything up to the first
occurrence of the literal after it (the last capture takes the rest of the line). Two captures
may not follow each other; a parser pattern needs at least one named capture, and names are
unique.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CAPTURE = re.compile(r"<(_|[a-zA-Z_][a-zA-Z0-9_]*)>")


class PatternError(ValueError):
    pass


@dataclass(frozen=True)
class Pattern:
    # Alternating parts: ("lit", text) or ("cap", name); name "_" is skipped.
    parts: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [v for k, v in self.parts if k == "cap" and v != "_"]

    def match(self, line: str) -> list[tuple[str, str]] | None:
        """The named captures of a match, or None when the line does not match."""
        pos = 0
        out: list[tuple[str, str]] = []
        parts = self.parts
        n = len(parts)
        k = 0
        if n and parts[0][0] == "lit":
            if not line.startswith(parts[0][1]):
                return None
            pos = len(parts[0][1])
            k = 1
        while k < n:
            kind, val = parts[k]
            assert kind == "cap"
            if k + 1 >= n:
                if val != "_":
                    out.append((val, line[pos:]))
                return out
            lit = parts[k + 1][1]
            if k + 2 >= n:  # the pattern ends with this literal: the line must end with it
                if not line.endswith(lit) or len(line) - len(lit) < pos:
                    return None
                j = len(line) - len(lit)
            else:
                j = line.find(lit, pos)
                if j < 0:
                    return None
            if val != "_":
                out.append((val, line[pos:j]))
            pos = j + len(lit)
            k += 2
        return out if pos == len(line) or not n or parts[-1][0] == "cap" else None


def compile_pattern(text: str, for_filter: bool = False) -> Pattern:
    parts: list[tuple[str, str]] = []
    pos = 0
    seen: set[str] = set()
    for m in _CAPTURE.finditer(text):
        if m.start() > pos:
            parts.append(("lit", text[pos:m.start()]))
        elif parts and parts[-1][0] == "cap":
            raise PatternError(f"invalid pattern {text!r}: consecutive captures are not allowed")
        name = m.group(1)
        if name != "_":
            if name in seen:
                raise PatternError(f"invalid pattern {text!r}: duplicate capture {name!r}")
            seen.add(name)
        parts.append(("cap", name))
        pos = m.end()
    if pos < len(text):
        parts.append(("lit", text[pos:]))
    if not any(k == "cap" for k, _ in parts):
        raise PatternError(f"invalid pattern {text!r}: at least one capture is required")
    if not for_filter and not seen:
        raise PatternError(f"invalid pattern {text!r}: at least one named capture is required")
    return Pattern(tuple(parts))
