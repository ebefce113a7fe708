"""Pure parser for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text.

``parse_prometheus_text(body, content_type, default_ts_ms)`` picks the format from the
Content-Type (``application/openmetrics-text`` -> OpenMetrics, anything else -> text 0.0.4, as
Prometheus 2.x does) and returns a ``ParsedScrape``: the samples as ``(labels, value, ts_ms or
None)`` (``None``: the exposition gave no timestamp) and one ``MetricMetadata`` per family that had
a HELP, TYPE or UNIT line.

The only exception it raises is ``InvalidInput``, with the 1-based line number of the offending line.

Semantics (see docs/scraping.md for the full list):

- 0.0.4: blanks and tabs separate tokens, trailing blanks and empty lines are allowed (a blank
  before a metric name is not, as in Prometheus),
  ``#`` lines other than ``# HELP``/``# TYPE`` are comments, timestamps are unsigned integer milliseconds,
  a trailing comma in a label set is allowed, a repeated HELP (first wins) or identical TYPE line
  is tolerated. Types: counter, gauge, histogram, summary, untyped
  (reported as ``unknown``).
- OpenMetrics 1.0: single spaces, no empty lines, no comments other than HELP/TYPE/UNIT, the
  exposition must end with ``# EOF``; timestamps are (decimal) seconds; a family's metadata comes
  before its samples, each at most once, and a family's samples are contiguous; UNIT must be a
  suffix of the family name. Types: counter, gauge, histogram, gaugehistogram, summary, info,
  stateset, unknown. ``_created`` samples of counter/histogram/summary families are dropped
  (counted in ``created_dropped``); exemplars are parsed and dropped (``exemplars_dropped``).
- Both: label values unescape ``\\\\``, ``\\"`` and ``\\n`` (other escapes are kept verbatim); values
  accept ``NaN``, ``+Inf``, ``-Inf`` (case-insensitive, as Go's ParseFloat); a label set may not
  name a label twice; a series (labels + timestamp) may not appear twice (``InvalidInput`` naming
  both lines). Labels with empty values are dropped (they do not exist in Prometheus).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, DecimalException

from clearsight.model.labels import METRIC_NAME, Labels, format_labels
from clearsight.model.samples import MetricMetadata, SampleBatch
from clearsight.pipeline.errors import InvalidInput

FORMAT_TEXT = "text/plain; version=0.0.4"
FORMAT_OPENMETRICS = "application/openmetrics-text; version=1.0.0"

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FULL_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
# name="value" with backslash escapes; blanks around tokens only in the 0.0.4 variant.
_LABEL_TEXT_RE = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*')
_LABEL_OM_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
# Go's ParseFloat without hex floats and underscores (Prometheus rejects 'p' and '_'); NaN is unsigned.
_FLOAT_RE = re.compile(
    r"(?:[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)|nan)\Z", re.IGNORECASE
)
_BLANKS_RE = re.compile(r"[ \t]+")
_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
# The common shape of a sample line, matched in one go; anything else takes the general path.
_TEXT_FAST_RE = re.compile(
    r"(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:" + _PAIR + r")(?:," + _PAIR + r")*)?,?\})?)"
    r"[ \t]+([^ \t]+)(?:[ \t]+([^ \t]+))?[ \t]*\Z"
)
_OM_FAST_RE = re.compile(
    r"(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:" + _PAIR + r")(?:," + _PAIR + r")*)?\})?)"
    r" ([^ ]+)(?: ([^ #][^ ]*))?\Z"
)
_TEXT_META_RE = re.compile(r"#[ \t]+(HELP|TYPE)[ \t]+(.*)\Z")
_INT_RE = re.compile(r"[0-9]+\Z")  # Prometheus' text lexer takes no sign
_OM_TS_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

TEXT_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "untyped": "unknown",
}
OM_TYPES = {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
# Sample name suffixes that belong to a family of each OpenMetrics type.
_OM_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
_CREATED_TYPES = {"counter", "histogram", "summary"}


Sample = tuple[Labels, float, int | None]
# raw series text (``name{labels}`` as written) -> (metric name, parsed labels)
SeriesCache = dict[str, tuple[str, Labels]]


@dataclass
class ParsedScrape:
    """The result of parsing one exposition.

    ``samples[i] = (labels, value, ts_ms)``: labels canonical (sorted, with ``__name__``, empty
    values dropped); ``ts_ms`` is None when the exposition gave no timestamp (then
    ``default_ts_ms`` applies).
    """

    samples: list[Sample]
    metadata: list[MetricMetadata]
    format: str
    default_ts_ms: int
    exemplars_dropped: int = 0
    created_dropped: int = 0
    lines: list[int] = field(default_factory=list)  # 1-based source line of each sample

    def timestamp(self, i: int) -> int:
        ts = self.samples[i][2]
        return self.default_ts_ms if ts is None else ts

    def to_batch(self, honor_timestamps: bool = True) -> SampleBatch:
        """All samples as one batch (exposition timestamps used when ``honor_timestamps``)."""
        series: list[tuple[Labels, list[tuple[int, float]]]] = []
        for lbls, v, ts in self.samples:
            t = ts if (ts is not None and honor_timestamps) else self.default_ts_ms
            series.append((lbls, [(t, v)]))
        batch = SampleBatch.from_series(series, self.metadata)
        batch.exemplars_dropped = self.exemplars_dropped
        return batch


def detect_format(content_type: str) -> str:
    """``FORMAT_OPENMETRICS`` or ``FORMAT_TEXT`` for a response's Content-Type.

    Raises InvalidInput for the protobuf exposition format (never requested by our Accept header).
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/openmetrics-text":
        return FORMAT_OPENMETRICS
    if media == "application/vnd.google.protobuf":
        raise InvalidInput(f"unsupported exposition content type {content_type!r} (protobuf)")
    return FORMAT_TEXT


def parse_prometheus_text(
    body: bytes, content_type: str, default_ts_ms: int, *, series_cache: SeriesCache | None = None
) -> ParsedScrape:
    """Parses an exposition; raises InvalidInput (with the line number) on malformed input.

    ``series_cache`` (optional, owned by the caller, e.g. one per scrape target) maps the raw text
    of a series (name and label set, as written) to its parsed labels, so a line seen in an earlier
    exposition is not re-parsed; only its value and timestamp are. The parser adds entries; the
    caller bounds its size (``prune_series_cache``).
    """
    fmt = detect_format(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        line = body.count(b"\n", 0, e.start) + 1
        raise InvalidInput(f"line {line}: invalid UTF-8") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InvalidInput(f"line {line}: NUL byte")
    if fmt == FORMAT_OPENMETRICS:
        return _OpenMetricsParser(text, default_ts_ms, series_cache).parse()
    return _TextParser(text, default_ts_ms, series_cache).parse()


def prune_series_cache(cache: SeriesCache, max_entries: int) -> None:
    """Empties ``cache`` when it holds more than ``max_entries`` (cheap bound for churning targets)."""
    if len(cache) > max_entries:
        cache.clear()


# --------------------------------------------------------------------------------------------
# shared helpers


def _unescape_label_value(v: str) -> str:
    if "\\" not in v:
        return v
    return _ESCAPE_RE.sub(_label_escape, v)


def _label_escape(m: re.Match[str]) -> str:
    c = m.group(1)
    if c == "n":
        return "\n"
    if c == "\\" or c == '"':
        return c
    return m.group(0)


def _unescape_help(v: str, quotes: bool) -> str:
    if "\\" not in v:
        return v

    def repl(m: re.Match[str]) -> str:
        c = m.group(1)
        if c == "n":
            return "\n"
        if c == "\\" or (quotes and c == '"'):
            return c
        return m.group(0)

    return _ESCAPE_RE.sub(repl, v)


def _parse_value(tok: str, lineno: int) -> float:
    if not _FLOAT_RE.match(tok):
        raise InvalidInput(f"line {lineno}: invalid sample value {tok[:40]!r}")
    v = float(tok)
    if math.isinf(v) and "n" not in tok.lower():
        # Go's ParseFloat reports a range error for e.g. 1e400 (only Inf literals give Inf).
        raise InvalidInput(f"line {lineno}: sample value {tok[:40]!r} out of range")
    return v


_PAIR_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _head_end(line: str) -> int:
    """Where the series part (``name`` or ``name{...}``) of a sample line ends; 0 if unclear.

    Only used as a cache key: a key is stored only after a full parse agreed on it.
    """
    if "{" in line:
        return line.rfind("}") + 1
    i = line.find(" ")
    k = line.find("\t")
    if k >= 0 and (i < 0 or k < i):
        return k
    return max(i, 0)


def _text_timestamp(tok: str, lineno: int) -> int:
    if len(tok) > 21 or not _INT_RE.match(tok):
        raise InvalidInput(f"line {lineno}: invalid timestamp {tok[:40]!r} (integer ms expected)")
    ts = int(tok)
    if ts > _INT64_MAX:
        raise InvalidInput(f"line {lineno}: timestamp {tok!r} out of range")
    return ts


def _finish_labels(name: str, pairs: list[tuple[str, str]], lineno: int) -> Labels:
    seen: set[str] = {METRIC_NAME}
    out: list[tuple[str, str]] = [(METRIC_NAME, name)]
    for n, v in pairs:
        if n in seen:
            raise InvalidInput(f"line {lineno}: duplicate label name {n!r}")
        seen.add(n)
        if v != "":
            out.append((n, v))
    out.sort()
    return tuple(out)


class _Base:
    def __init__(self, text: str, default_ts_ms: int, cache: SeriesCache | None = None) -> None:
        self.text = text
        self.cache = cache
        self.default_ts_ms = default_ts_ms
        self.samples: list[Sample] = []
        self.sample_lines: list[int] = []
        self.seen: dict[tuple[Labels, int | None], int] = {}
        self.meta: dict[str, MetricMetadata] = {}
        self.meta_order: list[str] = []
        self.exemplars = 0
        self.created = 0

    def _meta(self, name: str) -> MetricMetadata:
        m = self.meta.get(name)
        if m is None:
            m = MetricMetadata(metric=name, type="unknown")
            self.meta[name] = m
            self.meta_order.append(name)
        return m

    def _add(self, labels: Labels, value: float, ts: int | None, lineno: int) -> None:
        key = (labels, ts)
        prev = self.seen.get(key)
        if prev is not None:
            raise InvalidInput(
                f"line {lineno}: duplicate series {format_labels(labels)} (first seen on line {prev})"
            )
        self.seen[key] = lineno
        self.samples.append((labels, value, ts))
        self.sample_lines.append(lineno)

    def _result(self, fmt: str) -> ParsedScrape:
        return ParsedScrape(
            samples=self.samples,
            metadata=[self.meta[n] for n in self.meta_order],
            format=fmt,
            default_ts_ms=self.default_ts_ms,
            exemplars_dropped=self.exemplars,
            created_dropped=self.created,
            lines=self.sample_lines,
        )


# --------------------------------------------------------------------------------------------
# Prometheus text format 0.0.4


class _TextParser(_Base):
    def parse(self) -> ParsedScrape:
        typed: set[str] = set()
        helped: set[str] = set()
        for lineno, raw in enumerate(self.text.split("\n"), start=1):
            line = raw.rstrip(" \t")
            if not line:
                continue
            if line[0] in " \t":
                line = line.lstrip(" \t")
                if not line:
                    continue
                if line[0] != "#":
                    # Prometheus makes the blanks part of the metric name, which then fails.
                    raise InvalidInput(f"line {lineno}: blank before the metric name")
            if line[0] == "#":
                self._comment(line, lineno, typed, helped)
                continue
            self._sample(line, lineno)
        return self._result(FORMAT_TEXT)

    def _comment(self, line: str, lineno: int, typed: set[str], helped: set[str]) -> None:
        m = _TEXT_META_RE.match(line)
        if m is None:
            return  # any other '#' line is a comment
        kw, rest = m.group(1), m.group(2)
        nm = _METRIC_NAME_RE.match(rest)
        if nm is None:
            raise InvalidInput(f"line {lineno}: invalid metric name in {kw} line")
        name = nm.group(0)
        tail = rest[nm.end() :]
        if tail and tail[0] not in " \t":
            raise InvalidInput(f"line {lineno}: invalid metric name in {kw} line")
        tail = tail.lstrip(" \t")
        if kw == "HELP":
            # A repeated HELP is tolerated (Prometheus' parser accepts it); the first one wins.
            if name not in helped:
                helped.add(name)
                self._meta(name).help = _unescape_help(tail, quotes=False)
        else:
            t = TEXT_TYPES.get(tail)
            if t is None:
                raise InvalidInput(f"line {lineno}: invalid metric type {tail[:40]!r}")
            if name in typed and self.meta[name].type != t:
                raise InvalidInput(
                    f"line {lineno}: conflicting TYPE lines for metric {name!r} "
                    f"({self.meta[name].type} and {t})"
                )
            typed.add(name)
            self._meta(name).type = t

    def _sample(self, line: str, lineno: int) -> None:
        cache = self.cache
        if cache is not None:
            j = _head_end(line)
            if 0 < j < len(line):
                hit = cache.get(line[:j])
                if hit is not None and line[j] in " \t":
                    toks = _BLANKS_RE.split(line[j:].strip(" \t"))
                    if len(toks) > 2:
                        raise InvalidInput(
                            f"line {lineno}: unexpected text after the timestamp: {toks[2][:40]!r}"
                        )
                    value = _parse_value(toks[0], lineno)
                    ts = _text_timestamp(toks[1], lineno) if len(toks) == 2 else None
                    self._add(hit[1], value, ts, lineno)
                    return
        fm = _TEXT_FAST_RE.match(line)
        if fm is not None:
            head, name, body, vtok, tstok = fm.groups()
            pairs = [(k, _unescape_label_value(v)) for k, v in _PAIR_RE.findall(body)] if body else []
            value = _parse_value(vtok, lineno)
            ts = _text_timestamp(tstok, lineno) if tstok is not None else None
            labels = _finish_labels(name, pairs, lineno)
            if cache is not None and _head_end(line) == len(head):
                cache[head] = (name, labels)
            self._add(labels, value, ts, lineno)
            return
        self._sample_general(line, lineno)

    def _sample_general(self, line: str, lineno: int) -> None:
        m = _METRIC_NAME_RE.match(line)
        if m is None:
            raise InvalidInput(f"line {lineno}: expected a metric name, got {line[:40]!r}")
        name = m.group(0)
        pos = m.end()
        n = len(line)
        pairs: list[tuple[str, str]] = []
        after_name = pos
        while pos < n and line[pos] in " \t":
            pos += 1
        blank = pos > after_name
        if pos < n and line[pos] == "{":
            pos += 1
            while True:
                while pos < n and line[pos] in " \t":
                    pos += 1
                if pos < n and line[pos] == "}":
                    pos += 1
                    break
                lm = _LABEL_TEXT_RE.match(line, pos)
                if lm is None:
                    raise InvalidInput(f"line {lineno}: invalid label set for metric {name!r}")
                pairs.append((lm.group(1), _unescape_label_value(lm.group(2))))
                pos = lm.end()
                if pos < n and line[pos] == ",":
                    pos += 1
                    continue
                if pos < n and line[pos] == "}":
                    pos += 1
                    break
                raise InvalidInput(f"line {lineno}: expected ',' or '}}' in label set of {name!r}")
            blank = pos < n and line[pos] in " \t"
        if pos >= n:
            raise InvalidInput(f"line {lineno}: missing value for metric {name!r}")
        if not blank:
            raise InvalidInput(f"line {lineno}: expected a blank before the value of {name!r}")
        rest = _BLANKS_RE.split(line[pos:].strip(" \t"))
        if len(rest) > 2:
            raise InvalidInput(f"line {lineno}: unexpected text after the timestamp: {rest[2][:40]!r}")
        value = _parse_value(rest[0], lineno)
        ts = _text_timestamp(rest[1], lineno) if len(rest) == 2 else None
        self._add(_finish_labels(name, pairs, lineno), value, ts, lineno)


# --------------------------------------------------------------------------------------------
# OpenMetrics 1.0 text


class _OpenMetricsParser(_Base):
    def __init__(self, text: str, default_ts_ms: int, cache: SeriesCache | None = None) -> None:
        super().__init__(text, default_ts_ms, cache)
        self.family: str | None = None
        self.family_type = "unknown"
        self.family_has_samples = False
        self.family_meta_seen: set[str] = set()
        self.closed: set[str] = set()

    def parse(self) -> ParsedScrape:
        lines = self.text.split("\n")
        # "# EOF" must be the last line, optionally followed by one newline.
        if lines and lines[-1] == "":
            lines.pop()
        if not lines or lines[-1] != "# EOF":
            where = len(lines)
            raise InvalidInput(f"line {max(where, 1)}: OpenMetrics exposition must end with '# EOF'")
        for lineno, line in enumerate(lines[:-1], start=1):
            if line == "":
                raise InvalidInput(f"line {lineno}: empty line (not allowed in OpenMetrics)")
            if line[0] == "#":
                if line == "# EOF":
                    raise InvalidInput(f"line {lineno}: '# EOF' before the end of the exposition")
                self._meta_line(line, lineno)
            else:
                self._sample(line, lineno)
        return self._result(FORMAT_OPENMETRICS)

    def _open_family(self, name: str, lineno: int) -> None:
        if name == self.family:
            return
        if self.family is not None:
            self.closed.add(self.family)
        if name in self.closed:
            raise InvalidInput(
                f"line {lineno}: metric family {name!r} is not contiguous (it appeared before another family)"
            )
        self.family = name
        self.family_type = "unknown"
        self.family_has_samples = False
        self.family_meta_seen = set()

    def _meta_line(self, line: str, lineno: int) -> None:
        parts = line.split(" ", 3)
        if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE", "UNIT"):
            raise InvalidInput(
                f"line {lineno}: invalid comment (only '# HELP', '# TYPE', '# UNIT' "
                f"and '# EOF' are allowed in OpenMetrics)"
            )
        kw, name = parts[1], parts[2]
        if not _FULL_METRIC_NAME_RE.match(name):
            raise InvalidInput(f"line {lineno}: invalid metric name {name[:40]!r} in {kw} line")
        arg = parts[3] if len(parts) == 4 else None
        self._open_family(name, lineno)
        if self.family_has_samples:
            raise InvalidInput(f"line {lineno}: {kw} for {name!r} after its samples")
        if kw in self.family_meta_seen:
            raise InvalidInput(f"line {lineno}: second {kw} line for metric family {name!r}")
        self.family_meta_seen.add(kw)
        meta = self._meta(name)
        if kw == "TYPE":
            if arg is None or arg not in OM_TYPES:
                raise InvalidInput(f"line {lineno}: invalid metric type {arg!r}")
            meta.type = arg
            self.family_type = arg
            if meta.unit and arg in ("info", "stateset"):
                raise InvalidInput(f"line {lineno}: {arg} metric {name!r} cannot have a unit")
        elif kw == "HELP":
            meta.help = _unescape_help(arg or "", quotes=True)
        else:
            unit = arg or ""
            if unit and not name.endswith("_" + unit):
                raise InvalidInput(f"line {lineno}: unit {unit!r} is not a suffix of metric {name!r}")
            if unit and self.family_type in ("info", "stateset"):
                raise InvalidInput(f"line {lineno}: {self.family_type} metric {name!r} cannot have a unit")
            meta.unit = unit

    def _family_of(self, name: str) -> tuple[str | None, str]:
        """(family name, suffix) if ``name`` belongs to the current family."""
        fam = self.family
        if fam is None or not name.startswith(fam):
            return None, ""
        suffix = name[len(fam) :]
        if suffix in _OM_SUFFIXES[self.family_type]:
            return fam, suffix
        return None, ""

    def _labels(self, line: str, pos: int, lineno: int, what: str) -> tuple[list[tuple[str, str]], int]:
        # line[pos] == "{"
        pairs: list[tuple[str, str]] = []
        pos += 1
        n = len(line)
        if pos < n and line[pos] == "}":
            return pairs, pos + 1
        while True:
            lm = _LABEL_OM_RE.match(line, pos)
            if lm is None:
                raise InvalidInput(f"line {lineno}: invalid label set of {what}")
            pairs.append((lm.group(1), _unescape_label_value(lm.group(2))))
            pos = lm.end()
            if pos < n and line[pos] == ",":
                pos += 1
                continue
            if pos < n and line[pos] == "}":
                return pairs, pos + 1
            raise InvalidInput(f"line {lineno}: expected ',' or '}}' in label set of {what}")

    def _timestamp(self, tok: str, lineno: int) -> int:
        if not _OM_TS_RE.match(tok):
            raise InvalidInput(f"line {lineno}: invalid timestamp {tok[:40]!r} (seconds expected)")
        try:
            ms = Decimal(tok) * 1000
            in_range = Decimal(_INT64_MIN) <= ms <= Decimal(_INT64_MAX)
        except (DecimalException, ArithmeticError, ValueError):
            in_range = False
        if not in_range:
            raise InvalidInput(f"line {lineno}: timestamp {tok[:40]!r} out of range")
        return math.floor(ms)

    def _sample(self, line: str, lineno: int) -> None:
        cache = self.cache
        if cache is not None and " # " not in line:
            # No exemplar: the last '}' closes the label set.
            j = _head_end(line)
            if 0 < j < len(line) and line[j] == " ":
                hit = cache.get(line[:j])
                if hit is not None:
                    name, labels = hit
                    suffix = self._enter_family(name, lineno)
                    toks = line[j + 1 :].split(" ")
                    if len(toks) > 2 or "" in toks:
                        raise InvalidInput(
                            f"line {lineno}: malformed sample line for {name!r} "
                            f"(tokens must be separated by single spaces)"
                        )
                    value = _parse_value(toks[0], lineno)
                    ts = self._timestamp(toks[1], lineno) if len(toks) == 2 else None
                    self._add_om(labels, value, ts, lineno, suffix)
                    return
        fm = _OM_FAST_RE.match(line)
        if fm is not None:
            head, name, body, vtok, tstok = fm.groups()
            suffix = self._enter_family(name, lineno)
            pairs = [(k, _unescape_label_value(v)) for k, v in _PAIR_RE.findall(body)] if body else []
            value = _parse_value(vtok, lineno)
            ts = self._timestamp(tstok, lineno) if tstok is not None else None
            labels = _finish_labels(name, pairs, lineno)
            if cache is not None and _head_end(line) == len(head):
                cache[head] = (name, labels)
            self._add_om(labels, value, ts, lineno, suffix)
            return
        self._sample_general(line, lineno)

    def _enter_family(self, name: str, lineno: int) -> str:
        """Tracks family grouping for a sample named ``name``; returns its suffix in the family."""
        fam, suffix = self._family_of(name)
        if fam is None:
            if name == self.family:
                allowed = ", ".join(s or "(none)" for s in _OM_SUFFIXES[self.family_type])
                raise InvalidInput(
                    f"line {lineno}: sample {name!r} of {self.family_type} family "
                    f"{name!r} needs one of the suffixes {allowed}"
                )
            # A sample outside the current family: an implicit family of unknown type.
            self._open_family(name, lineno)
            suffix = ""
        self.family_has_samples = True
        return suffix

    def _add_om(self, labels: Labels, value: float, ts: int | None, lineno: int, suffix: str) -> None:
        if suffix == "_created" and self.family_type in _CREATED_TYPES:
            self.created += 1
            return
        self._add(labels, value, ts, lineno)

    def _sample_general(self, line: str, lineno: int) -> None:
        m = _METRIC_NAME_RE.match(line)
        if m is None:
            raise InvalidInput(f"line {lineno}: expected a metric name, got {line[:40]!r}")
        name = m.group(0)
        suffix = self._enter_family(name, lineno)
        pos = m.end()
        pairs: list[tuple[str, str]] = []
        if pos < len(line) and line[pos] == "{":
            pairs, pos = self._labels(line, pos, lineno, repr(name))
        if line[pos : pos + 1] != " ":
            raise InvalidInput(f"line {lineno}: expected a single space before the value of {name!r}")
        rest = line[pos + 1 :]
        exemplar = None
        hash_at = rest.find(" # ")
        if hash_at >= 0:
            exemplar = rest[hash_at + 3 :]
            rest = rest[:hash_at]
        toks = rest.split(" ")
        if len(toks) > 2 or any(t == "" for t in toks):
            raise InvalidInput(
                f"line {lineno}: malformed sample line for {name!r} "
                f"(tokens must be separated by single spaces)"
            )
        value = _parse_value(toks[0], lineno)
        ts = self._timestamp(toks[1], lineno) if len(toks) == 2 else None
        if exemplar is not None:
            self._exemplar(exemplar, lineno, name)
        self._add_om(_finish_labels(name, pairs, lineno), value, ts, lineno, suffix)

    def _exemplar(self, text: str, lineno: int, name: str) -> None:
        if not text.startswith("{"):
            raise InvalidInput(f"line {lineno}: invalid exemplar on {name!r} (expected '{{')")
        pairs, pos = self._labels(text, 0, lineno, f"the exemplar of {name!r}")
        seen: set[str] = set()
        runes = 0
        for n, v in pairs:
            if n in seen:
                raise InvalidInput(f"line {lineno}: duplicate label name {n!r} in exemplar")
            seen.add(n)
            runes += len(n) + len(v)
        if runes > 128:
            raise InvalidInput(f"line {lineno}: exemplar labels of {name!r} exceed 128 characters")
        if text[pos : pos + 1] != " ":
            raise InvalidInput(f"line {lineno}: exemplar of {name!r} has no value")
        toks = text[pos + 1 :].split(" ")
        if len(toks) > 2 or any(t == "" for t in toks):
            raise InvalidInput(f"line {lineno}: malformed exemplar on {name!r}")
        _parse_value(toks[0], lineno)
        if len(toks) == 2:
            self._timestamp(toks[1], lineno)
        self.exemplars += 1
