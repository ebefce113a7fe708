"""What log lines contain, for Loki's ``detected_fields`` and ``patterns`` endpoints (Grafana's
Logs Drilldown): pure functions over lines, no I/O.

- ``detect_fields``: each line is parsed as a JSON object (fields flattened as ``| json`` does) or
  else as logfmt; per field name: the parser(s) that found it, how many distinct values, and a type
  (``int``, ``float``, ``boolean``, ``duration``, ``bytes`` when every value parses as one, else
  ``string``).
- ``mine_patterns``: a line's pattern is its whitespace-separated tokens with every variable token
  (one holding a digit, or a quoted/bracketed value holding one) replaced by ``<_>`` and runs of
  ``<_>`` merged; lines with the same pattern are counted per time bucket. A simpler relative of
  Loki's Drain clustering: lines that differ only in words (not numbers) are separate patterns.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from clearsight.query.logql.stages import parse_logfmt, sanitize
from clearsight.query.logql.units import parse_bytes, parse_go_duration

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_BYTES_UNIT = re.compile(r"[0-9.]+\s?[kKmMgGtTpPeE]?[iI]?[bB]")
_DIGIT = re.compile(r"\d")


@dataclass
class DetectedField:
    label: str
    parsers: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)

    @property
    def type(self) -> str:
        vals = self.values
        if vals and all(_INT.fullmatch(v) for v in vals):
            return "int"
        if vals and all(_FLOAT.fullmatch(v) for v in vals):
            return "float"
        if vals and all(v in ("true", "false") for v in vals):
            return "boolean"
        if vals and all(parse_go_duration(v) is not None and not _FLOAT.fullmatch(v) for v in vals):
            return "duration"
        if vals and all(_BYTES_UNIT.fullmatch(v) and parse_bytes(v) is not None for v in vals):
            return "bytes"
        return "string"


def _flatten(doc: dict[str, object], prefix: str, out: list[tuple[str, str]]) -> None:
    for k, v in doc.items():
        key = prefix + k
        if isinstance(v, dict):
            _flatten(v, key + "_", out)
        elif isinstance(v, list) or v is None:
            continue
        elif v is True or v is False:
            out.append((key, "true" if v else "false"))
        else:
            out.append((key, str(v)))


def detect_fields(lines: Iterable[str], max_values: int = 1000) -> list[DetectedField]:
    """Fields found in ``lines``, sorted by name (values kept up to ``max_values`` per field)."""
    fields: dict[str, DetectedField] = {}
    for line in lines:
        pairs: list[tuple[str, str]] = []
        parser = "json"
        if line.lstrip().startswith("{"):
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict):
                _flatten(doc, "", pairs)
        if not pairs:
            parser = "logfmt"
            found, _err = parse_logfmt(line, False)
            pairs = [(k, v) for k, v in found if v is not None]
        for k, v in pairs:
            name = sanitize(k)
            if not name:
                continue
            f = fields.get(name)
            if f is None:
                f = fields[name] = DetectedField(name)
            f.parsers.add(parser)
            if len(f.values) < max_values:
                f.values.add(v)
    return [fields[k] for k in sorted(fields)]


def pattern_of(line: str) -> str:
    out: list[str] = []
    for tok in line.split():
        variable = _DIGIT.search(tok) is not None
        if variable and "=" in tok and not tok.startswith("="):  # key=value: keep the key
            key = tok.split("=", 1)[0]
            if not _DIGIT.search(key):
                tok = key + "=<_>"
                variable = False
        if variable:
            if out and out[-1] == "<_>":
                continue
            out.append("<_>")
        else:
            out.append(tok)
    return " ".join(out)


def mine_patterns(entries: Iterable[tuple[int, str]], start_ns: int, step_ns: int) -> list[tuple[str, Counter[int]]]:
    """(pattern, {bucket start ns: count}) largest first; buckets are ``start + k * step``."""
    counts: dict[str, Counter[int]] = {}
    for ts, line in entries:
        p = pattern_of(line)
        c = counts.get(p)
        if c is None:
            c = counts[p] = Counter()
        c[start_ns + (ts - start_ns) // step_ns * step_ns] += 1
    return sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
