"""Loki's ``detected_level``: the level of a log entry as one of ``trace``, ``debug``, ``info``,
``warn``, ``error``, ``critical``, ``fatal`` or ``unknown``, usable in a query like structured
metadata (``| detected_level="error"``, ``sum by (detected_level) (count_over_time(...))``).

Clearsight does not store it: the evaluator computes it for the entries it reads, and only for
queries that name ``detected_level`` (``mentions_detected_level``), so no other query pays for it
or sees the label. Where it comes from, first match wins (Loki's order):

1. a stream label or structured metadata named ``level``, ``severity`` or ``lvl`` (any of Loki's
   spellings: lower, upper or capitalised), normalised;
2. the entry's OpenTelemetry severity number (1-4 trace ... 21-24 fatal), else its severity text;
3. the line: a JSON ``"level"``/``"severity"``/``"lvl"`` string field or a logfmt ``level=`` /
   ``severity=`` / ``lvl=`` value;
4. the first level word in the line (``error``, ``ERR``, ``warning``, ``panic``... as whole words);
5. otherwise ``unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from clearsight.query.logql.ast import Expr
from clearsight.query.logql.printer import format_expr

DETECTED_LEVEL = "detected_level"
UNKNOWN = "unknown"
LEVEL_LABELS = tuple(
    f(n) for n in ("level", "severity", "lvl") for f in (str.lower, str.upper, str.capitalize)
)
_WORDS = {
    "trace": "trace",
    "trc": "trace",
    "debug": "debug",
    "dbg": "debug",
    "info": "info",
    "inf": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "wrn": "warn",
    "error": "error",
    "err": "error",
    "eror": "error",
    "critical": "critical",
    "crit": "critical",
    "emerg": "critical",
    "emergency": "critical",
    "alert": "critical",
    "fatal": "fatal",
    "panic": "fatal",
}
_BY_NUMBER = ("trace", "debug", "info", "warn", "error", "fatal")
_FIELD = re.compile(
    r'"(?:level|severity|lvl)"\s*:\s*"([A-Za-z]+)"|\b(?:level|severity|lvl)="?([A-Za-z]+)', re.IGNORECASE
)
_WORD = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def normalise(value: str) -> str | None:
    """A level word as ``detected_level`` (None when it is not one)."""
    return _WORDS.get(value.strip().lower())


def detect_level(labels: Mapping[str, str], severity_number: int, severity_text: str, line: str) -> str:
    for name in LEVEL_LABELS:
        v = labels.get(name)
        if v and (lvl := normalise(v)):
            return lvl
    if 1 <= severity_number <= 24:
        return _BY_NUMBER[(severity_number - 1) // 4]
    if severity_text and (lvl := normalise(severity_text)):
        return lvl
    m = _FIELD.search(line)
    if m and (lvl := normalise(m.group(1) or m.group(2))):
        return lvl
    m = _WORD.search(line)
    if m:
        return _WORDS[m.group(1).lower()]
    return UNKNOWN


def mentions_detected_level(e: Expr) -> bool:
    """Whether a query names ``detected_level`` anywhere (then the evaluator computes it)."""
    return DETECTED_LEVEL in format_expr(e)
