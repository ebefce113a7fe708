"""Runs Prometheus' promqltest files (../shared/conformance/promqltest) against the Clearsight engine.

Implements the DSL described in that directory's README.md: ``load``/``load_with_nhcb``, ``clear``,
``eval instant``/``eval range`` with ``expect`` lines (and the deprecated ``eval_fail`` etc.), and the
extra checks promqltest does for instant queries (the same query with ``@`` pinned at several times,
and each as a short range query compared at its middle step).

Native histogram samples (``{{...}}`` literals, ``load_with_nhcb`` conversion of classic
histograms) are loaded into the store with the counter reset hints Prometheus' TSDB reads back,
and histogram results are compared as promqltest does (compacted, floats within epsilon, the hint
only when the expected literal gives one).

Usage: ``python -m tests.conformance.promqltest_runner [-v] [files...]`` prints ``file: passed/total``
per file and a total line; exits non-zero only if the runner itself crashes.
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clearsight.model import histogram_text
from clearsight.model.histogram import FloatHistogram, storage_hints
from clearsight.model.histogram_math import ClassicHistogramBuilder, NHCBConversionError, histogram_base_name
from clearsight.model.histogram_text import (
    ParsedHistogram,
    expand_histogram_item,
    format_histogram,
    parse_histogram,
)
from clearsight.model.labels import Labels, format_labels
from clearsight.model.samples import STALE_NAN
from clearsight.query.promql.ast import Expr
from clearsight.query.promql.engine import (
    Engine,
    NotImplementedQueryError,
    Positions,
    parse_with_positions,
    with_at_everywhere,
)
from clearsight.query.promql.result import QueryResult, SeriesResult
from clearsight.store.memory import MemorySeriesSelector

DEFAULT_EPSILON = 0.000001
MIN_NORMAL = struct.unpack("<d", struct.pack("<Q", 0x0010000000000000))[0]


def shared_dir() -> Path:
    env = os.environ.get("CLEARSIGHT_SHARED")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared"


def promqltest_dir() -> Path:
    return shared_dir() / "conformance" / "promqltest"


# ---------------------------------------------------------------- parsing helpers

_DUR_RE = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
            "y": 31_536_000_000}


def parse_duration(s: str) -> int:
    """Prometheus model.ParseDuration (milliseconds); "0" is allowed."""
    s = s.strip()
    if s == "0":
        return 0
    neg = s.startswith("-")
    body = s[1:] if neg else s
    pos = 0
    total = 0
    for m in _DUR_RE.finditer(body):
        if m.start() != pos:
            raise ValueError(f"invalid duration {s!r}")
        total += int(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise ValueError(f"invalid duration {s!r}")
    return -total if neg else total


def go_parse_number(s: str) -> float:
    """strconv.ParseInt(s, 0, 64) falling back to ParseFloat."""
    t = s.strip()
    try:
        return float(int(t, 0))
    except ValueError:
        pass
    low = t.lower().lstrip("+-")
    if low in ("inf", "infinity"):
        return -math.inf if t.startswith("-") else math.inf
    if low == "nan":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", t):
        if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", t):
            return float(int(t, 16))
        raise ValueError(f"not a number: {s!r}")
    return float(t)


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "`": "`"}


def _read_quoted(s: str, i: int) -> tuple[str, int]:
    q = s[i]
    i += 1
    out = []
    while i < len(s):
        ch = s[i]
        if ch == q:
            return "".join(out), i + 1
        if ch == "\\" and q != "`":
            nxt = s[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "x":
                out.append(chr(int(s[i + 2:i + 4], 16)))
                i += 4
                continue
            if nxt == "u":
                out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt == "U":
                out.append(chr(int(s[i + 2:i + 10], 16)))
                i += 10
                continue
            out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise ValueError("unterminated string")


_IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:.]*")


def parse_series_desc(line: str) -> tuple[Labels, str]:
    """Splits ``metric{labels} values...`` into a label set and the values text."""
    s = line.strip()
    i = 0
    pairs: dict[str, str] = {}
    m = _IDENT_RE.match(s, i)
    if m and (m.end() == len(s) or s[m.end()] in " \t{"):
        pairs["__name__"] = m.group(0)
        i = m.end()
    if i < len(s) and s[i] == "{":
        i += 1
        while True:
            while i < len(s) and s[i] in " \t,":
                i += 1
            if i >= len(s):
                raise ValueError("unterminated label set")
            if s[i] == "}":
                i += 1
                break
            if s[i] in "\"'`":
                name, i = _read_quoted(s, i)
            else:
                mm = _IDENT_RE.match(s, i)
                if not mm:
                    raise ValueError(f"bad label name at {s[i:]!r}")
                name = mm.group(0)
                i = mm.end()
            while i < len(s) and s[i] in " \t":
                i += 1
            if i < len(s) and s[i] == "=":
                i += 1
                while i < len(s) and s[i] in " \t":
                    i += 1
                value, i = _read_quoted(s, i)
                pairs[name] = value
            else:
                pairs["__name__"] = name
    elif not pairs:
        raise ValueError(f"bad series description {line!r}")
    labels = tuple(sorted((n, v) for n, v in pairs.items() if v != ""))
    return labels, s[i:].strip()


class Omitted:
    pass


class Histogram:
    """A histogram point of a series or an expected result."""

    def __init__(self, text: str, parsed: ParsedHistogram | None = None) -> None:
        self.text = text
        self.parsed = parsed if parsed is not None else parse_histogram(text)

    @property
    def histogram(self) -> FloatHistogram:
        return self.parsed.histogram

    @property
    def hint_set(self) -> bool:
        return self.parsed.counter_reset_hint_set


SeqValue = float | Omitted | Histogram
OMITTED = Omitted()

_NUM = r"[-+]?(?:[Ii]nf|NaN|nan|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_NUM_U = r"(?:[Ii]nf|NaN|nan|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_EXPAND_RE = re.compile(rf"^({_NUM})(?:([+-])({_NUM_U}))?x(\d+)$")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        j = i
        while j < n and text[j] not in " \t":
            if text.startswith("{{", j):
                end = text.find("}}", j)
                if end < 0:
                    raise ValueError("unterminated histogram literal")
                j = end + 2
                continue
            j += 1
        out.append(text[i:j])
        i = j
    return out


def parse_values(text: str) -> list[SeqValue]:
    vals: list[SeqValue] = []
    for tok in _tokens(text):
        if tok.startswith("#"):
            break
        if tok == "_":
            vals.append(OMITTED)
            continue
        if tok.startswith("_x"):
            vals.extend([OMITTED] * int(tok[2:]))
            continue
        if tok == "stale":
            vals.append(STALE_NAN)
            continue
        if tok.startswith("{{"):
            vals.extend(Histogram(tok, ph) for ph in expand_histogram_item(tok))
            continue
        m = _EXPAND_RE.match(tok)
        if m:
            start = go_parse_number(m.group(1))
            times = int(m.group(4))
            delta = 0.0
            if m.group(2):
                delta = go_parse_number(m.group(3))
                if m.group(2) == "-":
                    delta = -delta
            cur = start
            for _ in range(times + 1):
                vals.append(cur)
                cur += delta
            continue
        vals.append(go_parse_number(tok))
    return vals


# ---------------------------------------------------------------- commands

@dataclass
class LoadCmd:
    interval_ms: int
    with_nhcb: bool
    series: list[tuple[Labels, list[SeqValue]]]
    # Start timestamp offsets (ms, relative to each sample's time; None = omitted) per series
    # index, from ``metric@st`` lines.
    start_offsets: dict[int, list[int | None]] = field(default_factory=dict)


@dataclass
class ClearCmd:
    pass


@dataclass
class Expect:
    message: str | None = None
    regex: re.Pattern[str] | None = None

    def matches(self, s: str) -> bool:
        if self.regex is not None:
            return self.regex.search(s) is not None
        return self.message == s


@dataclass
class EvalCmd:
    expr: str
    line: int
    is_range: bool
    start: int = 0
    end: int = 0
    step: int = 0
    eval_time: int = 0
    fail: bool = False
    warn: bool = False
    info: bool = False
    ordered: bool = False
    fail_message: str | None = None
    fail_regexp: re.Pattern[str] | None = None
    expects: dict[str, list[Expect]] = field(default_factory=dict)
    expect_scalar: bool = False
    expected: dict[Labels, tuple[int, list[SeqValue]]] = field(default_factory=dict)
    expected_string: str | None = None
    exclude_from_range: bool = False
    parse_error: str | None = None

    def is_fail(self) -> bool:
        return self.fail or bool(self.expects.get("fail"))

    def is_ordered(self) -> bool:
        return self.ordered or bool(self.expects.get("ordered"))

    def needs_histograms(self) -> bool:
        return any(isinstance(v, Histogram) for _, vals in self.expected.values() for v in vals)


Command = LoadCmd | ClearCmd | EvalCmd

_PAT_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_PAT_INSTANT = re.compile(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_PAT_RANGE = re.compile(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
_PAT_EXPECT = re.compile(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
_PAT_EXPECT_RANGE = re.compile(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.split("\n"):
        s = raw.strip()
        if s.startswith("#"):
            s = ""
        out.append(s)
    return out


def parse_script(text: str) -> list[Command]:
    lines = _lines(text)
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = re.split(r"[\t ]+", line, maxsplit=1)[0].lower()
        if word == "clear":
            cmds.append(ClearCmd())
            i += 1
        elif word.startswith("load"):
            i, lc = _parse_load(lines, i)
            cmds.append(lc)
        elif word.startswith("eval"):
            i, ec = _parse_eval(lines, i)
            cmds.append(ec)
        else:
            raise ValueError(f"line {i + 1}: invalid command {line!r}")
    return cmds


def _parse_load(lines: list[str], i: int) -> tuple[int, LoadCmd]:
    m = _PAT_LOAD.match(lines[i])
    if not m:
        raise ValueError(f"line {i + 1}: invalid load command")
    cmd = LoadCmd(parse_duration(m.group(2)), m.group(1) == "with_nhcb", [])
    i += 1
    while i < len(lines) and lines[i]:
        line = lines[i]
        first = re.split(r"[\t ]+", line, maxsplit=1)[0]
        if first.endswith("@st"):
            st_labels, st_rest = parse_series_desc(first[:-3] + line[len(first):])
            st_vals = parse_st_sequence(st_rest)
            i += 1
            if i >= len(lines) or not lines[i]:
                raise ValueError(f"line {i}: @st line has no following sample line")
            labels, rest = parse_series_desc(lines[i])
            if labels != st_labels:
                raise ValueError(f"line {i}: @st metric does not match the following sample line metric")
            vals = parse_values(rest)
            if len(st_vals) != len(vals):
                raise ValueError(f"line {i}: @st line has {len(st_vals)} values but sample line has {len(vals)}")
            cmd.start_offsets[len(cmd.series)] = st_vals
            cmd.series.append((labels, vals))
            i += 1
            continue
        labels, rest = parse_series_desc(line)
        cmd.series.append((labels, parse_values(rest)))
        i += 1
    return i, cmd


_DUR_PREFIX_RE = re.compile(r"[-+]?(?:(?:\d+(?:ms|y|w|d|h|m|s))+|0)")


def _dur_prefix(s: str) -> tuple[int, str]:
    m = _DUR_PREFIX_RE.match(s)
    if not m:
        raise ValueError(f"invalid duration in {s!r}")
    text = m.group(0)
    sign = -1 if text.startswith("-") else 1
    return sign * parse_duration(text.lstrip("+-")), s[m.end():]


def parse_st_sequence(text: str) -> list[int | None]:
    """promqltest's ``@st`` offsets: ``_``, ``_xN``, ``<dur>``, ``<dur>xN``, ``<dur>(+|-)<dur>xN``."""
    out: list[int | None] = []
    for item in text.split():
        if item == "_":
            out.append(None)
            continue
        if item.startswith("_x"):
            out.extend([None] * int(item[2:]))
            continue
        base, rest = _dur_prefix(item)
        if not rest:
            out.append(base)
        elif rest[0] == "x":
            out.extend([base] * (int(rest[1:]) + 1))
        else:
            delta, rest2 = _dur_prefix(rest[1:])
            if rest[0] == "-":
                delta = -delta
            if not rest2.startswith("x"):
                raise ValueError(f"expected x<count> in {item!r}")
            out.extend(base + delta * n for n in range(int(rest2[1:]) + 1))
    return out


def _parse_eval(lines: list[str], i: int) -> tuple[int, EvalCmd]:
    line = lines[i]
    mi = _PAT_INSTANT.match(line)
    mr = _PAT_RANGE.match(line)
    if mi is None and mr is None:
        raise ValueError(f"line {i + 1}: invalid eval command")
    if mi is not None:
        mod = mi.group(1)
        cmd = EvalCmd(expr=mi.group(3), line=i + 1, is_range=False)
        t = parse_duration(mi.group(2) or "0")
        cmd.start = cmd.eval_time = t
    else:
        assert mr is not None
        mod = mr.group(1)
        cmd = EvalCmd(expr=mr.group(5), line=i + 1, is_range=True, start=parse_duration(mr.group(2)),
                      end=parse_duration(mr.group(3)), step=parse_duration(mr.group(4)))
    if mod == "ordered":
        cmd.ordered = True
    elif mod == "fail":
        cmd.fail = True
    elif mod == "warn":
        cmd.warn = True
    elif mod == "info":
        cmd.info = True
    expect_range_vector = False
    j = 1
    while i + 1 < len(lines):
        i += 1
        d = lines[i]
        if not d:
            i -= 1
            break
        if cmd.fail and d.startswith("expected_fail_message"):
            cmd.fail_message = d[len("expected_fail_message"):].strip()
            break
        if cmd.fail and d.startswith("expected_fail_regexp"):
            cmd.fail_regexp = re.compile(d[len("expected_fail_regexp"):].strip())
            break
        if d.startswith("expect range vector"):
            m = _PAT_EXPECT_RANGE.match(d)
            if not m:
                raise ValueError(f"line {i + 1}: invalid range vector definition")
            cmd.start = parse_duration(m.group(1))
            cmd.end = parse_duration(m.group(2))
            cmd.step = parse_duration(m.group(3))
            cmd.eval_time = cmd.end
            cmd.exclude_from_range = True
            expect_range_vector = True
            continue
        if d.startswith("expect string"):
            lit = d[len("expect string"):].strip()
            if len(lit) >= 2 and lit[0] in "\"`" and lit[-1] == lit[0]:
                cmd.expected_string = _read_quoted(lit, 0)[0]
            else:
                raise ValueError(f"line {i + 1}: bad expected string")
            cmd.exclude_from_range = True
            continue
        if d.split(" ")[0] == "expect":
            m = _PAT_EXPECT.match(d.strip())
            if not m:
                raise ValueError(f"line {i + 1}: invalid expect statement")
            kind = m.group(1)
            ex = Expect()
            if m.group(2) == "msg":
                ex.message = m.group(3).strip()
            elif m.group(2) == "regex":
                ex.regex = re.compile(m.group(3).strip())
            else:
                ex.regex = re.compile(r"^.*$", re.S)
            cmd.expects.setdefault(kind, []).append(ex)
            continue
        try:
            f = go_parse_number(d)
            cmd.expect_scalar = True
            cmd.expected = {(): (0, [f])}
            break
        except ValueError:
            pass
        labels, rest = parse_series_desc(d)
        vals = parse_values(rest)
        if len(vals) > 1 and not cmd.is_range and not expect_range_vector:
            raise ValueError(f"line {i + 1}: multiple values in instant evaluation")
        cmd.expect_scalar = False
        cmd.expected[labels] = (j, vals)
        j += 1
    return i + 1, cmd


# ---------------------------------------------------------------- evaluation

class EvalFailure(Exception):
    pass


def almost_equal(a: float, b: float, eps: float = DEFAULT_EPSILON) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < MIN_NORMAL:
        return diff < eps * MIN_NORMAL
    return diff / min(abs_sum, sys.float_info.max) < eps


def _with_storage_hints(hs: list[FloatHistogram | None]) -> list[FloatHistogram | None]:
    """Counter reset hints as the TSDB reads them back: runs of consecutive histogram samples
    (a float sample between them starts a new run)."""
    out: list[FloatHistogram | None] = list(hs)
    i = 0
    while i < len(hs):
        if hs[i] is None:
            i += 1
            continue
        j = i
        run: list[FloatHistogram] = []
        while j < len(hs):
            h = hs[j]
            if h is None:
                break
            run.append(h)
            j += 1
        out[i:j] = storage_hints(run)
        i = j
    return out


_CONTEXT_FUNCS = re.compile(r"(start|end|range|step)\(\)")


class Runner:
    def __init__(self, parse: Callable[[str], Expr], engine: Engine | None = None) -> None:
        self.parse = parse
        self.engine = engine or Engine(timeout_s=100.0, max_samples=50_000_000)
        self.store = MemorySeriesSelector()
        self.has_histograms = False  # whether loaded data holds histogram samples (for reporting)

    def clear(self) -> None:
        self.store = MemorySeriesSelector()
        self.has_histograms = False

    def load(self, cmd: LoadCmd) -> None:
        for si, (labels, vals) in enumerate(cmd.series):
            ts: list[int] = []
            vs: list[float] = []
            hs: list[FloatHistogram | None] = []
            offsets = cmd.start_offsets.get(si)
            sts: list[int] | None = [] if offsets is not None else None
            for i, v in enumerate(vals):
                if isinstance(v, Omitted):
                    continue
                if sts is not None and offsets is not None:
                    off = offsets[i]
                    sts.append(0 if off is None else i * cmd.interval_ms + off)
                ts.append(i * cmd.interval_ms)
                if isinstance(v, Histogram):
                    vs.append(math.nan)
                    hs.append(v.histogram)
                else:
                    vs.append(v)
                    hs.append(None)
            if ts:
                self._add(labels, ts, vs, hs, sts)
        if cmd.with_nhcb:
            self._load_nhcb(cmd)

    def _add(self, labels: Labels, ts: list[int], vs: list[float], hs: list[FloatHistogram | None],
             sts: list[int] | None = None) -> None:
        if any(h is not None for h in hs):
            hs = _with_storage_hints(hs)
            self.store.add(labels, ts, vs, hs, start_timestamps=sts)
            self.has_histograms = True
        else:
            self.store.add(labels, ts, vs, start_timestamps=sts)

    def _load_nhcb(self, cmd: LoadCmd) -> None:
        """``load_with_nhcb``: classic ``_bucket``/``_count``/``_sum`` series are also stored as
        one native histogram with custom buckets per base series and timestamp."""
        groups: dict[Labels, dict[int, ClassicHistogramBuilder]] = {}
        for labels, vals in cmd.series:
            d = dict(labels)
            kind, base = histogram_base_name(d.get("__name__", ""))
            if not kind:
                continue
            le = 0.0
            if kind == "bucket":
                if "le" not in d:
                    raise ValueError(f"expected bucket label in metric {format_labels(labels)}")
                try:
                    le = go_parse_number(d["le"])
                except ValueError:
                    continue
                if math.isnan(le):
                    continue
            d["__name__"] = base
            d.pop("le", None)
            key = tuple(sorted(d.items()))
            by_ts = groups.setdefault(key, {})
            for i, v in enumerate(vals):
                if isinstance(v, Omitted | Histogram):
                    continue
                b = by_ts.setdefault(i * cmd.interval_ms, ClassicHistogramBuilder())
                if kind == "bucket":
                    b.set_bucket_count(le, v)
                elif kind == "count":
                    b.set_count(v)
                else:
                    b.set_sum(v)
        for key, by_ts in groups.items():
            times = sorted(by_ts)
            hs: list[FloatHistogram | None] = []
            for t in times:
                try:
                    hs.append(by_ts[t].convert())
                except NHCBConversionError as e:
                    raise ValueError(f"converting {format_labels(key)} at {t}: {e}") from e
            self._add(key, times, [math.nan] * len(times), hs)

    # -- eval

    def run_eval(self, cmd: EvalCmd) -> None:
        sel = self.store
        if cmd.is_range:
            self._range_eval(cmd, sel)
        else:
            self._instant_eval(cmd, sel)

    def _parse_expr(self, cmd: EvalCmd) -> tuple[Expr, Positions] | Exception:
        try:
            if self.parse is _default_parse_fn:
                return parse_with_positions(cmd.expr)
            return self.parse(cmd.expr), {}
        except Exception as e:
            return e

    def _check_failure(self, cmd: EvalCmd, err: Exception) -> None:
        if isinstance(err, NotImplementedQueryError):
            raise EvalFailure(f"expected a failure, but the engine only lacks a feature: {err}")
        msg = str(err)
        if cmd.fail_message is not None and cmd.fail_message != msg:
            raise EvalFailure(f"expected error {cmd.fail_message!r}, got {msg!r}")
        if cmd.fail_regexp is not None and not cmd.fail_regexp.search(msg):
            raise EvalFailure(f"expected error matching {cmd.fail_regexp.pattern!r}, got {msg!r}")
        exps = cmd.expects.get("fail")
        if exps and not exps[0].matches(msg):
            raise EvalFailure(f"expected error matching {exps[0].message or exps[0].regex}, got {msg!r}")

    def _range_eval(self, cmd: EvalCmd, sel: MemorySeriesSelector) -> None:
        parsed = self._parse_expr(cmd)
        try:
            if isinstance(parsed, Exception):
                raise parsed
            res = self.engine.range(sel, parsed[0], cmd.start, cmd.end, cmd.step, positions=parsed[1],
                                    query_text=cmd.expr)
        except Exception as e:
            if cmd.is_fail():
                self._check_failure(cmd, e)
                return
            raise EvalFailure(f"error evaluating query: {type(e).__name__}: {e}") from e
        if cmd.is_fail():
            raise EvalFailure("expected error but got none")
        self._check_annotations(cmd, res)
        self._compare(cmd, res)

    def _instant_eval(self, cmd: EvalCmd, sel: MemorySeriesSelector) -> None:
        parsed = self._parse_expr(cmd)
        queries: list[tuple[tuple[Expr, Positions] | Exception, int]] = [(parsed, cmd.eval_time)]
        if not isinstance(parsed, Exception):
            t = cmd.eval_time
            at_expr = with_at_everywhere(parsed[0], t, parsed[1])
            if at_expr is not None:
                times = [-10 * t, 0, int(t / 5), t, 10 * t] if t != 0 else [-1000, 0, 1000]
                queries.extend((at_expr, et) for et in times)
        for q, t in queries:
            self._run_instant(cmd, sel, q, t)

    def _run_instant(self, cmd: EvalCmd, sel: MemorySeriesSelector, parsed: tuple[Expr, Positions] | Exception,
                     t: int) -> None:
        try:
            if isinstance(parsed, Exception):
                raise parsed
            q, positions = parsed
            res = self.engine.instant(sel, q, t, positions=positions, query_text=cmd.expr)
        except Exception as e:
            if cmd.is_fail():
                self._check_failure(cmd, e)
                return
            raise EvalFailure(f"error evaluating query at {t}: {type(e).__name__}: {e}") from e
        if cmd.is_fail():
            raise EvalFailure("expected error but got none")
        self._check_annotations(cmd, res)
        self._compare(cmd, res)
        if cmd.exclude_from_range or _CONTEXT_FUNCS.search(cmd.expr):
            return
        try:
            rres = self.engine.range(sel, q, t - 60_000, t + 60_000, 60_000, positions=positions,
                                     query_text=cmd.expr)
        except Exception as e:
            raise EvalFailure(f"error evaluating query in range mode: {type(e).__name__}: {e}") from e
        if cmd.is_ordered():
            return
        labels = [s.labels for s in rres.series]
        if labels != sorted(labels):
            raise EvalFailure("range query result is not sorted by labels")
        picked: list[Any] = []
        for s in rres.series:
            hit = np.nonzero(s.timestamps == t)[0]
            if hit.size:
                picked.append((s.labels, _point(s, int(hit[0]))))
        if res.result_type == "scalar":
            if not picked:
                raise EvalFailure("range mode returned no scalar value")
            self._compare_scalar(cmd, picked[0][1])
        else:
            self._compare_vector(cmd, picked)

    def _check_annotations(self, cmd: EvalCmd, res: QueryResult) -> None:
        warnings = res.annotations.warnings
        infos = res.annotations.infos
        if cmd.warn and not warnings:
            raise EvalFailure("expected warnings but got none")
        if cmd.info and not infos:
            raise EvalFailure("expected info annotations but got none")
        for kind, actual in (("warn", warnings), ("info", infos)):
            exps = cmd.expects.get(kind, [])
            if not exps:
                continue
            if not actual:
                raise EvalFailure(f"expected {kind} annotations but none were found")
            for ex in exps:
                if not any(ex.matches(a) for a in actual):
                    raise EvalFailure(f"expected {kind} annotation {ex.message or ex.regex}, found {actual}")
            for a in actual:
                if not any(ex.matches(a) for ex in exps):
                    raise EvalFailure(f"unexpected {kind} annotation {a!r}")
        if "no_warn" in cmd.expects and warnings:
            raise EvalFailure(f"unexpected warnings {warnings}")
        if "no_info" in cmd.expects and infos:
            raise EvalFailure(f"unexpected infos {infos}")

    def _compare(self, cmd: EvalCmd, res: QueryResult) -> None:
        rt = res.result_type
        if rt == "string":
            if cmd.expected_string != res.string_value:
                raise EvalFailure(f"expected string {cmd.expected_string!r} but got {res.string_value!r}")
            return
        if rt == "scalar":
            if not cmd.expect_scalar:
                raise EvalFailure(f"expected vector or matrix result, but got scalar {res.scalar_value}")
            self._compare_scalar(cmd, res.scalar_value)
            return
        if rt == "vector":
            self._compare_vector(cmd, [(s.labels, _point(s, 0)) for s in res.series])
            return
        # matrix
        if cmd.is_ordered():
            raise EvalFailure("expected ordered result, but query returned a matrix")
        if cmd.expect_scalar:
            raise EvalFailure("expected scalar result, but got matrix")
        labels = [s.labels for s in res.series]
        if labels != sorted(labels):
            raise EvalFailure("matrix results should always be sorted by labels")
        seen = set()
        for s in res.series:
            if s.labels not in cmd.expected:
                raise EvalFailure(f"unexpected metric {format_labels(s.labels)} in result, has "
                                  f"{s.points()}")
            seen.add(s.labels)
            _, vals = cmd.expected[s.labels]
            exp_pts: list[tuple[int, float]] = []
            exp_hs: list[tuple[int, Histogram]] = []
            for i, e in enumerate(vals):
                t = cmd.start + i * cmd.step
                if t > cmd.end:
                    raise EvalFailure("expected more points than the time range can return")
                if isinstance(e, Histogram):
                    exp_hs.append((t, e))
                elif not isinstance(e, Omitted):
                    exp_pts.append((t, e))
            got = s.points()
            got_h = s.histogram_points()
            if len(got) != len(exp_pts) or len(got_h) != len(exp_hs):
                raise EvalFailure(f"expected {len(exp_pts)} float points and {len(exp_hs)} histogram points "
                                  f"for {format_labels(s.labels)}, got {got} and "
                                  f"{[(t, format_histogram(h)) for t, h in got_h]}")
            for (et, ev), (gt, gv) in zip(exp_pts, got, strict=True):
                if et != gt:
                    raise EvalFailure(f"expected timestamp {et} for {format_labels(s.labels)}, got {gt}")
                if not almost_equal(ev, gv):
                    raise EvalFailure(f"expected {ev} at {et} for {format_labels(s.labels)}, got {gv}")
            for (et, eh), (gt, gh) in zip(exp_hs, got_h, strict=True):
                if et != gt:
                    raise EvalFailure(f"expected histogram timestamp {et} for {format_labels(s.labels)}, got {gt}")
                if not hist_equal(eh.histogram, gh, eh.hint_set):
                    raise EvalFailure(f"expected {eh.text} at {et} for {format_labels(s.labels)}, got "
                                      f"{format_histogram(gh)}")
        for lbl in cmd.expected:
            if lbl not in seen:
                raise EvalFailure(f"expected metric {format_labels(lbl)} not found")

    def _compare_scalar(self, cmd: EvalCmd, got: float | FloatHistogram) -> None:
        if isinstance(got, FloatHistogram):
            raise EvalFailure("expected a scalar, got a histogram")
        if not cmd.expect_scalar:
            raise EvalFailure(f"expected vector or matrix result, but got scalar {got}")
        exp = cmd.expected[()][1][0]
        if not isinstance(exp, float):
            raise EvalFailure("expected a histogram scalar")
        if not almost_equal(exp, got):
            raise EvalFailure(f"expected scalar {exp} but got {got}")

    def _compare_vector(self, cmd: EvalCmd, got: list[tuple[Labels, float | FloatHistogram]]) -> None:
        if cmd.expect_scalar:
            raise EvalFailure(f"expected scalar result, but got vector {got}")
        seen = set()
        for pos, (lbl, v) in enumerate(got):
            if lbl not in cmd.expected:
                raise EvalFailure(f"unexpected metric {format_labels(lbl)} in result, has value {v}")
            exp_pos, vals = cmd.expected[lbl]
            if cmd.is_ordered() and exp_pos != pos + 1:
                raise EvalFailure(f"expected metric {format_labels(lbl)} at position {exp_pos} but was at "
                                  f"{pos + 1}")
            e0 = vals[0]
            if isinstance(e0, Omitted):
                raise EvalFailure(f"expected no value for {format_labels(lbl)}")
            if isinstance(e0, Histogram):
                if not isinstance(v, FloatHistogram):
                    raise EvalFailure(f"expected histogram {e0.text} for {format_labels(lbl)} but got float {v}")
                if not hist_equal(e0.histogram, v, e0.hint_set):
                    raise EvalFailure(f"expected {e0.text} for {format_labels(lbl)} but got {format_histogram(v)}")
                seen.add(lbl)
                continue
            if isinstance(v, FloatHistogram):
                raise EvalFailure(f"expected float value {e0} for {format_labels(lbl)} but got histogram "
                                  f"{format_histogram(v)}")
            if not almost_equal(e0, v):
                raise EvalFailure(f"expected {e0} for {format_labels(lbl)} but got {v}")
            seen.add(lbl)
        for lbl in cmd.expected:
            if lbl not in seen:
                raise EvalFailure(f"expected metric {format_labels(lbl)} not found")


def hist_equal(expected: FloatHistogram, actual: FloatHistogram, hint_set: bool) -> bool:
    """promqltest's histogram comparison (``histogram_text.promqltest_equal``, formerly ``test_equal``)."""
    fn = getattr(histogram_text, "promqltest_equal", None) or histogram_text.test_equal
    return bool(fn(expected, actual, hint_set))


def _point(s: SeriesResult, i: int) -> float | FloatHistogram:
    if s.histograms is not None:
        h = s.histograms[i]
        if h is not None:
            return h
    return float(s.values[i])


@dataclass
class FileResult:
    name: str
    passed: int = 0
    total: int = 0
    histogram_failures: int = 0
    failures: list[tuple[int, str, str]] = field(default_factory=list)


def _default_parse_fn(query: str) -> Expr:
    return parse_with_positions(query)[0]


def _default_parse() -> Callable[[str], Expr] | None:
    try:
        from clearsight.query.promql import parser as pmod
    except ImportError:
        return None
    fn = getattr(pmod, "parse", None)
    return _default_parse_fn if callable(fn) else None


def run_file(path: Path, parse: Callable[[str], Expr] | None = None) -> FileResult:
    text = path.read_text()
    result = FileResult(path.name)
    cmds = parse_script(text)
    parse_fn = parse or _default_parse()
    runner = Runner(parse_fn) if parse_fn is not None else None
    for cmd in cmds:
        if isinstance(cmd, EvalCmd):
            result.total += 1
            if runner is None:
                result.failures.append((cmd.line, cmd.expr, "no PromQL parser available"))
                continue
            try:
                runner.run_eval(cmd)
                result.passed += 1
            except Exception as e:
                why = str(e) if isinstance(e, EvalFailure) else f"crash: {type(e).__name__}: {e}"
                if cmd.needs_histograms() or runner.has_histograms:
                    result.histogram_failures += 1
                    why = f"[native histograms] {why}"
                result.failures.append((cmd.line, cmd.expr, why))
        elif runner is None:
            continue
        elif isinstance(cmd, LoadCmd):
            runner.load(cmd)
        else:
            runner.clear()
    return result


def all_files() -> list[Path]:
    return sorted(promqltest_dir().glob("*.test"))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    if "-v" in args:
        verbose = True
        args.remove("-v")
    files = [Path(a) if os.sep in a or (a.endswith(".test") and Path(a).exists()) else promqltest_dir() / a
             for a in args] or all_files()
    if not files:
        print(f"no promqltest files found under {promqltest_dir()}", file=sys.stderr)
        return 2
    tp = tt = th = 0
    for f in files:
        r = run_file(f)
        tp += r.passed
        tt += r.total
        th += r.histogram_failures
        print(f"{r.name}: {r.passed}/{r.total}" + (f" (failures with histogram data: {r.histogram_failures})"
                                                     if r.histogram_failures else ""))
        if verbose:
            for line, expr, why in r.failures:
                print(f"    line {line}: {expr}\n        {why}")
    print(f"TOTAL: {tp}/{tt} (failures with histogram data: {th})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
