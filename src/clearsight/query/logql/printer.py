"""LogQL syntax trees back to query text (``parse_expr(format_expr(e)) == e``): for error
messages, logs and the parser's round-trip tests."""

from __future__ import annotations

from clearsight.model.matchers import Matcher
from clearsight.query.logql.ast import (
    BinaryOp,
    DecolorizeStage,
    DropKeepItem,
    DropStage,
    Expr,
    Grouping,
    JsonStage,
    KeepStage,
    LabelAnd,
    LabelExpr,
    LabelFilterStage,
    LabelFormatStage,
    LabelOr,
    LabelReplace,
    LineFilterStage,
    LineFormatStage,
    LogfmtStage,
    LogSelector,
    NumberLiteral,
    PatternStage,
    RangeAggregation,
    RegexpStage,
    Stage,
    UnpackStage,
    Unwrap,
    VectorAggregation,
    VectorLiteral,
)
from clearsight.query.promql.ast import Cardinality
from clearsight.query.promql.vecutil import go_quote

_UNITS = ((7 * 86400 * 10**9, "w"), (86400 * 10**9, "d"), (3600 * 10**9, "h"), (60 * 10**9, "m"), (10**9, "s"),
          (10**6, "ms"), (10**3, "us"), (1, "ns"))


def format_duration(ns: int) -> str:
    out: list[str] = []
    for unit, name in _UNITS:
        if ns >= unit:
            out.append(f"{ns // unit}{name}")
            ns %= unit
    return "".join(out) or "0s"


def _q(s: str) -> str:
    return go_quote(s)


def _matcher(m: Matcher) -> str:
    return f"{m.name}{m.type.value}{_q(m.value)}"


def _label_expr(e: LabelExpr) -> str:
    if isinstance(e, LabelAnd):
        return f"({_label_expr(e.left)} and {_label_expr(e.right)})"
    if isinstance(e, LabelOr):
        return f"({_label_expr(e.left)} or {_label_expr(e.right)})"
    value = _q(e.text) if e.kind == "string" else f"ip({_q(e.text)})" if e.kind == "ip" else e.text
    return f"{e.name}{e.op}{value}"


def _params(params: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{n}={_q(x)}" for n, x in params)


def _items(items: tuple[DropKeepItem, ...]) -> str:
    return ", ".join(_matcher(it.matcher) if it.matcher is not None else it.name for it in items)


def format_stage(st: Stage) -> str:
    if isinstance(st, LineFilterStage):
        if st.ip:
            return f"{st.op} ip({_q(st.patterns[0])})"
        return f"{st.op} " + " or ".join(_q(p) for p in st.patterns)
    if isinstance(st, JsonStage):
        return ("| json " + _params(st.params)).rstrip()
    if isinstance(st, LogfmtStage):
        flags = (" --strict" if st.strict else "") + (" --keep-empty" if st.keep_empty else "")
        return (f"| logfmt{flags} " + _params(st.params)).rstrip()
    if isinstance(st, RegexpStage):
        return f"| regexp {_q(st.pattern)}"
    if isinstance(st, PatternStage):
        return f"| pattern {_q(st.pattern)}"
    if isinstance(st, UnpackStage):
        return "| unpack"
    if isinstance(st, DecolorizeStage):
        return "| decolorize"
    if isinstance(st, LabelFilterStage):
        return f"| {_label_expr(st.expr)}"
    if isinstance(st, LineFormatStage):
        return f"| line_format {_q(st.template)}"
    if isinstance(st, LabelFormatStage):
        return "| label_format " + ", ".join(
            f"{it.dst}={_q(it.template)}" if it.template is not None else f"{it.dst}={it.src}" for it in st.items)
    if isinstance(st, DropStage):
        return f"| drop {_items(st.items)}"
    if isinstance(st, KeepStage):
        return f"| keep {_items(st.items)}"
    raise TypeError(f"unknown stage {st!r}")


def format_selector(sel: LogSelector) -> str:
    text = "{" + ", ".join(_matcher(m) for m in sel.matchers) + "}"
    return " ".join([text, *(format_stage(s) for s in sel.stages)])


def _unwrap(u: Unwrap) -> str:
    label = f"{u.conversion}({u.label})" if u.conversion else u.label
    return " ".join([f"| unwrap {label}", *(format_stage(s) for s in u.post_filters)])


def _grouping(g: Grouping | None) -> str:
    if g is None:
        return ""
    return f" {'without' if g.without else 'by'} ({', '.join(g.labels)})"


def _num(v: float) -> str:
    return repr(v) if v != int(v) else str(int(v)) if abs(v) < 1e18 else repr(v)


def format_expr(e: Expr) -> str:
    if isinstance(e, LogSelector):
        return format_selector(e)
    if isinstance(e, NumberLiteral):
        return _num(e.value) if e.value == e.value and abs(e.value) != float("inf") else \
            ("NaN" if e.value != e.value else ("Inf" if e.value > 0 else "-Inf"))
    if isinstance(e, VectorLiteral):
        return f"vector({_num(e.value)})"
    if isinstance(e, RangeAggregation):
        inner = format_selector(e.selector)
        if e.unwrap is not None:
            inner += " " + _unwrap(e.unwrap)
        inner += f" [{format_duration(e.range_ns)}]"
        if e.offset_ns:
            inner += f" offset {format_duration(e.offset_ns)}"
        param = f"{_num(e.param)}, " if e.param is not None else ""
        return f"{e.op}({param}{inner}){_grouping(e.grouping)}"
    if isinstance(e, VectorAggregation):
        param = f"{_num(e.param)}, " if e.param is not None else ""
        return f"{e.op}{_grouping(e.grouping)} ({param}{format_expr(e.expr)})"
    if isinstance(e, BinaryOp):
        mod = " bool" if e.return_bool else ""
        m = e.matching
        if m is not None and (m.on or m.labels or m.card in (Cardinality.MANY_TO_ONE, Cardinality.ONE_TO_MANY)):
            mod += f" {'on' if m.on else 'ignoring'}({', '.join(m.labels)})"
            if m.card is Cardinality.MANY_TO_ONE:
                mod += f" group_left({', '.join(m.include)})"
            elif m.card is Cardinality.ONE_TO_MANY:
                mod += f" group_right({', '.join(m.include)})"
        return f"({format_expr(e.lhs)} {e.op}{mod} {format_expr(e.rhs)})"
    if isinstance(e, LabelReplace):
        return (f"label_replace({format_expr(e.expr)}, {_q(e.dst)}, {_q(e.replacement)}, {_q(e.src)}, "
                f"{_q(e.regex)})")
    raise TypeError(f"unknown expression {e!r}")
