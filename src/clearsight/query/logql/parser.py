"""LogQL parser: log queries (stream selector + pipeline) and metric queries.

    {app="api", env=~"prod|stage"} |= "error" or "fail" | json | status >= 500 | line_format "{{.msg}}"
    sum by (level) (rate({app="api"} | logfmt | unwrap duration(took) | __error__="" [5m] offset 1h))

A hand-written recursive-descent parser over the text (no token list): every error names its
position in Loki's wording, ``parse error at line 1, col 7: syntax error: unexpected ...``.
Matchers use ``=``, ``!=``, ``=~``, ``!~`` (regexes fully anchored); line filters ``|=``, ``!=``,
``|~``, ``!~``, ``|>``, ``!>`` with ``or`` chains; strings are double-quoted (Go escapes) or
back-quoted (raw). A selector needs at least one matcher that does not match the empty string.
Templates, regexes and patterns are compiled here, so a bad one is a parse error (HTTP 400).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from clearsight.model.matchers import Matcher, RegexError, compile_anchored, compile_regex
from clearsight.query.logql.ast import (
    LINE_RANGE_OPS,
    RANGE_OPS,
    UNWRAP_RANGE_OPS,
    VECTOR_OPS,
    BinaryOp,
    DecolorizeStage,
    DropKeepItem,
    DropStage,
    Expr,
    Grouping,
    JsonStage,
    KeepStage,
    LabelAnd,
    LabelCompare,
    LabelExpr,
    LabelFilterStage,
    LabelFormatItem,
    LabelFormatStage,
    LabelOr,
    LabelReplace,
    LineFilterOp,
    LineFilterStage,
    LineFormatStage,
    LogfmtStage,
    LogSelector,
    MetricExpr,
    NumberLiteral,
    PatternStage,
    RangeAggregation,
    RegexpStage,
    Stage,
    UnpackStage,
    Unwrap,
    ValueKind,
    VectorAggregation,
    VectorLiteral,
)
from clearsight.query.logql.ipmatch import compile_ip
from clearsight.query.logql.pattern import PatternError, compile_pattern
from clearsight.query.logql.template import TemplateError, compile_template
from clearsight.query.logql.units import parse_bytes, parse_go_duration
from clearsight.query.promql.ast import Cardinality, VectorMatching
from clearsight.store.logs_interface import LineFilter

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SPACE = re.compile(r"(?:\s|#[^\n]*)*")
_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
        "v": "\v"}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+(?![a-zA-Z0-9_])")
_BYTES = re.compile(r"\d+(?:\.\d+)?\s?(?:[kKmMgGtTpPeE][iI]?)?[bB](?![a-zA-Z0-9_])")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![a-zA-Z0-9_])")
_RANGE_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9, "y": 365 * 86400 * 10**9}
_RANGE_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_LINE_OPS: tuple[LineFilterOp, ...] = ("|=", "|~", "|>", "!=", "!~", "!>")
_BINOPS = (("or", 1), ("and", 2), ("unless", 2), ("==", 3), ("!=", 3), (">=", 3), ("<=", 3), (">", 3), ("<", 3),
           ("+", 4), ("-", 4), ("*", 5), ("/", 5), ("%", 5), ("^", 6))
_COMPARISONS = frozenset({"==", "!=", ">=", "<=", ">", "<"})
_KEYWORDS = frozenset({"or", "and", "unless", "by", "without", "offset", "bool", "on", "ignoring", "group_left",
                       "group_right"})


class LogQLParseError(ValueError):
    def __init__(self, text: str, pos: int, message: str) -> None:
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        super().__init__(f"parse error at line {line}, col {col}: {message}")
        self.pos = pos


@dataclass(frozen=True)
class LogQuery:
    """A log query's stream matchers and the line filters the store can apply (the leading ones)."""

    matchers: tuple[Matcher, ...]
    filters: tuple[LineFilter, ...]


def range_duration_ns(text: str) -> int | None:
    """``5m``, ``1h30m``, ``1.5s``, ``7d`` as nanoseconds (None when not a duration)."""
    if not text or _DURATION.fullmatch(text) is None:
        return None
    total = 0.0
    for num, unit in _RANGE_PART.findall(text):
        total += float(num) * _RANGE_UNITS_NS[unit]
    return round(total)


def _regex_union(patterns: tuple[str, ...], literal: bool) -> str:
    if len(patterns) == 1 and not literal:
        return patterns[0]
    parts = [re.escape(p) if literal else p for p in patterns]
    return "|".join(f"(?:{p})" for p in parts)


def pushdown_filters(stages: tuple[Stage, ...]) -> tuple[tuple[LineFilter, ...], tuple[Stage, ...]]:
    """Splits a pipeline into the leading line filters the store applies (``or`` chains become one
    RE2 alternation) and the stages left to run in Python (from the first other stage on;
    ``|>``/``!>`` pattern filters stay in Python)."""
    out: list[LineFilter] = []
    for k, st in enumerate(stages):
        if not isinstance(st, LineFilterStage) or st.op in ("|>", "!>") or st.ip:
            return tuple(out), stages[k:]
        if len(st.patterns) == 1:
            op = st.op
            assert op in ("|=", "!=", "|~", "!~")
            out.append(LineFilter(op, st.patterns[0]))
        else:
            literal = st.op in ("|=", "!=")
            positive = st.op in ("|=", "|~")
            out.append(LineFilter("|~" if positive else "!~", _regex_union(st.patterns, literal)))
    return tuple(out), ()


MAX_DEPTH = 100  # nesting of parentheses/operators; deeper is a parse error, not a RecursionError


class _P:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.err(f"syntax error: expression nested more than {MAX_DEPTH} levels deep")

    # --- scanning --------------------------------------------------------------------------------

    def ws(self) -> None:
        m = _SPACE.match(self.s, self.i)
        self.i = m.end() if m else self.i

    def at_end(self) -> bool:
        self.ws()
        return self.i >= len(self.s)

    def err(self, message: str, pos: int | None = None) -> LogQLParseError:
        return LogQLParseError(self.s, self.i if pos is None else pos, message)

    def unexpected(self, expecting: str) -> LogQLParseError:
        self.ws()
        rest = self.s[self.i:]
        tok = "end of input" if not rest.strip() else repr(rest.split()[0][:20])
        return self.err(f"syntax error: unexpected {tok}, expecting {expecting}")

    def peek(self, tok: str) -> bool:
        self.ws()
        return self.s.startswith(tok, self.i)

    def accept(self, tok: str) -> bool:
        if self.peek(tok):
            self.i += len(tok)
            return True
        return False

    def expect(self, tok: str) -> None:
        if not self.accept(tok):
            raise self.unexpected(tok)

    def peek_word(self, word: str) -> bool:
        self.ws()
        m = _NAME.match(self.s, self.i)
        return m is not None and m.group() == word

    def accept_word(self, word: str) -> bool:
        if self.peek_word(word):
            self.i += len(word)
            return True
        return False

    def name(self, what: str = "IDENTIFIER") -> str:
        self.ws()
        m = _NAME.match(self.s, self.i)
        if m is None:
            raise self.unexpected(what)
        self.i = m.end()
        return m.group()

    def string(self) -> str:
        self.ws()
        start = self.i
        if self.peek("`"):
            end = self.s.find("`", self.i + 1)
            if end < 0:
                raise self.err("syntax error: unterminated raw string", start)
            self.i = end + 1
            return self.s[start + 1:end]
        if not self.s.startswith('"', self.i):
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
                        try:
                            out.append(chr(int(digits, 16)))
                        except (ValueError, OverflowError):
                            raise self.err(f"syntax error: invalid escape sequence '\\{e}{digits}' in string",
                                           j) from None
                        j += 2 + width
                        continue
                raise self.err(f"syntax error: invalid escape sequence '\\{e}' in string", j)
            out.append(c)
            j += 1
        raise self.err("syntax error: unterminated string", start)

    def is_string(self) -> bool:
        self.ws()
        return self.s.startswith(('"', "`"), self.i)

    def number(self) -> float:
        self.ws()
        start = self.i
        sign = 1.0
        if self.s.startswith("-", self.i):
            sign = -1.0
            self.i += 1
        elif self.s.startswith("+", self.i):
            self.i += 1
        m = _NUMBER.match(self.s, self.i)
        if m is None:
            for word, val in (("Inf", math.inf), ("inf", math.inf), ("NaN", math.nan), ("nan", math.nan)):
                if self.s.startswith(word, self.i):
                    self.i += len(word)
                    return sign * val
            self.i = start
            raise self.unexpected("NUMBER")
        self.i = m.end()
        t = m.group()
        return sign * (float(int(t, 16)) if t[:2] in ("0x", "0X") else float(t))

    def range_duration(self) -> int:
        self.ws()
        pos = self.i
        m = _DURATION.match(self.s, self.i)
        if m is None:
            raise self.unexpected("DURATION")
        self.i = m.end()
        ns = range_duration_ns(m.group())
        if ns is None or ns <= 0:
            raise self.err(f"syntax error: invalid duration {m.group()!r}", pos)
        return ns

    # --- selectors and pipelines -----------------------------------------------------------------

    def matchers(self) -> tuple[Matcher, ...]:
        self.expect("{")
        out: list[Matcher] = []
        while not self.peek("}"):
            name = self.name()
            self.ws()
            for op in ("=~", "!~", "!=", "="):
                if self.s.startswith(op, self.i):
                    self.i += len(op)
                    break
            else:
                raise self.unexpected("=, !=, =~ or !~")
            self.ws()
            vpos = self.i
            value = self.string()
            out.append(self.matcher(op, name, value, vpos))
            if self.accept(","):
                continue
            if not self.peek("}"):
                raise self.unexpected(", or }")
        close = self.i
        self.i += 1
        if not out:
            raise self.err("syntax error: unexpected }, expecting IDENTIFIER", close)
        if all(m.matches("") for m in out):
            raise LogQLParseError(self.s, 0, "queries require at least one regexp or equality matcher that does not "
                                             "have an empty-compatible value. For instance, app=~\".*\" does not "
                                             "meet this requirement, but app=~\".+\" will")
        return tuple(out)

    def matcher(self, op: str, name: str, value: str, vpos: int) -> Matcher:
        if op in ("=~", "!~"):
            try:
                compile_anchored(value)
            except RegexError as e:
                raise self.err(f"error parsing regexp: {e.detail}", vpos) from None
        return Matcher.of(op, name, value)

    def line_filter(self) -> LineFilterStage | None:
        self.ws()
        op: LineFilterOp | None = None
        for cand in _LINE_OPS:
            if self.s.startswith(cand, self.i):
                op = cand
                break
        if op is None:
            return None
        self.i += 2
        if self.peek_word("ip"):
            if op not in ("|=", "!="):
                raise self.err(f"syntax error: ip() needs |= or !=, not {op}")
            return LineFilterStage(op, (self.ip_spec(),), ip=True)
        patterns = [self.filter_pattern(op)]
        while self.peek_word("or"):
            save = self.i
            self.accept_word("or")
            if not self.is_string():
                self.i = save
                break
            patterns.append(self.filter_pattern(op))
        return LineFilterStage(op, tuple(patterns))

    def filter_pattern(self, op: str) -> str:
        self.ws()
        pos = self.i
        pattern = self.string()
        if op in ("|~", "!~"):
            try:
                compile_regex(pattern)
            except RegexError as e:
                raise self.err(f"error parsing regexp: {e.detail}", pos) from None
        elif op in ("|>", "!>"):
            try:
                compile_pattern(pattern, for_filter=True)
            except PatternError as e:
                raise self.err(f"syntax error: {e}", pos) from None
        return pattern

    def ip_spec(self) -> str:
        """``ip("...")`` (the word ``ip`` next): the address, CIDR prefix or range, checked."""
        self.accept_word("ip")
        self.expect("(")
        self.ws()
        pos = self.i
        spec = self.string()
        try:
            compile_ip(spec)
        except ValueError as e:
            raise self.err(f"syntax error: invalid ip() argument {spec!r}: {e}", pos) from None
        self.expect(")")
        return spec

    def template(self) -> str:
        self.ws()
        pos = self.i
        text = self.string()
        try:
            compile_template(text)
        except TemplateError as e:
            raise self.err(f"invalid template: {e}", pos) from None
        return text

    def params(self) -> tuple[tuple[str, str], ...]:
        """``a="x.y", b`` after json/logfmt (a bare name extracts the field of that name)."""
        out: list[tuple[str, str]] = []
        self.ws()
        if _NAME.match(self.s, self.i) is None or self._next_is_keyword():
            return ()
        while True:
            name = self.name()
            if self.accept("="):
                out.append((name, self.string()))
            else:
                out.append((name, name))
            if not self.accept(","):
                return tuple(out)

    def _next_is_keyword(self) -> bool:
        self.ws()
        m = _NAME.match(self.s, self.i)
        return m is not None and m.group() in _KEYWORDS

    def stage(self, allow_unwrap: bool) -> Stage | Unwrap:
        """One ``| ...`` stage (the ``|`` already consumed)."""
        self.ws()
        pos = self.i
        m = _NAME.match(self.s, self.i)
        word = m.group() if m else ""
        after = self.s[m.end():].lstrip()[:1] if m else ""
        if m is None or after in ("=", "!", ">", "<") or self.s.startswith("(", self.i):
            return LabelFilterStage(self.label_or())
        self.i = m.end()
        if word == "json":
            return JsonStage(self.params())
        if word == "logfmt":
            strict = keep_empty = False
            while True:
                self.ws()
                if self.s.startswith("--strict", self.i):
                    strict, self.i = True, self.i + len("--strict")
                elif self.s.startswith("--keep-empty", self.i):
                    keep_empty, self.i = True, self.i + len("--keep-empty")
                else:
                    break
            return LogfmtStage(self.params(), strict, keep_empty)
        if word == "regexp":
            self.ws()
            rpos = self.i
            pattern = self.string()
            try:
                rx = compile_regex(pattern)
            except RegexError as e:
                raise self.err(f"error parsing regexp: {e.detail}", rpos) from None
            if not getattr(rx, "groupindex", {}):
                raise self.err("invalid regexp: at least one named capture must be supplied", rpos)
            return RegexpStage(pattern)
        if word == "pattern":
            self.ws()
            ppos = self.i
            pattern = self.string()
            try:
                compile_pattern(pattern)
            except PatternError as e:
                raise self.err(f"syntax error: {e}", ppos) from None
            return PatternStage(pattern)
        if word == "unpack":
            return UnpackStage()
        if word == "decolorize":
            return DecolorizeStage()
        if word == "line_format":
            return LineFormatStage(self.template())
        if word == "label_format":
            items: list[LabelFormatItem] = []
            while True:
                dst = self.name()
                self.expect("=")
                if self.is_string():
                    items.append(LabelFormatItem(dst, template=self.template()))
                else:
                    items.append(LabelFormatItem(dst, src=self.name("IDENTIFIER or STRING")))
                if not self.accept(","):
                    break
            return LabelFormatStage(tuple(items))
        if word in ("drop", "keep"):
            dk: list[DropKeepItem] = []
            while True:
                name = self.name()
                self.ws()
                matcher = None
                for op in ("=~", "!~", "!=", "="):
                    if self.s.startswith(op, self.i):
                        self.i += len(op)
                        self.ws()
                        vpos = self.i
                        matcher = self.matcher(op, name, self.string(), vpos)
                        break
                dk.append(DropKeepItem(name, matcher))
                if not self.accept(","):
                    break
            return DropStage(tuple(dk)) if word == "drop" else KeepStage(tuple(dk))
        if word == "unwrap":
            if not allow_unwrap:
                raise self.err("syntax error: unexpected unwrap: unwrap is only allowed in a range aggregation", pos)
            conv = ""
            for c in ("duration_seconds", "duration", "bytes"):
                save = self.i
                if self.accept_word(c) and self.accept("("):
                    conv = c
                    break
                self.i = save
            label = self.name()
            if conv:
                self.expect(")")
            post: list[LabelFilterStage] = []
            while self.peek("|") and not any(self.peek(op) for op in _LINE_OPS):
                self.i += 1
                post.append(LabelFilterStage(self.label_or()))
            return Unwrap(label, conv, tuple(post))  # type: ignore[arg-type]
        self.i = pos
        raise self.unexpected("a parser (json, logfmt, regexp, pattern, unpack), a label filter, line_format, "
                              "label_format, drop, keep, decolorize or unwrap")

    def label_or(self) -> LabelExpr:
        self.enter()
        try:
            return self._label_or()
        finally:
            self.depth -= 1

    def _label_or(self) -> LabelExpr:
        left = self.label_and()
        while self.accept_word("or"):
            left = LabelOr(left, self.label_and())
        return left

    def label_and(self) -> LabelExpr:
        left = self.label_atom()
        while True:
            if self.accept_word("and") or self.accept(","):
                left = LabelAnd(left, self.label_atom())
                continue
            # a space also means "and": `| a="b" c>1`
            self.ws()
            m = _NAME.match(self.s, self.i)
            if m and m.group() not in _KEYWORDS and self.s[m.end():].lstrip()[:1] in ("=", "!", ">", "<"):
                left = LabelAnd(left, self.label_atom())
                continue
            return left

    def label_atom(self) -> LabelExpr:
        if self.accept("("):
            e = self.label_or()
            self.expect(")")
            return e
        name = self.name()
        self.ws()
        for op in ("=~", "!~", "!=", "==", ">=", "<=", "=", ">", "<"):
            if self.s.startswith(op, self.i):
                self.i += len(op)
                break
        else:
            raise self.unexpected("a comparison operator (=, !=, =~, !~, ==, >, >=, <, <=)")
        self.ws()
        vpos = self.i
        if self.peek_word("ip"):
            if op not in ("=", "!=", "=="):
                raise self.err(f"syntax error: ip() needs = or !=, not {op}", vpos)
            return LabelCompare(name, "!=" if op == "!=" else "=", "ip", self.ip_spec())
        if self.is_string():
            value = self.string()
            if op not in ("=", "!=", "=~", "!~", "=="):
                raise self.err(f"syntax error: unexpected STRING, expecting a number, duration or bytes after {op}",
                               vpos)
            sop = "=" if op == "==" else op
            return LabelCompare(name, sop, "string", value, 0.0, self.matcher(sop, name, value, vpos))
        if op in ("=~", "!~"):
            raise self.unexpected("STRING")
        sign = ""
        if self.s.startswith("-", self.i):
            sign = "-"
            self.i += 1
        kind: ValueKind
        bm = _BYTES.match(self.s, self.i)
        dm = _DURATION.match(self.s, self.i)
        nm = _NUMBER.match(self.s, self.i)
        if bm is not None:
            text = sign + bm.group()
            b = parse_bytes(text)
            if b is None:
                raise self.err(f"syntax error: invalid bytes value {text!r}", vpos)
            kind, value_f = "bytes", b
            self.i = bm.end()
        elif dm is not None:
            text = sign + dm.group()
            d = parse_go_duration(text)
            if d is None:
                raise self.err(f"syntax error: invalid duration {text!r}", vpos)
            kind, value_f = "duration", d
            self.i = dm.end()
        elif nm is not None:
            text = sign + nm.group()
            self.i -= len(sign)
            value_f = self.number()
            kind = "number"
        else:
            raise self.unexpected("STRING, NUMBER, DURATION or BYTES")
        return LabelCompare(name, "==" if op == "=" else op, kind, text, value_f)

    def pipeline(self, allow_unwrap: bool) -> tuple[tuple[Stage, ...], Unwrap | None]:
        stages: list[Stage] = []
        unwrap: Unwrap | None = None
        while True:
            lf = self.line_filter()
            if lf is not None:
                stages.append(lf)
                continue
            self.ws()
            if self.s.startswith("|", self.i) and unwrap is None:
                self.i += 1
                st = self.stage(allow_unwrap)
                if isinstance(st, Unwrap):
                    unwrap = st
                    return tuple(stages), unwrap
                stages.append(st)
                continue
            return tuple(stages), unwrap

    def log_selector(self) -> LogSelector:
        matchers = self.matchers()
        stages, _ = self.pipeline(False)
        return LogSelector(matchers, stages)

    # --- metric expressions ----------------------------------------------------------------------

    def expr(self, min_prec: int = 1) -> Expr:
        self.enter()
        try:
            return self._expr(min_prec)
        finally:
            self.depth -= 1

    def _expr(self, min_prec: int) -> Expr:
        lhs = self.unary()
        while True:
            self.ws()
            found: tuple[str, int] | None = None
            for op, prec in _BINOPS:
                if op.isalpha():
                    if self.peek_word(op):
                        found = (op, prec)
                        break
                elif self.s.startswith(op, self.i):
                    found = (op, prec)
                    break
            if found is None or found[1] < min_prec:
                return lhs
            op, prec = found
            pos = self.i
            self.i += len(op)
            return_bool = False
            if op in _COMPARISONS and self.accept_word("bool"):
                return_bool = True
            matching = self.matching(op)
            rhs = self.expr(prec if op == "^" else prec + 1)
            for side in (lhs, rhs):
                if isinstance(side, LogSelector):
                    raise self.err(f"syntax error: unexpected {op}: binary operations need metric queries on both "
                                   "sides, not log queries", pos)
            assert isinstance(lhs, MetricExpr) and isinstance(rhs, MetricExpr)
            if return_bool is False and op in _COMPARISONS and isinstance(lhs, NumberLiteral) \
                    and isinstance(rhs, NumberLiteral):
                raise self.err("comparisons between scalars must use BOOL modifier", pos)
            lhs = BinaryOp(op, lhs, rhs, return_bool, matching)

    def matching(self, op: str) -> VectorMatching | None:
        card = Cardinality.MANY_TO_MANY if op in ("and", "or", "unless") else Cardinality.ONE_TO_ONE
        on = self.peek_word("on")
        if not (on or self.peek_word("ignoring")):
            return None
        self.accept_word("on" if on else "ignoring")
        labels = self.label_list()
        include: list[str] = []
        for word, c in (("group_left", Cardinality.MANY_TO_ONE), ("group_right", Cardinality.ONE_TO_MANY)):
            if self.accept_word(word):
                if card is Cardinality.MANY_TO_MANY:
                    raise self.err(f"syntax error: no grouping allowed for {op} operation")
                card = c
                if self.peek("("):
                    include = list(self.label_list())
                break
        return VectorMatching(card=card, on=on, labels=list(labels), include=include)

    def label_list(self) -> tuple[str, ...]:
        self.expect("(")
        out: list[str] = []
        while not self.peek(")"):
            out.append(self.name())
            if not self.accept(","):
                break
        self.expect(")")
        return tuple(out)

    def grouping(self) -> Grouping | None:
        for word in ("by", "without"):
            if self.accept_word(word):
                return Grouping(self.label_list(), word == "without")
        return None

    def unary(self) -> Expr:
        self.ws()
        if self.s.startswith("-", self.i) and not self.s.startswith("--", self.i):
            pos = self.i
            self.i += 1
            inner = self.expr(6)
            if isinstance(inner, NumberLiteral):
                return NumberLiteral(-inner.value)
            if not isinstance(inner, MetricExpr):
                raise self.err("syntax error: unexpected -: a log query cannot be negated", pos)
            return BinaryOp("*", inner, NumberLiteral(-1.0))
        if self.s.startswith("+", self.i):
            self.i += 1
            return self.expr(6)
        return self.primary()

    def primary(self) -> Expr:
        self.ws()
        if self.s.startswith("(", self.i):
            self.i += 1
            e = self.expr()
            self.expect(")")
            return e
        if self.s.startswith("{", self.i):
            return self.log_selector()
        if self.i < len(self.s) and (self.s[self.i].isdigit() or self.s[self.i] == "."):
            return NumberLiteral(self.number())
        pos = self.i
        m = _NAME.match(self.s, self.i)
        if m is None:
            raise self.unexpected("{, (, a number or a function/aggregation name")
        word = m.group()
        if word in ("Inf", "inf", "NaN", "nan"):
            return NumberLiteral(self.number())
        self.i = m.end()
        if word in RANGE_OPS:
            return self.range_aggregation(word, pos)
        if word in VECTOR_OPS:
            return self.vector_aggregation(word)
        if word == "vector":
            self.expect("(")
            v = self.number()
            self.expect(")")
            return VectorLiteral(v)
        if word == "label_replace":
            self.expect("(")
            inner = self.metric(self.expr())
            args: list[str] = []
            for _ in range(4):
                self.expect(",")
                self.ws()
                args.append(self.string())
            self.expect(")")
            try:
                compile_anchored(args[3])
            except RegexError as e:
                raise self.err(f"invalid regular expression in label_replace: {e.detail}", pos) from None
            if not _NAME.fullmatch(args[0]):
                raise self.err(f"invalid destination label name in label_replace: {args[0]!r}", pos)
            return LabelReplace(inner, args[0], args[1], args[2], args[3])
        self.i = pos
        raise self.unexpected("{, (, a number or a function/aggregation name")

    def metric(self, e: Expr) -> MetricExpr:
        if isinstance(e, LogSelector):
            raise self.err("syntax error: unexpected log query, expecting a metric query (e.g. rate({...}[1m]))")
        assert isinstance(e, MetricExpr)
        return e

    def vector_aggregation(self, op: str) -> VectorAggregation:
        grouping = self.grouping()
        self.expect("(")
        param: float | None = None
        if op in ("topk", "bottomk"):
            ppos = self.i
            param = self.number()
            if param != int(param) if math.isfinite(param) else True:
                raise self.err(f"syntax error: invalid parameter for {op}: {param:g} is not an integer", ppos)
            if param <= 0:
                raise self.err(f"syntax error: invalid parameter for {op}: k must be positive", ppos)
            self.expect(",")
        inner = self.metric(self.expr())
        self.expect(")")
        after = self.grouping()
        if after is not None:
            if grouping is not None:
                raise self.err("syntax error: grouping given twice")
            grouping = after
        if op in ("sort", "sort_desc") and grouping is not None:
            raise self.err(f"syntax error: {op} does not take by or without")
        return VectorAggregation(op, inner, param, grouping)

    def range_aggregation(self, op: str, pos: int) -> RangeAggregation:
        self.expect("(")
        param: float | None = None
        if op == "quantile_over_time":
            param = self.number()
            self.expect(",")
        paren = self.accept("(")
        matchers = self.matchers()
        range_ns: int | None = None
        if self.accept("["):
            range_ns = self.range_duration()
            self.expect("]")
        stages, unwrap = self.pipeline(True)
        if paren:
            self.expect(")")
        if range_ns is None:
            if not self.accept("["):
                raise self.unexpected("[ (a range such as [5m])")
            range_ns = self.range_duration()
            self.expect("]")
        offset = 0
        if self.accept_word("offset"):
            offset = self.range_duration()
        self.expect(")")
        grouping = self.grouping()
        if unwrap is None and op not in LINE_RANGE_OPS:
            raise self.err(f"invalid aggregation {op} without unwrap", pos)
        if unwrap is not None and op not in UNWRAP_RANGE_OPS:
            raise self.err(f"invalid aggregation {op} with unwrap", pos)
        return RangeAggregation(op, LogSelector(matchers, stages), range_ns, offset, unwrap, param, grouping)


def parse_expr(text: str) -> Expr:
    """Parses a LogQL log or metric query; raises ``LogQLParseError`` with the position."""
    p = _P(text)
    if p.at_end():
        raise p.unexpected("{")
    e = p.expr()
    if not p.at_end():
        raise p.unexpected("end of input, an operator or a pipeline stage")
    if _tree_depth(e) > 2 * MAX_DEPTH:  # long operator chains: evaluation recurses per level
        raise LogQLParseError(text, 0, f"syntax error: expression nested more than {2 * MAX_DEPTH} levels deep")
    return e


def _tree_depth(e: Expr) -> int:
    deepest = 0
    stack: list[tuple[Expr, int]] = [(e, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, BinaryOp):
            stack += [(node.lhs, d + 1), (node.rhs, d + 1)]
        elif isinstance(node, (VectorAggregation, LabelReplace)):
            stack.append((node.expr, d + 1))
    return deepest


def parse_log_query(text: str) -> LogQuery:
    """A log query's matchers and pushable line filters (series/labels ``match[]`` selectors too)."""
    p = _P(text)
    p.ws()
    if not p.peek("{"):
        raise p.unexpected("{ (a stream selector)")
    sel = p.log_selector()
    if not p.at_end():
        raise p.unexpected("end of input or a pipeline stage")
    filters, _rest = pushdown_filters(sel.stages)
    return LogQuery(sel.matchers, filters)
