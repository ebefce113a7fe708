"""Per-source tidying of log records before they are encoded: include/exclude filters on the body, and
consecutive identical records collapsed into the first, with a ``repeat_count`` attribute.

``include``: when set, only records whose body matches it (``re.search``) are kept; ``exclude``: records
whose body matches it are dropped (counted in ``filtered``). Records are identical when body,
severity and attributes are equal; collapsing works within one poll of a source (a repeat spanning two
polls is shipped twice: once at the end of one, once at the start of the next).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from clearsight.agent.logrecord import LogRecord


class Tidy:
    def __init__(self, include: str = "", exclude: str = "", collapse: bool = True) -> None:
        self.include = re.compile(include) if include else None
        self.exclude = re.compile(exclude) if exclude else None
        self.collapse = collapse
        self.filtered = 0  # records dropped by the filters
        self.collapsed = 0  # records folded into a previous identical one

    def apply(self, records: Sequence[LogRecord]) -> list[LogRecord]:
        out: list[LogRecord] = []
        repeats = 0
        for r in records:
            if (self.include is not None and not self.include.search(r.body)) or (
                    self.exclude is not None and self.exclude.search(r.body)):
                self.filtered += 1
                continue
            if self.collapse and out and _same(out[-1], r):
                repeats += 1
                self.collapsed += 1
                continue
            if repeats:
                out[-1] = _with_count(out[-1], repeats + 1)
                repeats = 0
            out.append(r)
        if repeats:
            out[-1] = _with_count(out[-1], repeats + 1)
        return out


def _same(a: LogRecord, b: LogRecord) -> bool:
    return (a.body == b.body and a.severity_number == b.severity_number and a.attributes == b.attributes)


def _with_count(r: LogRecord, n: int) -> LogRecord:
    return r._replace(attributes=(*r.attributes, ("repeat_count", n)))
