"""Canonical PromQL formatting (what Prometheus' ``/api/v1/format_query`` returns).

``format_expr(parse(q))`` re-parses to the same tree. Durations print in Prometheus' duration
syntax (``1h30m``), numbers like Go's ``strconv.FormatFloat(v, 'f', -1, 64)``, strings and label
values with Go's ``strconv.Quote``, matchers sorted, grouping labels in their given order.
"""

from __future__ import annotations

import math
from typing import Any

from clearsight.model.labels import METRIC_NAME
from clearsight.model.matchers import Matcher, MatchType
from clearsight.query.promql.ast import (
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
    StepInvariantExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)
from clearsight.query.promql.lexer import go_quote
from clearsight.query.promql.parser import recursion_headroom
from clearsight.query.promql.signatures import FUNCTIONS

__all__ = ["MAX_CHARACTERS_PER_LINE", "ast_to_json", "format_duration", "format_expr", "format_float", "format_matcher",
           "prettify_expr"]

_UNITS = [("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000),
          ("m", 60_000), ("s", 1000), ("ms", 1)]


def format_duration(ms: int) -> str:
    """Prometheus' model.Duration.String(): ``0s``, ``1h30m``, ``1y``, ``100ms``; negative values
    get a leading ``-``."""
    if ms == 0:
        return "0s"
    if ms < 0:
        return "-" + format_duration(-ms)
    out = []
    rest = ms
    for unit, size in _UNITS:
        q, rest = divmod(rest, size)
        if q:
            out.append(f"{q}{unit}")
    return "".join(out)


def format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` (shortest digits, never an exponent)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    r = repr(v)
    if "e" not in r and "E" not in r:
        return r[:-2] if r.endswith(".0") else r
    sign = ""
    if r.startswith("-"):
        sign, r = "-", r[1:]
    mant, exp_s = r.split("e")
    exp = int(exp_s)
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    digits = (ip + fp).lstrip("0") or "0"
    # position of the decimal point relative to the start of `digits`
    point = len(ip) + exp
    if point <= 0:
        s = "0." + "0" * (-point) + digits
    elif point >= len(digits):
        s = digits + "0" * (point - len(digits))
    else:
        s = digits[:point] + "." + digits[point:]
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return sign + s


def _format_g(v: float) -> str:
    """Go's ``%v`` for a float64 (``strconv.FormatFloat(v, 'g', -1, 64)`` with ``+Inf``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    r = repr(v)
    sign = ""
    if r.startswith("-"):
        sign, r = "-", r[1:]
    if "e" in r:
        mant, exp_s = r.split("e")
        exp = int(exp_s)
        digits = mant.replace(".", "")
        exp10 = exp + (len(mant.split(".")[0]) - 1)
    else:
        ip, _, fp = r.partition(".")
        fp = fp.rstrip("0")
        if ip != "0":
            digits = (ip + fp).rstrip("0") or "0"
            exp10 = len(ip) - 1
        else:
            stripped = fp.lstrip("0")
            exp10 = -(len(fp) - len(stripped)) - 1
            digits = stripped
    digits = digits.lstrip("0").rstrip("0") or "0"
    if exp10 < -4 or exp10 >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        es = f"{abs(exp10):02d}"
        return f"{sign}{m}e{'-' if exp10 < 0 else '+'}{es}"
    return sign + format_float(float(r))


def _label_name(name: str) -> str:
    ok = name != "" and all(
        c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z") or (i > 0 and "0" <= c <= "9")
        for i, c in enumerate(name))
    return name if ok else go_quote(name)


def format_matcher(m: Matcher) -> str:
    return f"{_label_name(m.name)}{m.type.value}{go_quote(m.value)}"


def _fmt_duration(d: Duration) -> str:
    if isinstance(d, DurationExpr):
        return _fmt_duration_expr(d.expr)
    return format_duration(d)


def _number(e: NumberLiteral) -> str:
    if e.duration and math.isfinite(e.value):
        return format_duration(round(e.value * 1000))
    return format_float(e.value)


def _fmt_duration_expr(e: Expr) -> str:
    if isinstance(e, NumberLiteral):
        return _number(e)
    if isinstance(e, ParenExpr):
        return "(" + _fmt_duration_expr(e.expr) + ")"
    if isinstance(e, UnaryExpr):
        return e.op + _fmt_duration_expr(e.expr)
    if isinstance(e, Call):
        return e.func + "(" + ", ".join(_fmt_duration_expr(a) for a in e.args) + ")"
    if isinstance(e, BinaryExpr):
        return f"{_fmt_duration_expr(e.lhs)} {e.op} {_fmt_duration_expr(e.rhs)}"
    raise TypeError(f"unexpected duration expression node {type(e).__name__}")


def _offset_str(d: Duration) -> str:
    if isinstance(d, DurationExpr):
        return " offset " + _fmt_duration_expr(d.expr)
    if d > 0:
        return " offset " + format_duration(d)
    if d < 0:
        return " offset -" + format_duration(-d)
    return ""


def _at_str(at: AtModifier | None) -> str:
    if at is None:
        return ""
    if at.start_or_end is not None:
        return f" @ {at.start_or_end}()"
    ts = at.timestamp_ms or 0
    sign = "-" if ts < 0 else ""
    q, r = divmod(abs(ts), 1000)
    return f" @ {sign}{q}.{r:03d}"


def _selector_core(vs: VectorSelector) -> str:
    parts = []
    for m in vs.matchers:
        if (m.name == METRIC_NAME and m.type is MatchType.EQ and vs.name is not None
                and m.value == vs.name and m.value != ""):
            continue
        parts.append(format_matcher(m))
    out = vs.name or ""
    if parts:
        out += "{" + ",".join(sorted(parts)) + "}"
    return out


def _labels(names: list[str]) -> str:
    return ", ".join(_label_name(n) for n in names)


def format_expr(expr: Expr) -> str:
    """Formats an expression in Prometheus' canonical single-line form."""
    with recursion_headroom():
        return _format(expr)


def _format(expr: Expr) -> str:
    if isinstance(expr, NumberLiteral):
        return _number(expr)
    if isinstance(expr, StringLiteral):
        return go_quote(expr.value)
    if isinstance(expr, VectorSelector):
        s = _selector_core(expr) + _at_str(expr.at)
        if expr.anchored:
            s += " anchored"
        elif expr.smoothed:
            s += " smoothed"
        return s + _offset_str(expr.offset)
    if isinstance(expr, MatrixSelector):
        vs = expr.vector
        ext = " anchored" if expr.anchored or vs.anchored else (
            " smoothed" if expr.smoothed or vs.smoothed else "")
        return (f"{_selector_core(vs)}[{_fmt_duration(expr.range)}]{ext}{_at_str(vs.at)}"
                f"{_offset_str(vs.offset)}")
    if isinstance(expr, SubqueryExpr):
        step = "" if isinstance(expr.step, int) and expr.step == 0 else _fmt_duration(expr.step)
        return (f"{_format(expr.expr)}[{_fmt_duration(expr.range)}:{step}]{_at_str(expr.at)}"
                f"{_offset_str(expr.offset)}")
    if isinstance(expr, ParenExpr):
        return "(" + _format(expr.expr) + ")"
    if isinstance(expr, UnaryExpr):
        return expr.op + _format(expr.expr)
    if isinstance(expr, StepInvariantExpr):
        return _format(expr.expr)
    if isinstance(expr, Call):
        return expr.func + "(" + ", ".join(_format(a) for a in expr.args) + ")"
    if isinstance(expr, AggregateExpr):
        s = expr.op
        if expr.without:
            s += f" without ({_labels(expr.grouping)}) "
        elif expr.grouping:
            s += f" by ({_labels(expr.grouping)}) "
        s += "("
        if expr.param is not None:
            s += _format(expr.param) + ", "
        return s + _format(expr.expr) + ")"
    if isinstance(expr, BinaryExpr):
        return f"{_format(expr.lhs)} {expr.op}{_binary_modifiers(expr)} {_format(expr.rhs)}"
    raise TypeError(f"cannot format {type(expr).__name__}")


def _binary_modifiers(b: BinaryExpr) -> str:
    s = " bool" if b.return_bool else ""
    vm = b.matching
    if vm is None:
        return s
    grouped = vm.card in (Cardinality.MANY_TO_ONE, Cardinality.ONE_TO_MANY)
    if vm.labels or vm.on or grouped:
        s += f" {'on' if vm.on else 'ignoring'} ({_labels(vm.labels)})"
    if grouped:
        side = "left" if vm.card is Cardinality.MANY_TO_ONE else "right"
        s += f" group_{side} ({_labels(vm.include)})"
    fl, fr = vm.fill_left, vm.fill_right
    if fl is not None and fr is not None and (fl == fr or (math.isnan(fl) and math.isnan(fr))):
        s += f" fill ({_format_g(fl)})"
    else:
        if fl is not None:
            s += f" fill_left ({_format_g(fl)})"
        if fr is not None:
            s += f" fill_right ({_format_g(fr)})"
    return s


# --- prettified form (what Prometheus' /api/v1/format_query returns) ---------------------------

MAX_CHARACTERS_PER_LINE = 100
_INDENT = "  "


def prettify_expr(expr: Expr) -> str:
    """Prometheus' ``Prettify``: the single-line form, except that any node whose single-line
    form is longer than 100 characters is split over several lines, children indented by two
    spaces. This is what ``/api/v1/format_query`` returns."""
    with recursion_headroom():
        return _pretty(expr, 0)


def _agg_head(e: AggregateExpr) -> str:
    if e.without:
        return f"{e.op} without ({_labels(e.grouping)}) "
    if e.grouping:
        return f"{e.op} by ({_labels(e.grouping)}) "
    return e.op


def _fits(flat: str) -> bool:
    # Prometheus counts bytes of the UTF-8 form
    return len(flat.encode("utf-8", "surrogatepass")) <= MAX_CHARACTERS_PER_LINE


def _pretty(e: Expr, level: int) -> str:
    ind = _INDENT * level
    flat = _format(e)
    if isinstance(e, SubqueryExpr):
        if _fits(flat):
            return flat  # Prometheus does not indent a short subquery
        suffix = flat[len(_format(e.expr)):]
        return _pretty(e.expr, level) + suffix
    if isinstance(e, UnaryExpr):
        return f"{ind}{e.op}{_pretty(e.expr, level).strip()}"
    if isinstance(e, StepInvariantExpr):
        return _pretty(e.expr, level)
    if _fits(flat) or not isinstance(e, AggregateExpr | BinaryExpr | Call | ParenExpr):
        return ind + flat
    if isinstance(e, AggregateExpr):
        s = f"{ind}{_agg_head(e)}(\n"
        if e.param is not None:
            s += _pretty(e.param, level + 1) + ",\n"
        return s + _pretty(e.expr, level + 1) + "\n" + ind + ")"
    if isinstance(e, BinaryExpr):
        return (f"{_pretty(e.lhs, level + 1)}\n{ind}{e.op}{_binary_modifiers(e)}\n"
                f"{_pretty(e.rhs, level + 1)}")
    if isinstance(e, Call):
        args = ",\n".join(_pretty(a, level + 1) for a in e.args)
        return f"{ind}{e.func}(\n{args}\n{ind})"
    return f"{ind}(\n{_pretty(e.expr, level + 1)}\n{ind})"


# --- JSON tree (what Prometheus' /api/v1/parse_query returns) ----------------------------------


def ast_to_json(expr: Expr) -> dict[str, Any]:
    """The AST as the JSON-serializable tree Prometheus' ``/api/v1/parse_query`` returns (used by
    its UI's tree view): ``{"type": "binaryExpr", "op": "+", "lhs": ..., ...}``."""
    with recursion_headroom():
        return _json(expr)


def _ms(d: Duration) -> int:
    return d if isinstance(d, int) else 0


def _dur_json(d: Duration) -> dict[str, Any] | None:
    return None if isinstance(d, int) else _dur_node(d.expr)


def _dur_node(e: Expr, wrapped: bool = False) -> dict[str, Any]:
    if isinstance(e, ParenExpr):
        inner = e.expr
        if isinstance(inner, NumberLiteral):  # Prometheus wraps a bare number in a unary plus
            return {"type": "durationExpr", "op": "+", "lhs": None, "rhs": _dur_node(inner),
                    "wrapped": True}
        return _dur_node(inner, wrapped=True)
    if isinstance(e, NumberLiteral):
        return {"type": "numberLiteral", "val": format_float(e.value), "duration": e.duration}
    if isinstance(e, UnaryExpr):
        return {"type": "durationExpr", "op": e.op, "lhs": None, "rhs": _dur_node(e.expr),
                "wrapped": wrapped}
    if isinstance(e, Call):
        lhs = _dur_node(e.args[0]) if e.args else None
        rhs = _dur_node(e.args[1]) if len(e.args) > 1 else None
        return {"type": "durationExpr", "op": e.func, "lhs": lhs, "rhs": rhs, "wrapped": wrapped}
    if isinstance(e, BinaryExpr):
        return {"type": "durationExpr", "op": e.op, "lhs": _dur_node(e.lhs), "rhs": _dur_node(e.rhs),
                "wrapped": wrapped}
    raise TypeError(f"unexpected duration expression node {type(e).__name__}")


def _matchers_json(ms: list[Matcher]) -> list[dict[str, str]]:
    return [{"name": m.name, "value": m.value, "type": m.type.value} for m in ms]


def _at_json(at: AtModifier | None) -> tuple[int | None, str | None]:
    if at is None:
        return None, None
    return at.timestamp_ms, at.start_or_end


def _json(e: Expr) -> dict[str, Any]:
    if isinstance(e, AggregateExpr):
        return {"type": "aggregation", "op": e.op, "expr": _json(e.expr),
                "param": None if e.param is None else _json(e.param), "grouping": list(e.grouping),
                "without": e.without}
    if isinstance(e, BinaryExpr):
        matching = None
        if e.matching is not None:
            m = e.matching
            matching = {"card": m.card.value, "labels": list(m.labels), "on": m.on,
                        "include": list(m.include), "fillValues": {"lhs": m.fill_left, "rhs": m.fill_right}}
        return {"type": "binaryExpr", "op": e.op, "lhs": _json(e.lhs), "rhs": _json(e.rhs),
                "matching": matching, "bool": e.return_bool}
    if isinstance(e, Call):
        sig = FUNCTIONS.get(e.func)
        func = {"name": e.func,
                "argTypes": [t.value for t in sig.arg_types] if sig else [],
                "variadic": sig.variadic if sig else 0,
                "returnType": e.return_type.value}
        return {"type": "call", "func": func, "args": [_json(a) for a in e.args]}
    if isinstance(e, MatrixSelector):
        vs = e.vector
        ts, se = _at_json(vs.at)
        return {"type": "matrixSelector", "name": vs.name or "", "range": _ms(e.range),
                "rangeExpr": _dur_json(e.range), "offset": _ms(vs.offset), "offsetExpr": _dur_json(vs.offset),
                "matchers": _matchers_json(vs.matchers), "timestamp": ts, "startOrEnd": se,
                "anchored": e.anchored or vs.anchored, "smoothed": e.smoothed or vs.smoothed}
    if isinstance(e, SubqueryExpr):
        ts, se = _at_json(e.at)
        return {"type": "subquery", "expr": _json(e.expr), "range": _ms(e.range),
                "rangeExpr": _dur_json(e.range), "offset": _ms(e.offset), "offsetExpr": _dur_json(e.offset),
                "step": _ms(e.step), "stepExpr": _dur_json(e.step), "timestamp": ts, "startOrEnd": se}
    if isinstance(e, NumberLiteral):
        return {"type": "numberLiteral", "val": format_float(e.value)}
    if isinstance(e, ParenExpr):
        return {"type": "parenExpr", "expr": _json(e.expr)}
    if isinstance(e, StringLiteral):
        return {"type": "stringLiteral", "val": e.value}
    if isinstance(e, UnaryExpr):
        return {"type": "unaryExpr", "op": e.op, "expr": _json(e.expr)}
    if isinstance(e, StepInvariantExpr):
        return _json(e.expr)
    if isinstance(e, VectorSelector):
        ts, se = _at_json(e.at)
        return {"type": "vectorSelector", "name": e.name or "", "offset": _ms(e.offset),
                "offsetExpr": _dur_json(e.offset), "matchers": _matchers_json(e.matchers),
                "timestamp": ts, "startOrEnd": se, "anchored": e.anchored, "smoothed": e.smoothed}
    raise TypeError(f"cannot translate {type(e).__name__}")
