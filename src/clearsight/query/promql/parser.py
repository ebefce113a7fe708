"""Hand-written PromQL parser (Prometheus 3.x grammar, including experimental syntax).

Public API:

* :func:`parse` -> :class:`~clearsight.query.promql.ast.Expr`, raising :class:`ParseError`;
* :func:`parse_duration` (Prometheus duration syntax -> ms), :func:`parse_duration_param` (HTTP
  API: a duration or float seconds -> ms);
* :func:`parse_series_selector` (``match[]`` parameters) and :func:`parse_metric` (series
  descriptions of the promqltest ``load`` command);
* :func:`parse_with_positions` also returns each node's start offset (annotation positions);
* :func:`resolve_duration` evaluates an :class:`~clearsight.query.promql.ast.DurationExpr`;
* :func:`recursion_headroom` raises the recursion limit while walking deep trees.

Limits: queries longer than ``max_length`` characters (128 KiB), nesting deeper than ``max_depth``
(200: parentheses, calls, aggregations, unary operators, right-assoc ``^``) and trees deeper than
500 nodes (long ``a + b + c ...`` chains) are rejected with a ParseError.

The parser is recursive descent with precedence climbing. Like Prometheus it first builds the tree
(reporting syntax errors and the semantic errors Prometheus' grammar actions report), then runs a
type-checking pass in the same order as Prometheus' ``checkAST``, so the first error reported is
the one Prometheus reports.

Duration expressions (``[5m*2]``, ``offset (1m+30s)``, ``[step()+1m]``) are built as scalar
expressions over seconds: ``NumberLiteral`` (seconds), ``BinaryExpr`` (``+ - * / % ^``),
``UnaryExpr``, ``ParenExpr`` and ``Call`` of ``step``/``range``/``min_of``/``max_of``. Constant
ones are folded into int milliseconds; the others are wrapped in ``DurationExpr``. As in
Prometheus only *literals* are checked while parsing (``[0s]`` and ``[5s/0]`` are parse errors);
computed values that are non-positive, NaN, infinite or divide by zero stay ``DurationExpr`` and
fail in :func:`resolve_duration` at evaluation time.

The AST is not modified after ``parse`` returns; the parser never produces ``StepInvariantExpr``.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import threading
from collections.abc import Iterator

from clearsight.model.labels import METRIC_NAME, Labels, make_labels
from clearsight.model.matchers import Matcher, MatchType, RegexError
from clearsight.query.promql import lexer as lx
from clearsight.query.promql.ast import (
    AGGREGATION_OPS,
    COMPARISON_OPS,
    SET_OPS,
    AggregateExpr,
    AtModifier,
    BinaryExpr,
    Call,
    Cardinality,
    Duration,
    DurationExpr,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorMatching,
    VectorSelector,
)
from clearsight.query.promql.signatures import (
    AGGREGATION_PARAM_TYPES,
    EXPERIMENTAL_AGGREGATIONS,
    FUNCTIONS,
    FunctionSignature,
    documented_type,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_QUERY_LENGTH",
    "ParseError",
    "parse",
    "parse_duration",
    "parse_duration_param",
    "parse_metric",
    "parse_series_selector",
    "parse_with_positions",
    "recursion_headroom",
    "resolve_duration",
    "unquote",
]

DEFAULT_MAX_QUERY_LENGTH = 128 * 1024  # characters
DEFAULT_MAX_DEPTH = 200  # nesting of parentheses, calls, aggregations, unary operators, ...
_MAX_TREE_DEPTH = 500  # binary chains (a + b + c ...) deepen the tree without nesting
_MAX_DURATION_SECONDS = (1 << 63) / 1e9


class ParseError(Exception):
    """A query that is not valid PromQL. ``position`` is a 0-based character offset."""

    def __init__(self, message: str, position: int, query: str = "") -> None:
        self.message = message
        self.position = position
        self.query = query
        self.generic = False  # an "unexpected <token>" error without context
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, int, str]]:
        return (ParseError, (self.message, self.position, self.query))

    @property
    def line_col(self) -> tuple[int, int]:
        q = self.query
        if not q:
            return 1, self.position + 1
        pos = max(0, min(self.position, len(q)))
        line = q.count("\n", 0, pos) + 1
        last = q.rfind("\n", 0, pos)
        return line, pos - last

    def __str__(self) -> str:
        if not self.query:
            return f"unknown position: parse error: {self.message}"
        line, col = self.line_col
        return f"{line}:{col}: parse error: {self.message}"


# Binary operators: token kind (or keyword) -> (precedence, right-associative)
_BINOP_PREC: dict[str, int] = {
    "or": 1,
    "and": 2, "unless": 2,
    "==": 3, "!=": 3, "<=": 3, "<": 3, ">=": 3, ">": 3, "</": 3, ">/": 3,
    "+": 4, "-": 4,
    "*": 5, "/": 5, "%": 5, "atan2": 5,
    "^": 6,
}
_POW_PREC = 6

# Keywords that may stand for a metric name (Prometheus' metric_identifier rule).
_METRIC_NAME_KEYWORDS = frozenset(lx.AGGREGATORS | {
    "by", "fill", "fill_left", "fill_right", "and", "or", "unless", "offset", "without", "start",
    "end", "step", "range", "anchored", "smoothed", "max_of", "min_of",
})
# Keywords that may stand for a label name in grouping lists (Prometheus' maybe_label rule).
_LABEL_KEYWORDS = frozenset(lx.KEYWORDS - {"without"})



# ------------------------------------------------------------------------------------------------
# Durations and numbers
# ------------------------------------------------------------------------------------------------

_UNIT_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000,
            "m": 60_000, "s": 1000, "ms": 1}
_UNIT_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_DUR_PART = re.compile(r"([0-9]+)([a-zA-Z]+)")


def _duration_ms(s: str) -> int:
    """Prometheus' model.ParseDuration, in ms. Raises ValueError with Prometheus' wording."""
    if s == "":
        raise ValueError("empty duration string")
    if s == "0":
        return 0
    pos = 0
    total = 0
    last = -1
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if m is None:
            raise ValueError(f"not a valid duration string: {lx.go_quote(s)}")
        unit = m.group(2)
        if unit not in _UNIT_MS:
            raise ValueError(f"unknown unit {lx.go_quote(unit)} in duration {lx.go_quote(s)}")
        idx = _UNIT_ORDER.index(unit)
        if idx <= last:
            raise ValueError(f"not a valid duration string: {lx.go_quote(s)}")
        last = idx
        total += int(m.group(1)) * _UNIT_MS[unit]
        if total > (1 << 63) // 1_000_000:
            raise ValueError(f"duration out of range: {lx.go_quote(s)}")
        pos = m.end()
    return total


def parse_duration(s: str) -> int:
    """Parses a Prometheus duration (``1h30m``, ``5m``, ``100ms``, ``1y``) into milliseconds.

    Raises ParseError (position 0) on bad input."""
    try:
        return _duration_ms(s)
    except ValueError as e:
        raise ParseError(str(e), 0, s or " ") from None


def parse_duration_param(s: str) -> int:
    """Parses an HTTP API duration parameter: float seconds (``"30"``, ``"1.5"``) or a Prometheus
    duration (``"5m"``). Returns milliseconds; raises ParseError when invalid or out of range."""
    text = s.strip()
    try:
        secs = float(text)
    except ValueError:
        secs = math.nan
        if text.lower() in ("nan", "+nan", "-nan"):
            raise ParseError(f"cannot parse {lx.go_quote(s)} to a valid duration", 0, s or " ") from None
    else:
        if "_" in text:
            raise ParseError(f"cannot parse {lx.go_quote(s)} to a valid duration", 0, s or " ")
        if math.isnan(secs) or math.isinf(secs):
            raise ParseError(f"cannot parse {lx.go_quote(s)} to a valid duration", 0, s or " ")
        ms = secs * 1000
        if abs(ms) >= 2**63 / 1e6:
            raise ParseError(f"cannot parse {lx.go_quote(s)} to a valid duration. It overflows int64",
                             0, s or " ")
        return round(ms)
    try:
        return _duration_ms(text)
    except ValueError:
        raise ParseError(f"cannot parse {lx.go_quote(s)} to a valid duration", 0, s or " ") from None


_INT_DEC = re.compile(r"^[0-9](?:_?[0-9])*$")
_INT_HEX = re.compile(r"^0[xX](?:_?[0-9a-fA-F])+$")
_INT_OCT = re.compile(r"^0(?:_?[0-7])+$")
_FLOAT_DEC = re.compile(r"^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def _number(text: str) -> float:
    """Go's ParseInt(s, 0, 64) then ParseFloat(s, 64). Raises ValueError with Go's wording."""
    low = text.lower()
    if low in ("inf", "+inf", "infinity"):
        return math.inf
    if low == "nan":
        return math.nan
    value: int | None = None
    if _INT_HEX.match(text):
        value = int(text[2:].replace("_", ""), 16)
    elif _INT_OCT.match(text):
        value = int(text[1:].replace("_", ""), 8)
    elif _INT_DEC.match(text):
        value = int(text.replace("_", ""), 10)
    if value is not None and value < 2**63:
        return float(value)
    if _FLOAT_DEC.match(text) or value is not None:
        try:
            f = float(text.replace("_", "")) if value is None else float(value)
        except OverflowError:
            f = math.inf
        if math.isinf(f):
            raise ValueError(f"strconv.ParseFloat: parsing {lx.go_quote(text)}: value out of range")
        return f
    if re.match(r"^0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?[pP][+-]?[0-9]+$", text):
        try:
            return float.fromhex(text.replace("_", ""))
        except (ValueError, OverflowError):
            pass
    raise ValueError(f"strconv.ParseFloat: parsing {lx.go_quote(text)}: invalid syntax")


def unquote(s: str) -> str:
    """Unquotes a PromQL string literal (Go escapes for "..." and '...', none for `...`).

    Bytes that do not form valid UTF-8 (``"\\xff"``) are kept as surrogate escapes."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "\"'`":
        raise ValueError("invalid syntax")
    q = s[0]
    body = s[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body
    if "\\" not in body:
        if q in body or "\n" in body:
            raise ValueError("invalid syntax")
        return body
    out = bytearray()
    i, n = 0, len(body)
    simple = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}
    while i < n:
        ch = body[i]
        if ch != "\\":
            if ch == q or ch == "\n":
                raise ValueError("invalid syntax")
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        i += 1
        if i >= n:
            raise ValueError("invalid syntax")
        c = body[i]
        i += 1
        if c in simple:
            if c in "'\"" and c != q:
                raise ValueError("invalid syntax")
            out.append(simple[c])
        elif c in "01234567":
            digits = body[i - 1:i + 2]
            if len(digits) < 3 or any(d not in "01234567" for d in digits):
                raise ValueError("invalid syntax")
            v = int(digits, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            out.append(v)
            i += 2
        elif c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = body[i:i + width]
            if len(digits) < width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("invalid syntax")
            v = int(digits, 16)
            i += width
            if c == "x":
                out.append(v)
            else:
                if v > 0x10FFFF or 0xD800 <= v < 0xE000:
                    raise ValueError("invalid syntax")
                out += chr(v).encode("utf-8")
        else:
            raise ValueError("invalid syntax")
    return out.decode("utf-8", "surrogateescape")


def _is_valid_label_name(name: str) -> bool:
    """UTF-8 label names: any non-empty valid UTF-8 string."""
    if name == "":
        return False
    return not any(0xD800 <= ord(c) < 0xE000 for c in name)


# ------------------------------------------------------------------------------------------------
# Parser
# ------------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str, max_depth: int, enable_experimental: bool) -> None:
        self.query = query
        self.toks = lx.tokenize(query)
        self.i = 0
        self.depth = 0
        self.max_depth = max_depth
        self.experimental = enable_experimental
        self.starts: dict[int, int] = {}  # id(node) -> start position
        self.op_pos: dict[int, int] = {}  # id(BinaryExpr) -> operator position
        self.bypass_empty_check: set[int] = set()
        self.dur_ctx = "subquery or range selector"  # error context inside duration expressions
        # keeps nodes referenced by id() alive for the parser's lifetime
        self._keep: list[object] = []

    # -- token helpers --------------------------------------------------------------------------
    def peek(self, off: int = 0) -> lx.Token:
        j = self.i + off
        if j >= len(self.toks):
            return self.toks[-1]
        return self.toks[j]

    def next(self) -> lx.Token:
        t = self.toks[self.i]
        if t.kind not in (lx.EOF, lx.ERROR):
            self.i += 1
        return t

    def err(self, msg: str, pos: int) -> ParseError:
        return ParseError(msg, pos, self.query)

    def unexpected(self, context: str = "", expected: str = "", tok: lx.Token | None = None) -> ParseError:
        t = tok if tok is not None else self.peek()
        if t.kind == lx.ERROR:
            return self.err(t.text, t.pos)
        msg = f"unexpected {t.desc()}"
        if context:
            msg += f" in {context}"
        if expected:
            msg += f", expected {expected}"
        e = self.err(msg, t.pos)
        # A context-free "unexpected" error inside an aggregation's arguments is reported "in
        # aggregation" by Prometheus (its grammar recovers there).
        e.generic = not context and not expected
        return e

    def is_kw(self, t: lx.Token, *words: str) -> bool:
        return t.kind == lx.KEYWORD and t.value in words

    def expect(self, kind: str, context: str = "", expected: str = "") -> lx.Token:
        t = self.peek()
        if t.kind != kind:
            raise self.unexpected(context, expected)
        return self.next()

    def mark(self, node: Expr, start: int) -> None:
        self.starts[id(node)] = start
        self._keep.append(node)

    def start_of(self, node: Expr) -> int:
        return self.starts.get(id(node), 0)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.err(f"query is nested too deeply (more than {self.max_depth} levels)",
                           self.peek().pos)

    # -- entry points ---------------------------------------------------------------------------
    def parse_query(self) -> Expr:
        t = self.peek()
        if t.kind == lx.EOF:
            raise self.err("no expression found in input", 0)
        expr = self.parse_expr(0)
        t = self.peek()
        if t.kind != lx.EOF:
            raise self.unexpected()
        _check_tree_depth(expr, self)
        self.check(expr)
        return expr

    # -- expressions ----------------------------------------------------------------------------
    def binop_of(self, t: lx.Token) -> str | None:
        if t.kind == lx.KEYWORD:
            return t.value if t.value in ("and", "or", "unless", "atan2") else None
        return t.kind if t.kind in _BINOP_PREC else None

    def parse_expr(self, min_prec: int) -> Expr:
        self.enter()
        lhs = self.parse_unary()
        while True:
            t = self.peek()
            op = self.binop_of(t)
            if op is None:
                break
            prec = _BINOP_PREC[op]
            if prec < min_prec:
                break
            self.next()
            node = BinaryExpr(op=op, lhs=lhs, rhs=lhs)  # rhs set below
            matching = self.parse_bin_modifiers(node)
            rhs = self.parse_expr(prec if op == "^" else prec + 1)
            node.rhs = rhs
            node.matching = matching
            self.mark(node, self.start_of(lhs))
            self.op_pos[id(node)] = t.pos
            lhs = node
        self.depth -= 1
        return lhs

    def parse_bin_modifiers(self, node: BinaryExpr) -> VectorMatching:
        vm = VectorMatching()
        if self.is_kw(self.peek(), "bool"):
            self.next()
            node.return_bool = True
        t = self.peek()
        if self.is_kw(t, "on", "ignoring"):
            self.next()
            vm.on = t.value == "on"
            vm.labels = self.parse_grouping_labels()
            t = self.peek()
            if self.is_kw(t, "group_left", "group_right"):
                self.next()
                vm.card = Cardinality.MANY_TO_ONE if t.value == "group_left" else Cardinality.ONE_TO_MANY
                if self.peek().kind == "(":
                    vm.include = self.parse_grouping_labels()
        t = self.peek()
        if self.is_kw(t, "fill", "fill_left", "fill_right"):
            self.next()
            v = self.parse_fill_value()
            if t.value == "fill":
                vm.fill_left = vm.fill_right = v
            elif t.value == "fill_left":
                vm.fill_left = v
                t2 = self.peek()
                if self.is_kw(t2, "fill_right"):
                    self.next()
                    vm.fill_right = self.parse_fill_value()
            else:
                vm.fill_right = v
                t2 = self.peek()
                if self.is_kw(t2, "fill_left"):
                    self.next()
                    vm.fill_left = self.parse_fill_value()
        return vm

    def parse_fill_value(self) -> float:
        self.expect("(", "fill modifier", '"("')
        sign = 1.0
        t = self.peek()
        if t.kind in ("+", "-"):
            self.next()
            sign = -1.0 if t.kind == "-" else 1.0
        t = self.peek()
        if t.kind not in (lx.NUMBER, lx.DURATION):
            raise self.unexpected("fill modifier", "number")
        v = sign * self.number_value(self.next())
        self.expect(")", "fill modifier", '")"')
        return v

    def parse_grouping_labels(self) -> list[str]:
        t = self.peek()
        if t.kind != "(":
            raise self.unexpected("grouping opts", '"("')
        self.next()
        labels: list[str] = []
        if self.peek().kind == ")":
            self.next()
            return labels
        while True:
            t = self.peek()
            if t.kind in (lx.IDENTIFIER, lx.METRIC_IDENTIFIER) or (
                    t.kind == lx.KEYWORD and t.value in _LABEL_KEYWORDS):
                self.next()
                name = t.text
                if ":" in name:
                    raise self.err(f"invalid label name for grouping: {lx.go_quote(name)}", t.pos)
            elif t.kind == lx.STRING:
                self.next()
                name = self.unquote_tok(t)
                if not _is_valid_label_name(name):
                    raise self.err(f"invalid label name for grouping: {lx.go_quote(name)}", t.pos + 1)
            else:
                raise self.unexpected("grouping opts", "label")
            labels.append(name)
            t = self.peek()
            if t.kind == ",":
                self.next()
                if self.peek().kind == ")":
                    self.next()
                    return labels
                continue
            if t.kind == ")":
                self.next()
                return labels
            raise self.unexpected("grouping opts", '"," or ")"')

    def parse_unary(self) -> Expr:
        t = self.peek()
        if t.kind in ("+", "-"):
            self.next()
            operand = self.parse_expr(_POW_PREC)
            if isinstance(operand, NumberLiteral):
                if t.kind == "-":
                    operand.value = -operand.value
                self.mark(operand, t.pos)
                return operand
            node = UnaryExpr(op=t.kind, expr=operand)
            self.mark(node, t.pos)
            return node
        expr = self.parse_primary()
        return self.parse_postfix(expr)

    def parse_postfix(self, expr: Expr) -> Expr:
        while True:
            t = self.peek()
            if t.kind == "[":
                expr = self.parse_range_or_subquery(expr)
            elif self.is_kw(t, "offset"):
                self.next()
                self.apply_offset(expr, self.parse_offset_value())
            elif t.kind == "@":
                self.next()
                self.apply_at(expr)
            elif self.is_kw(t, "anchored", "smoothed"):
                self.next()
                self.apply_extended(expr, t.value)
            else:
                return expr

    def parse_primary(self) -> Expr:
        t = self.peek()
        k = t.kind
        if k == lx.NUMBER or k == lx.DURATION:
            self.next()
            node: Expr = NumberLiteral(self.number_value(t), duration=k == lx.DURATION)
            self.mark(node, t.pos)
            return node
        if k == lx.STRING:
            self.next()
            node = StringLiteral(self.unquote_tok(t))
            self.mark(node, t.pos)
            return node
        if k == "(":
            self.next()
            inner = self.parse_expr(0)
            self.expect(")", "", "")
            node = ParenExpr(inner)
            self.mark(node, t.pos)
            return node
        if k == "{":
            return self.parse_vector_selector(None, t.pos)
        if k == lx.IDENTIFIER:
            self.next()
            if self.peek().kind == "(":
                return self.parse_call(t)
            return self.parse_vector_selector(t.text, t.pos)
        if k == lx.METRIC_IDENTIFIER:
            self.next()
            return self.parse_vector_selector(t.text, t.pos)
        if k == lx.KEYWORD:
            v = t.value
            nxt = self.peek(1)
            if v in AGGREGATION_OPS and (nxt.kind == "(" or self.is_kw(nxt, "by", "without")):
                return self.parse_aggregation()
            if v in ("start", "end", "step", "range", "min_of", "max_of") and nxt.kind == "(":
                self.next()
                return self.parse_call(t)
            if v in _METRIC_NAME_KEYWORDS:
                self.next()
                return self.parse_vector_selector(t.text, t.pos)
        raise self.unexpected()

    # -- literals -------------------------------------------------------------------------------
    def number_value(self, t: lx.Token) -> float:
        if t.kind == lx.DURATION:
            try:
                return _duration_ms(t.text) / 1000.0
            except ValueError as e:
                raise self.err(str(e), t.pos) from None
        try:
            return _number(t.text)
        except ValueError as e:
            raise self.err(f"error parsing number: {e}", t.pos) from None

    def unquote_tok(self, t: lx.Token) -> str:
        try:
            return unquote(t.text)
        except ValueError as e:
            raise self.err(f"error unquoting string {lx.go_quote(t.text)}: {e}", t.pos) from None

    # -- selectors ------------------------------------------------------------------------------
    def parse_vector_selector(self, name: str | None, start: int) -> VectorSelector:
        matchers: list[Matcher] = []
        if self.peek().kind == "{":
            matchers = self.parse_label_matchers()
        if name is not None:
            matchers.append(Matcher.of(MatchType.EQ, METRIC_NAME, name))
        vs = VectorSelector(name=name, matchers=matchers)
        self.mark(vs, start)
        return vs

    def parse_label_matchers(self) -> list[Matcher]:
        self.expect("{")
        out: list[Matcher] = []
        if self.peek().kind == "}":
            self.next()
            return out
        while True:
            out.append(self.parse_label_matcher())
            t = self.peek()
            if t.kind == ",":
                self.next()
                if self.peek().kind == "}":
                    self.next()
                    return out
                continue
            if t.kind == "}":
                self.next()
                return out
            raise self.unexpected("label matching", '"," or "}"')

    def parse_label_matcher(self) -> Matcher:
        t = self.peek()
        if t.kind == lx.IDENTIFIER:
            self.next()
            name = t.text
            name_tok = t
        elif t.kind == lx.STRING:
            self.next()
            name = self.unquote_tok(t)
            name_tok = t
            if self.peek().kind in (",", "}"):
                return self.new_matcher(MatchType.EQ, METRIC_NAME, name, t.pos)
        else:
            raise self.unexpected("label matching", 'identifier or "}"')
        op = self.peek()
        if op.kind not in ("=", "!=", "=~", "!~"):
            raise self.unexpected("label matching", "label matching operator")
        self.next()
        v = self.peek()
        if v.kind != lx.STRING:
            raise self.unexpected("label matching", "string")
        self.next()
        value = self.unquote_tok(v)
        return self.new_matcher(MatchType(op.kind), name, value, name_tok.pos)

    def new_matcher(self, mt: MatchType, name: str, value: str, pos: int) -> Matcher:
        try:
            return Matcher.of(mt, name, value)
        except ValueError as e:
            msg = str(e)
            if mt in (MatchType.RE, MatchType.NRE):
                detail = e.detail if isinstance(e, RegexError) else msg
                msg = f"error parsing regexp: {detail}"
            raise self.err(msg, pos) from None

    # -- calls and aggregations -----------------------------------------------------------------
    def parse_call(self, name_tok: lx.Token) -> Call:
        name = name_tok.text
        # Like Prometheus, the function is looked up once its argument list is complete, so
        # syntax errors inside the arguments are reported first.
        args = self.parse_call_args()
        sig = FUNCTIONS.get(name)
        if sig is None:
            raise self.err(f"unknown function with name {lx.go_quote(name)}", name_tok.pos)
        if sig.experimental and not self.experimental:
            raise self.err(f"function {lx.go_quote(name)} is not enabled", name_tok.pos)
        call = Call(func=name, args=args, return_type=sig.return_type)
        self.mark(call, name_tok.pos)
        return call

    def parse_call_args(self) -> list[Expr]:
        self.expect("(")
        args: list[Expr] = []
        if self.peek().kind == ")":
            self.next()
            return args
        while True:
            args.append(self.parse_expr(0))
            t = self.peek()
            if t.kind == ",":
                self.next()
                if self.peek().kind == ")":
                    raise self.err("trailing commas not allowed in function call args", t.pos)
                continue
            if t.kind == ")":
                self.next()
                return args
            raise self.unexpected()

    def parse_aggregation(self) -> AggregateExpr:
        op_tok = self.next()
        op = op_tok.value
        grouping: list[str] | None = None
        without = False
        t = self.peek()
        if self.is_kw(t, "by", "without"):
            self.next()
            without = t.value == "without"
            grouping = self.parse_grouping_labels()
        if self.peek().kind != "(":
            raise self.unexpected("aggregation")
        try:
            args = self.parse_call_args()
        except ParseError as e:
            if e.generic:
                e.message += " in aggregation"
                e.generic = False
            raise
        t = self.peek()
        if grouping is None and self.is_kw(t, "by", "without"):
            self.next()
            without = t.value == "without"
            grouping = self.parse_grouping_labels()
        if not args:
            raise self.err("no arguments for aggregate expression provided", op_tok.pos)
        param: Expr | None = None
        desired = 1
        if op in AGGREGATION_PARAM_TYPES:
            if op in EXPERIMENTAL_AGGREGATIONS and not self.experimental:
                raise self.err(f"{op}() is experimental and must be enabled with "
                               "--enable-feature=promql-experimental-functions", op_tok.pos)
            desired = 2
            param = args[0]
        if len(args) != desired:
            raise self.err("wrong number of arguments for aggregate expression provided, "
                           f"expected {desired}, got {len(args)}", op_tok.pos)
        node = AggregateExpr(op=op, expr=args[desired - 1], param=param, grouping=grouping or [],
                             without=without)
        self.mark(node, op_tok.pos)
        return node

    # -- ranges, subqueries and modifiers -------------------------------------------------------
    def parse_range_or_subquery(self, expr: Expr) -> Expr:
        lb = self.next()  # "["
        self.dur_ctx = "subquery or range selector"
        t = self.peek()
        if t.kind in ("]", ":", lx.EOF) or t.kind not in _DURATION_START:
            raise self.unexpected("subquery or range selector", "number, duration, step(), or range()")
        rng = self.parse_positive_duration()
        t = self.peek()
        if t.kind == "]":
            self.next()
            err = ""
            if not isinstance(expr, VectorSelector):
                err = "ranges only allowed for vector selectors"
            elif expr.offset != 0:
                err = "no offset modifiers allowed before range"
            elif expr.at is not None:
                err = "no @ modifiers allowed before range"
            if err:
                raise self.err(err, lb.pos)
            assert isinstance(expr, VectorSelector)
            ms = MatrixSelector(vector=expr, range=rng)
            self.mark(ms, self.start_of(expr))
            return ms
        if t.kind == ":":
            self.next()
            step: Duration = 0
            t = self.peek()
            if t.kind == "]":
                self.next()
            else:
                if t.kind not in _DURATION_START:
                    raise self.unexpected("subquery selector", 'number, duration, step(), range(), or "]"')
                step = self.parse_positive_duration()
                if self.peek().kind != "]":
                    raise self.unexpected("subquery selector", '"]"')
                self.next()
            sq = SubqueryExpr(expr=expr, range=rng, step=step)
            self.mark(sq, self.start_of(expr))
            return sq
        raise self.unexpected("subquery or range", '":" or "]"')

    def parse_positive_duration(self) -> Duration:
        start = self.peek().pos
        tree = self.parse_duration_expr(0)
        return self._finish_duration(tree, start, positive=True)

    def _finish_duration(self, tree: Expr, start: int, positive: bool) -> Duration:
        """Folds a constant duration expression to ms. Like Prometheus, only *literals* are
        checked while parsing; computed values that are NaN, infinite, out of range, non-positive
        (ranges and steps) or divide by zero are left as DurationExpr and fail at evaluation
        (:func:`resolve_duration`)."""
        folded = _fold(tree)
        if folded is None or isinstance(folded, str):
            return DurationExpr(tree)
        if isinstance(tree, NumberLiteral):
            if positive and folded <= 0:
                raise self.err("duration must be greater than 0", start)
            return _to_ms(folded, tree)
        if (math.isnan(folded) or math.isinf(folded) or abs(folded) > _MAX_DURATION_SECONDS
                or (positive and folded <= 0)):
            return DurationExpr(tree)
        return _to_ms(folded, tree)

    # Duration expressions (inside brackets, and after "offset (").
    def parse_duration_expr(self, min_prec: int) -> Expr:
        self.enter()
        lhs = self.parse_duration_unary()
        while True:
            t = self.peek()
            if t.kind not in ("+", "-", "*", "/", "%", "^"):
                break
            prec = _BINOP_PREC[t.kind]
            if prec < min_prec:
                break
            self.next()
            rhs = self.parse_duration_expr(prec if t.kind == "^" else prec + 1)
            if t.kind in ("/", "%") and isinstance(rhs, NumberLiteral) and rhs.value == 0:
                raise self.err("division by zero" if t.kind == "/" else "modulo by zero", t.pos)
            node = BinaryExpr(op=t.kind, lhs=lhs, rhs=rhs)
            self.mark(node, self.start_of(lhs))
            self.op_pos[id(node)] = t.pos
            lhs = node
        self.depth -= 1
        return lhs

    def parse_duration_unary(self) -> Expr:
        t = self.peek()
        if t.kind in ("+", "-"):
            self.next()
            operand = self.parse_duration_expr(_POW_PREC)
            return self._apply_duration_sign(t, operand)
        return self.parse_duration_atom()

    def _apply_duration_sign(self, t: lx.Token, operand: Expr) -> Expr:
        if isinstance(operand, NumberLiteral):
            if t.kind == "-":
                operand.value = -operand.value
            if abs(operand.value) > _MAX_DURATION_SECONDS:
                raise self.err("duration out of range", t.pos)
            self.mark(operand, t.pos)
            return operand
        if t.kind == "+":
            return operand
        node = UnaryExpr(op="-", expr=operand)
        self.mark(node, t.pos)
        return node

    def parse_duration_atom(self) -> Expr:
        t = self.peek()
        if t.kind in (lx.NUMBER, lx.DURATION):
            self.next()
            v = self.number_value(t)
            if abs(v) > _MAX_DURATION_SECONDS:
                raise self.err("duration out of range", t.pos)
            node: Expr = NumberLiteral(v, duration=t.kind == lx.DURATION)
            self.mark(node, t.pos)
            return node
        if t.kind == "(":
            self.next()
            inner = self.parse_duration_expr(0)
            self.expect(")", "duration expression", '")"')
            node = ParenExpr(inner)
            self.mark(node, t.pos)
            return node
        if self.is_kw(t, "step", "range") and self.peek(1).kind == "(":
            self.next()
            self.next()
            self.expect(")", "duration expression", '")"')
            node = Call(func=t.value, args=[], return_type=ValueType.SCALAR)
            self.mark(node, t.pos)
            return node
        if self.is_kw(t, "min_of", "max_of") and self.peek(1).kind == "(":
            self.next()
            self.next()
            a = self.parse_duration_expr(0)
            self.expect(",", "duration expression", '","')
            b = self.parse_duration_expr(0)
            self.expect(")", "duration expression", '")"')
            node = Call(func=t.value, args=[a, b], return_type=ValueType.SCALAR)
            self.mark(node, t.pos)
            return node
        if t.kind == lx.KEYWORD and t.value in ("step", "range", "min_of", "max_of"):
            raise self.unexpected(self.dur_ctx, "number, duration, step(), or range()", self.peek(1))
        raise self.unexpected(self.dur_ctx, "number, duration, step(), or range()")

    def parse_offset_value(self) -> Duration:
        """The operand of ``offset``: a signed literal, step(), range(), min_of/max_of(...) or a
        parenthesised duration expression (``foo offset 1m + 1`` adds 1 to ``foo offset 1m``)."""
        t = self.peek()
        self.dur_ctx = "offset"
        if t.kind in ("+", "-"):
            self.next()
            nxt = self.peek()
            if nxt.kind not in _DURATION_START:
                raise self.unexpected("offset", "number, duration, step(), or range()")
            tree = self._apply_duration_sign(t, self.parse_duration_atom())
        else:
            if t.kind not in _DURATION_START:
                raise self.unexpected("offset", "number, duration, step(), or range()")
            tree = self.parse_duration_atom()
        return self._finish_duration(tree, t.pos, positive=False)

    def apply_offset(self, expr: Expr, offset: Duration) -> None:
        target: VectorSelector | SubqueryExpr
        if isinstance(expr, VectorSelector | SubqueryExpr):
            target = expr
        elif isinstance(expr, MatrixSelector):
            target = expr.vector
        else:
            raise self.err("offset modifier must be preceded by an instant vector selector or range "
                           "vector selector or a subquery", self.start_of(expr))
        if target.offset != 0:
            raise self.err("offset may not be set multiple times", self.start_of(expr))
        target.offset = offset

    def apply_at(self, expr: Expr) -> None:
        t = self.peek()
        at: AtModifier
        if self.is_kw(t, "start", "end") and self.peek(1).kind == "(":
            self.next()
            self.next()
            self.expect(")", "@", '")"')
            at = AtModifier(start_or_end=t.value)
        else:
            sign = 1.0
            if t.kind in ("+", "-"):
                self.next()
                sign = -1.0 if t.kind == "-" else 1.0
                t = self.peek()
            if t.kind not in (lx.NUMBER, lx.DURATION):
                raise self.unexpected("@", "timestamp")
            self.next()
            ts = sign * self.number_value(t)
            if math.isnan(ts) or math.isinf(ts) or abs(ts * 1000.0) >= 2.0**63:  # ms must fit int64
                raise self.err(f"timestamp out of bounds for @ modifier: {_go_f(ts)}", self.start_of(expr))
            at = AtModifier(timestamp_ms=_round_half_away(ts * 1000.0))
        target: VectorSelector | SubqueryExpr
        if isinstance(expr, VectorSelector | SubqueryExpr):
            target = expr
        elif isinstance(expr, MatrixSelector):
            target = expr.vector
        else:
            raise self.err("@ modifier must be preceded by an instant vector selector or range vector "
                           "selector or a subquery", self.start_of(expr))
        if target.at is not None:
            raise self.err("@ <timestamp> may not be set multiple times", self.start_of(expr))
        target.at = at

    def apply_extended(self, expr: Expr, which: str) -> None:
        if isinstance(expr, MatrixSelector):
            other = expr.smoothed if which == "anchored" else expr.anchored
            if which == "anchored":
                expr.anchored = True
            else:
                expr.smoothed = True
            if other:
                raise self.err("anchored and smoothed modifiers cannot be used together", self.start_of(expr))
            return
        if isinstance(expr, VectorSelector):
            other = expr.smoothed if which == "anchored" else expr.anchored
            if which == "anchored":
                expr.anchored = True
            else:
                expr.smoothed = True
            if other:
                raise self.err("anchored and smoothed modifiers cannot be used together", self.start_of(expr))
            return
        if isinstance(expr, SubqueryExpr):
            raise self.err(f"{which} modifier is not supported for subqueries", self.start_of(expr))
        raise self.err(f"{which} modifier not implemented", self.start_of(expr))

    # -- type checking (Prometheus' checkAST) ---------------------------------------------------
    def expect_type(self, node: Expr, want: ValueType, context: str) -> None:
        t = self.check(node)
        if t is not want:
            raise self.err(f"expected type {documented_type(want)} in {context}, got {documented_type(t)}",
                           self.start_of(node))

    def check(self, node: Expr) -> ValueType:
        typ = node.type
        if isinstance(node, AggregateExpr):
            self.expect_type(node.expr, ValueType.VECTOR, "aggregation expression")
            want = AGGREGATION_PARAM_TYPES.get(node.op)
            if want is not None and node.param is not None:
                self.expect_type(node.param, want, "aggregation parameter")
        elif isinstance(node, BinaryExpr):
            self.check_binary(node)
        elif isinstance(node, Call):
            self.check_call(node)
        elif isinstance(node, ParenExpr):
            self.check(node.expr)
        elif isinstance(node, UnaryExpr):
            t = self.check(node.expr)
            if t not in (ValueType.SCALAR, ValueType.VECTOR):
                raise self.err("unary expression only allowed on expressions of type scalar or instant "
                               f"vector, got {lx.go_quote(documented_type(t))}", self.start_of(node))
        elif isinstance(node, SubqueryExpr):
            t = self.check(node.expr)
            if t is not ValueType.VECTOR:
                raise self.err(f"subquery is only allowed on instant vector, got {t.value} instead",
                               self.start_of(node))
        elif isinstance(node, MatrixSelector):
            self.check(node.vector)
        elif isinstance(node, VectorSelector):
            self.check_vector_selector(node)
        return typ

    def check_vector_selector(self, vs: VectorSelector) -> None:
        if vs.name is not None:
            for m in vs.matchers[:-1]:
                if m.name == METRIC_NAME:
                    raise self.err(f"metric name must not be set twice: {lx.go_quote(vs.name)} or "
                                   f"{lx.go_quote(m.value)}", self.start_of(vs))
            return
        if id(vs) in self.bypass_empty_check:
            return
        if not any(not m.matches_empty() for m in vs.matchers):
            raise self.err("vector selector must contain at least one non-empty matcher", self.start_of(vs))

    def check_binary(self, n: BinaryExpr) -> None:
        lt = self.check(n.lhs)
        rt = self.check(n.rhs)
        op_pos = self.op_pos.get(id(n), self.start_of(n))
        vm = n.matching if n.matching is not None else VectorMatching()
        if n.return_bool and n.op not in COMPARISON_OPS:
            raise self.err("bool modifier can only be used on comparison operators", op_pos)
        if n.op in COMPARISON_OPS and not n.return_bool and lt is ValueType.SCALAR and rt is ValueType.SCALAR:
            raise self.err("comparisons between scalars must use BOOL modifier", op_pos)
        if n.op in SET_OPS and vm.card is Cardinality.ONE_TO_ONE:
            vm.card = Cardinality.MANY_TO_MANY
        if vm.on:
            for label in vm.labels:
                if label in vm.include:
                    raise self.err(f"label {lx.go_quote(label)} must not occur in ON and GROUP clause at once",
                                   op_pos)
        if lt not in (ValueType.SCALAR, ValueType.VECTOR):
            raise self.err("binary expression must contain only scalar and instant vector types",
                           self.start_of(n.lhs))
        if rt not in (ValueType.SCALAR, ValueType.VECTOR):
            raise self.err("binary expression must contain only scalar and instant vector types",
                           self.start_of(n.rhs))
        has_fill = vm.fill_left is not None or vm.fill_right is not None
        if lt is not ValueType.VECTOR or rt is not ValueType.VECTOR:
            if vm.labels:
                raise self.err("vector matching only allowed between instant vectors", self.start_of(n))
            if has_fill:
                raise self.err("filling in missing series only allowed between instant vectors",
                               self.start_of(n))
            n.matching = None
        else:
            n.matching = vm
            if n.op in SET_OPS:
                if vm.card in (Cardinality.ONE_TO_MANY, Cardinality.MANY_TO_ONE):
                    raise self.err(f"no grouping allowed for {lx.go_quote(n.op)} operation", self.start_of(n))
                if has_fill:
                    raise self.err("filling in missing series not allowed for set operators", self.start_of(n))
        if (lt is ValueType.SCALAR or rt is ValueType.SCALAR) and n.op in SET_OPS:
            raise self.err(f"set operator {lx.go_quote(n.op)} not allowed in binary scalar expression",
                           self.start_of(n))

    def check_call(self, n: Call) -> None:
        sig: FunctionSignature = FUNCTIONS[n.func]
        nargs = len(sig.arg_types)
        start = self.start_of(n)
        if sig.variadic == 0:
            if nargs != len(n.args):
                raise self.err(f"expected {nargs} argument(s) in call to {lx.go_quote(n.func)}, "
                               f"got {len(n.args)}", start)
        else:
            na = nargs - 1
            if na > len(n.args):
                raise self.err(f"expected at least {na} argument(s) in call to {lx.go_quote(n.func)}, "
                               f"got {len(n.args)}", start)
            if sig.variadic > 0 and na + sig.variadic < len(n.args):
                raise self.err(f"expected at most {na + sig.variadic} argument(s) in call to "
                               f"{lx.go_quote(n.func)}, got {len(n.args)}", start)
        if n.func == "info" and len(n.args) > 1:
            arg = n.args[1]
            if arg.type is not ValueType.VECTOR:
                raise self.err(f"expected type instant vector in call to function \"info\", got "
                               f"{documented_type(arg.type)}", start)
            if isinstance(arg, VectorSelector):
                if arg.name is not None:
                    raise self.err("expected label selectors only, got vector selector instead",
                                   self.start_of(arg))
                self.bypass_empty_check.add(id(arg))
            else:
                raise self.err("expected label selectors only", self.start_of(arg))
        for i, arg in enumerate(n.args):
            if i >= nargs and sig.variadic == 0:
                break
            want = sig.arg_type(i)
            t = self.check(arg)
            if t is not want:
                raise self.err(f"expected type {documented_type(want)} in call to function "
                               f"{lx.go_quote(n.func)}, got {documented_type(t)}", self.start_of(arg))


_DURATION_START = frozenset({lx.NUMBER, lx.DURATION, "(", "+", "-", lx.KEYWORD})


def _go_f(v: float) -> str:
    """Go's %f."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:f}"


def _round_half_away(v: float) -> int:
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def _fold(tree: Expr) -> float | str | None:
    """Evaluates a constant duration expression to seconds. ``None`` when it depends on step() /
    range(); an error message string for division/modulo by zero."""
    if isinstance(tree, NumberLiteral):
        return tree.value
    if isinstance(tree, ParenExpr):
        return _fold(tree.expr)
    if isinstance(tree, UnaryExpr):
        v = _fold(tree.expr)
        if isinstance(v, float):
            return -v if tree.op == "-" else v
        return v
    if isinstance(tree, Call):
        if tree.func in ("step", "range"):
            return None
        vals = [_fold(a) for a in tree.args]
        for v in vals:
            if isinstance(v, str):
                return v
        if any(v is None for v in vals):
            return None
        fa = float(vals[0])  # type: ignore[arg-type]
        fb = float(vals[1])  # type: ignore[arg-type]
        if tree.func == "min_of":
            return fa if math.isnan(fa) else (fb if math.isnan(fb) else min(fa, fb))
        return fa if math.isnan(fa) else (fb if math.isnan(fb) else max(fa, fb))
    if isinstance(tree, BinaryExpr):
        a = _fold(tree.lhs)
        if isinstance(a, str):
            return a
        b = _fold(tree.rhs)
        if isinstance(b, str):
            return b
        if a is None or b is None:
            return None
        return _duration_binop(tree.op, a, b)
    raise TypeError(f"unexpected duration expression node {type(tree).__name__}")


def _duration_binop(op: str, a: float, b: float) -> float | str:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return "division by zero"
        return a / b
    if op == "%":
        if b == 0:
            return "modulo by zero"
        return math.fmod(a, b)
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf if a > 0 or (float(b).is_integer() and b % 2 == 0) else -math.inf
    except ValueError:  # Go's math.Pow: 0 ** negative is +Inf, negative ** fraction is NaN
        return math.inf if a == 0 else math.nan


def _to_ms(seconds: float, tree: Expr) -> int:
    if math.isnan(seconds) or math.isinf(seconds):
        return 0
    if isinstance(tree, NumberLiteral):
        # Prometheus rounds literals to the nanosecond; the engine works in ms.
        return int(round(seconds * 1e9) // 1_000_000) if seconds >= 0 else -int(round(-seconds * 1e9) // 1_000_000)
    return int(seconds * 1000)


def resolve_duration(d: Duration, step_ms: int, range_ms: int, allow_negative: bool = False) -> int:
    """Evaluates a duration (int ms, or a DurationExpr using ``step()``/``range()``) to ms.

    Raises ValueError with Prometheus' messages for NaN/infinite, non-positive (unless
    ``allow_negative``, used for offsets), out-of-range results and division by zero."""
    if isinstance(d, int):
        return d
    secs = _eval_duration(d.expr, step_ms / 1000.0, range_ms / 1000.0)
    if math.isnan(secs) or math.isinf(secs):
        raise ValueError("duration is NaN or infinite")
    if secs <= 0 and not allow_negative:
        raise ValueError("duration must be greater than 0")
    if abs(secs) > _MAX_DURATION_SECONDS:
        raise ValueError("duration is out of range")
    return int(secs * 1000)


def _eval_duration(tree: Expr, step_s: float, range_s: float) -> float:
    if isinstance(tree, NumberLiteral):
        return tree.value
    if isinstance(tree, ParenExpr):
        return _eval_duration(tree.expr, step_s, range_s)
    if isinstance(tree, UnaryExpr):
        v = _eval_duration(tree.expr, step_s, range_s)
        return -v if tree.op == "-" else v
    if isinstance(tree, Call):
        if tree.func == "step":
            return step_s
        if tree.func == "range":
            return range_s
        a = _eval_duration(tree.args[0], step_s, range_s)
        b = _eval_duration(tree.args[1], step_s, range_s)
        if math.isnan(a) or math.isnan(b):
            return math.nan
        return min(a, b) if tree.func == "min_of" else max(a, b)
    if isinstance(tree, BinaryExpr):
        r = _duration_binop(tree.op, _eval_duration(tree.lhs, step_s, range_s),
                            _eval_duration(tree.rhs, step_s, range_s))
        if isinstance(r, str):
            raise ValueError(r)
        return r
    raise TypeError(f"unexpected duration expression node {type(tree).__name__}")


def _children(node: Expr) -> list[Expr]:
    if isinstance(node, BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, AggregateExpr):
        return [node.expr] if node.param is None else [node.param, node.expr]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, ParenExpr | UnaryExpr | SubqueryExpr):
        return [node.expr]
    if isinstance(node, MatrixSelector):
        return [node.vector]
    return []


def _check_tree_depth(root: Expr, p: _Parser) -> None:
    stack: list[tuple[Expr, int]] = [(root, 1)]
    while stack:
        node, d = stack.pop()
        if d > _MAX_TREE_DEPTH:
            raise p.err(f"query is nested too deeply (more than {_MAX_TREE_DEPTH} levels)", p.start_of(node))
        for c in _children(node):
            stack.append((c, d + 1))


_headroom_lock = threading.Lock()
_headroom_users = 0
_headroom_saved = 0
_HEADROOM_LIMIT = 20_000


@contextlib.contextmanager
def recursion_headroom() -> Iterator[None]:
    """Raises the interpreter's recursion limit while walking deep query trees.

    The parser bounds tree depth (``max_depth`` nesting, 500 levels overall), but a deep tree needs
    several Python frames per level. Python 3.11+ does not use the C stack for Python-to-Python
    calls, so a higher limit is safe. Reference-counted so concurrent users never lower the limit
    under each other; the previous limit is restored when the last user leaves. The engine may use
    it around evaluation of deep trees."""
    global _headroom_users, _headroom_saved
    with _headroom_lock:
        if _headroom_users == 0:
            _headroom_saved = sys.getrecursionlimit()
            if _headroom_saved < _HEADROOM_LIMIT:
                sys.setrecursionlimit(_HEADROOM_LIMIT)
        _headroom_users += 1
    try:
        yield
    finally:
        with _headroom_lock:
            _headroom_users -= 1
            if _headroom_users == 0:
                sys.setrecursionlimit(_headroom_saved)


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------


def parse(query: str, *, max_length: int = DEFAULT_MAX_QUERY_LENGTH, max_depth: int = DEFAULT_MAX_DEPTH,
          enable_experimental: bool = True) -> Expr:
    """Parses a PromQL expression. Raises ParseError."""
    if len(query) > max_length:
        raise ParseError(f"query too long: {len(query)} characters (the limit is {max_length})", 0,
                         query[:1] or " ")
    with recursion_headroom():
        return _Parser(query, max_depth, enable_experimental).parse_query()


def parse_with_positions(query: str, *, max_length: int = DEFAULT_MAX_QUERY_LENGTH,
                         max_depth: int = DEFAULT_MAX_DEPTH,
                         enable_experimental: bool = True) -> tuple[Expr, dict[int, int]]:
    """Like :func:`parse`, also returning ``{id(node): start offset}`` for every node of the tree
    (0-based character offsets, as Prometheus' ``PositionRange.Start``; used for annotation
    positions). The ids are valid while the returned tree is alive."""
    if len(query) > max_length:
        raise ParseError(f"query too long: {len(query)} characters (the limit is {max_length})", 0,
                         query[:1] or " ")
    with recursion_headroom():
        p = _Parser(query, max_depth, enable_experimental)
        expr = p.parse_query()
        positions: dict[int, int] = {}
        stack: list[Expr] = [expr]
        while stack:
            node = stack.pop()
            positions[id(node)] = p.start_of(node)
            stack.extend(_children(node))
            if isinstance(node, VectorSelector | SubqueryExpr):
                for d in (node.offset, getattr(node, "range", 0), getattr(node, "step", 0)):
                    if isinstance(d, DurationExpr):
                        stack.append(d.expr)
            elif isinstance(node, MatrixSelector) and isinstance(node.range, DurationExpr):
                stack.append(node.range.expr)
    return expr, positions


def parse_series_selector(s: str) -> list[Matcher]:
    """Parses a ``match[]`` series selector (``up``, ``{job="x"}``, ``up{a=~"b"}``)."""
    if len(s) > DEFAULT_MAX_QUERY_LENGTH:
        raise ParseError(f"query too long: {len(s)} characters", 0, s[:1])
    p = _Parser(s, DEFAULT_MAX_DEPTH, True)
    t = p.peek()
    if t.kind == lx.EOF:
        raise p.unexpected("", "")
    if t.kind == "{":
        vs = p.parse_vector_selector(None, t.pos)
    elif t.kind in (lx.IDENTIFIER, lx.METRIC_IDENTIFIER) or (
            t.kind == lx.KEYWORD and t.value in _METRIC_NAME_KEYWORDS):
        p.next()
        vs = p.parse_vector_selector(t.text, t.pos)
    else:
        raise p.unexpected()
    if p.peek().kind != lx.EOF:
        raise p.unexpected()
    p.check_vector_selector(vs)
    return vs.matchers


def parse_metric(s: str) -> Labels:
    """Parses a series description like ``http_requests{job="api", instance="0"}`` or
    ``{__name__="a"}`` into a label set."""
    p = _Parser(s, DEFAULT_MAX_DEPTH, True)
    t = p.peek()
    name: str | None = None
    pairs: list[tuple[str, str]] = []
    if t.kind in (lx.IDENTIFIER, lx.METRIC_IDENTIFIER) or (
            t.kind == lx.KEYWORD and t.value in _METRIC_NAME_KEYWORDS):
        p.next()
        name = t.text
    elif t.kind != "{":
        raise p.unexpected()
    if p.peek().kind == "{":
        p.next()
        while p.peek().kind != "}":
            lt = p.peek()
            if lt.kind == lx.IDENTIFIER:
                p.next()
                lname = lt.text
            elif lt.kind == lx.STRING:
                p.next()
                lname = p.unquote_tok(lt)
                if p.peek().kind in (",", "}"):
                    pairs.append((METRIC_NAME, lname))
                    if p.peek().kind == ",":
                        p.next()
                    continue
            else:
                raise p.unexpected("label set", 'identifier or "}"')
            if p.peek().kind != "=":
                raise p.unexpected("label set", '"="')
            p.next()
            vt = p.peek()
            if vt.kind != lx.STRING:
                raise p.unexpected("label set", "string")
            p.next()
            pairs.append((lname, p.unquote_tok(vt)))
            nt = p.peek()
            if nt.kind == ",":
                p.next()
            elif nt.kind != "}":
                raise p.unexpected("label set", '"," or "}"')
        p.next()
    if p.peek().kind != lx.EOF:
        raise p.unexpected()
    if name is not None:
        pairs = [(n, v) for n, v in pairs if n != METRIC_NAME]
        pairs.append((METRIC_NAME, name))
    try:
        return make_labels(pairs)
    except ValueError as e:
        raise ParseError(str(e), 0, s) from None

