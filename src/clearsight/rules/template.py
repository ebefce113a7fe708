"""Go-template-style expansion of alert labels and annotations (a safe subset of ``text/template``
with Prometheus' template functions).

Supported syntax: text and ``{{ pipeline }}`` actions with ``{{-``/``-}}`` trimming, comments
``{{/* */}}``, variables (``$labels``, ``$value``, ``$externalLabels``, ``$externalURL``, and
``{{ $x := ... }}`` / ``{{ $x = ... }}``), field access (``$labels.instance``, ``.Labels.job``,
``.Value``), string/number/bool literals, parenthesised sub-pipelines, pipes (``x | f a`` calls
``f a x``), ``if``/``else if``/``else``/``end``, ``range [$i, $e :=] pipeline``, ``with``.

Functions: Go's ``and or not len index print printf println eq ne lt le gt ge urlquery html``;
Prometheus' ``query first label value strvalue sortByLabel humanize humanize1024 humanizeDuration
humanizePercentage humanizeTimestamp toTime toUpper toLower title match reReplaceAll stripPort
stripDomain safeHtml args graphLink tableLink externalURL pathPrefix parseDuration``.
Not supported: ``define``/``template``/``block``, methods, ``break``/``continue``. Templates are
parsed when a rule file loads (an unknown function or bad syntax is a load error) and never run
code beyond these functions. A template that fails while expanding yields
``<error expanding template: ...>`` like Prometheus.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import html as _html
import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearsight.model.histogram_text import go_format_g as go_float  # Go's %v of a float64
from clearsight.rules.types import QueryFunc, Sample


class TemplateError(Exception):
    """A template that does not parse (load time) or fails while expanding."""


# ---------------------------------------------------------------- values and formatting


def go_e(v: float, upper: bool = False) -> str:
    """Go's ``strconv.FormatFloat(v, 'e' or 'E', -1, 64)``: shortest digits, exponent form."""
    e = "E" if upper else "e"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return f"{'-' if math.copysign(1.0, v) < 0 else ''}0{e}+00"
    d = decimal.Decimal(repr(abs(float(v))))
    exp = d.adjusted()
    digits = str(d.as_tuple().digits and "".join(map(str, d.as_tuple().digits))).lstrip("0").rstrip("0") or "0"
    m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if v < 0 else ''}{m}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_g(v: float, prec: int = 4) -> str:
    """Go's ``%.4g``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"%.{prec}g" % v


def to_text(v: Any) -> str:
    """How ``{{ x }}`` prints a value (Go's ``%v``)."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{to_text(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, list):
        return "[" + " ".join(to_text(x) for x in v) + "]"
    if isinstance(v, TemplateSample):
        return "{" + to_text(v.Labels) + " " + to_text(v.Value) + "}"
    return str(v)


def truthy(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, bool | int | float | str | list | dict):
        return bool(v)
    return True


def to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise TemplateError(f"can't convert {to_text(v)} to float")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip()) if v.strip().lower() not in ("inf", "+inf") else math.inf
        except ValueError:
            raise TemplateError(f'strconv.ParseFloat: parsing "{v}": invalid syntax') from None
    raise TemplateError(f"can't convert {to_text(v)} to float")


@dataclass
class TemplateSample:
    """A query result element as templates see it (``.Labels``, ``.Value``)."""

    Labels: dict[str, str]
    Value: float


# ---------------------------------------------------------------- Prometheus' functions


def humanize(v: Any) -> str:
    x = to_float(v)
    if x == 0 or math.isnan(x) or math.isinf(x):
        return go_g(x)
    prefix = ""
    if abs(x) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(x) < 1000:
                break
            prefix, x = p, x / 1000
        return go_g(x) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix, x = p, x * 1000
    return go_g(x) + prefix


def humanize1024(v: Any) -> str:
    x = to_float(v)
    if abs(x) <= 1 or math.isnan(x) or math.isinf(x):
        return go_g(x)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(x) < 1024:
            break
        prefix, x = p, x / 1024
    return go_g(x) + prefix


def humanize_duration(v: Any) -> str:
    x = to_float(v)
    if math.isnan(x) or math.isinf(x):
        return go_g(x)
    if x == 0:
        return go_g(x) + "s"
    if abs(x) >= 1:
        sign = "-" if x < 0 else ""
        x = abs(x)
        d = int(x)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{go_g(x)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix, x = p, x * 1000
    return f"{go_g(x)}{prefix}s"


def humanize_percentage(v: Any) -> str:
    return go_g(to_float(v) * 100) + "%"


def humanize_timestamp(v: Any) -> str:
    x = to_float(v)
    if math.isnan(x) or math.isinf(x):
        return go_g(x)
    return go_time(x)


def go_time(seconds: float) -> str:
    """Go's ``time.Time.String()`` in UTC of a Prometheus timestamp (millisecond precision, as
    ``model.TimeFromUnixNano``): ``2006-01-02 15:04:05.999 +0000 UTC``."""
    ms = int(seconds * 1e9) // 1_000_000
    whole, frac_ms = divmod(ms, 1000)
    t = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=whole)
    frac = f".{frac_ms:03d}".rstrip("0") if frac_ms else ""
    return t.strftime("%Y-%m-%d %H:%M:%S") + frac + " +0000 UTC"


_GO_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def go_sprintf(fmt: str, *args: Any) -> str:
    """``printf`` with Go verbs: ``%s %v %d %f %e %g %q %x %X %t %%`` with flags, width, precision."""
    out: list[str] = []
    pos = 0
    i = 0
    for m in _GO_VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if i >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[i]
        i += 1
        spec = flags + (width or "") + (f".{prec}" if prec is not None else "")
        if verb in "sv":
            s = to_text(a) if verb == "v" or not isinstance(a, float) else go_float(a)
            if prec is not None:
                s = s[:int(prec)]
            out.append(("%" + flags + (width or "") + "s") % s)
        elif verb in "dxXob":
            try:
                n = int(to_float(a)) if not isinstance(a, int) or isinstance(a, bool) else a
            except TemplateError:
                out.append(f"%!{verb}({to_text(a)})")
                continue
            if isinstance(a, float) and a != int(a):
                out.append(f"%!{verb}(float64={go_float(a)})")
                continue
            out.append(("%" + spec + verb) % n)
        elif verb in "feEgG":
            try:
                f = to_float(a)
            except TemplateError:
                out.append(f"%!{verb}(string={to_text(a)})")
                continue
            if math.isnan(f) or math.isinf(f):
                out.append(("%" + flags + (width or "") + "s") % go_g(f))
            else:
                out.append(("%" + spec + verb) % f)
        elif verb == "q":
            out.append('"' + to_text(a).replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif verb == "t":
            out.append(to_text(bool(a)) if isinstance(a, bool) else f"%!t({to_text(a)})")
        else:
            out.append(f"%!{verb}({to_text(a)})")
    out.append(fmt[pos:])
    if i < len(args):
        out.append("%!(EXTRA " + ", ".join(to_text(a) for a in args[i:]) + ")")
    return "".join(out)


def _go_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise TemplateError(f"error parsing regexp: {e}: `{pattern}`") from None


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    rx = _go_regex(pattern)
    # Go's $1 / ${1} / ${name} expansion.
    py = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: "\\g<" + (m.group(1) or m.group(2)) + ">", repl.replace("\\", "\\\\"))
    try:
        return rx.sub(py, text)
    except (re.error, IndexError):
        return rx.sub(lambda _m: "", text)


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    h, sep, port = host.rpartition(":")
    if sep and ":" not in h and port.isdigit():
        return h
    return host


def _strip_domain(host: str) -> str:
    if host.startswith("["):
        return host
    h, sep, port = host.rpartition(":")
    name, p = (h, ":" + port) if sep and port.isdigit() and ":" not in h else (host, "")
    if re.fullmatch(r"[\d.]+", name):
        return host
    return name.split(".", 1)[0] + p


def _title(s: str) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


def _parse_duration(s: str) -> float:
    total = 0.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
             "w": 604800.0, "y": 31536000.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise TemplateError(f'not a valid duration string: "{s}"')
    for num, unit in parts:
        total += float(num) * units[unit]
    return total


def _compare(op: str) -> Callable[..., bool]:
    def cmp(a: Any, *bs: Any) -> bool:
        if not bs:
            raise TemplateError(f"missing argument for comparison {op}")
        for b in bs:
            x, y = a, b
            if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
                x, y = float(x), float(y)
            elif type(x) is not type(y):
                raise TemplateError(f"incompatible types for comparison {op}")
            try:
                r = {"eq": x == y, "ne": x != y, "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}[op]
            except TypeError:
                raise TemplateError(f"invalid type for comparison {op}") from None
            if op == "eq":
                if r:
                    return True
                continue
            return bool(r)
        return False

    return cmp


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, dict):
            item = item.get(k, "" if all(isinstance(x, str) for x in item.values()) else None)
        elif isinstance(item, list | str):
            try:
                item = item[int(k)]
            except (IndexError, ValueError, TypeError):
                raise TemplateError(f"index out of range: {k}") from None
        else:
            raise TemplateError(f"can't index item of type {type(item).__name__}")
    return item


def _first(v: Any) -> Any:
    if isinstance(v, list) and v:
        return v[0]
    raise TemplateError("first() called on vector with no elements")


def _label(name: str, s: Any) -> str:
    if isinstance(s, TemplateSample):
        return s.Labels.get(name, "")
    raise TemplateError("label() needs a sample")


def _value(s: Any) -> float:
    if isinstance(s, TemplateSample):
        return s.Value
    raise TemplateError("value() needs a sample")


def _sort_by_label(name: str, v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise TemplateError("sortByLabel needs a query result")
    return sorted(v, key=lambda s: s.Labels.get(name, "") if isinstance(s, TemplateSample) else "")


def _link(kind: str) -> Callable[[str], str]:
    def link(expr: str) -> str:
        q = urllib.parse.quote(expr, safe="")
        tab = 0 if kind == "graph" else 1
        return f"/graph?g0.expr={q}&g0.tab={tab}"

    return link


def _go_print(*args: Any) -> str:
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += to_text(a)
    return out


def base_functions() -> dict[str, Callable[..., Any]]:
    """Functions that need no context (the query-dependent ones are added per expansion)."""
    return {
        "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
        "or": lambda *a: next((x for x in a if truthy(x)), a[-1]),
        "not": lambda a: not truthy(a),
        "len": lambda a: len(a),
        "index": _index,
        "print": _go_print,
        "printf": lambda fmt, *a: go_sprintf(str(fmt), *a),
        "println": lambda *a: " ".join(to_text(x) for x in a) + "\n",
        "eq": _compare("eq"), "ne": _compare("ne"), "lt": _compare("lt"), "le": _compare("le"),
        "gt": _compare("gt"), "ge": _compare("ge"),
        "urlquery": lambda *a: urllib.parse.quote_plus(_go_print(*a)),
        "html": lambda *a: _html.escape(_go_print(*a)),
        "first": _first, "label": _label, "value": _value,
        "strvalue": lambda s: s.Labels.get("__value__", "") if isinstance(s, TemplateSample) else "",
        "sortByLabel": _sort_by_label,
        "humanize": humanize, "humanize1024": humanize1024, "humanizeDuration": humanize_duration,
        "humanizePercentage": humanize_percentage, "humanizeTimestamp": humanize_timestamp,
        "toTime": lambda v: go_time(to_float(v)),
        "toUpper": lambda s: str(s).upper(), "toLower": lambda s: str(s).lower(), "title": lambda s: _title(str(s)),
        "match": lambda p, s: _go_regex(str(p)).search(str(s)) is not None,
        "reReplaceAll": lambda p, r, t: _re_replace_all(str(p), str(r), str(t)),
        "stripPort": lambda s: _strip_port(str(s)), "stripDomain": lambda s: _strip_domain(str(s)),
        "safeHtml": lambda s: str(s),
        "args": lambda *a: {f"arg{i}": x for i, x in enumerate(a)},
        "graphLink": _link("graph"), "tableLink": _link("table"),
        "parseDuration": lambda s: _parse_duration(str(s)),
        # Filled per expansion:
        "query": lambda q: [], "externalURL": lambda: "", "pathPrefix": lambda: "",
    }


_BASE_FUNCTIONS = base_functions()
FUNCTION_NAMES = frozenset(_BASE_FUNCTIONS)

# ---------------------------------------------------------------- lexer and parser

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<assign>:=|=)
  | (?P<var>\$\w*)
  | (?P<field>(?:\.\w+)+|\.)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
""", re.X)


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(src: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise TemplateError(f"unexpected {src[pos]!r} in command")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        text = m.group()
        # A field chain straight after a variable or ')' is a field access on it.
        if kind == "field" and text != "." and out and out[-1].kind in ("var", "rp") and src[m.start() - 1] != " ":
            out.append(_Tok("chain", text))
            continue
        out.append(_Tok(kind, text))
    return out


# AST: operands are tuples; commands are lists of operands; pipelines are lists of commands.
Operand = tuple[Any, ...]


@dataclass
class _Pipe:
    decl: list[str] = field(default_factory=list)  # variables declared (:=) or assigned (=)
    assign: bool = False
    cmds: list[list[Operand]] = field(default_factory=list)


@dataclass
class _Node:
    kind: str  # text | action | if | range | with
    text: str = ""
    pipe: _Pipe | None = None
    body: list[_Node] = field(default_factory=list)
    else_body: list[_Node] = field(default_factory=list)


class _Parser:
    def __init__(self, toks: list[_Tok], funcs: frozenset[str]) -> None:
        self.toks = toks
        self.i = 0
        self.funcs = funcs

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def pipeline(self, allow_decl: bool = True) -> _Pipe:
        p = _Pipe()
        # "$x :=" / "$i, $e :=" / "$x ="
        j = self.i
        names: list[str] = []
        while allow_decl and j < len(self.toks) and self.toks[j].kind == "var":
            names.append(self.toks[j].text)
            if j + 1 < len(self.toks) and self.toks[j + 1].kind == "comma":
                j += 2
                continue
            if j + 1 < len(self.toks) and self.toks[j + 1].kind == "assign":
                p.decl = names
                p.assign = self.toks[j + 1].text == "="
                self.i = j + 2
            break
        while True:
            cmd = self.command()
            if not cmd:
                raise TemplateError("missing value for command")
            p.cmds.append(cmd)
            t = self.peek()
            if t is None or t.kind == "rp":
                return p
            if t.kind != "pipe":
                raise TemplateError(f"unexpected {t.text!r} in operand")
            self.i += 1

    def command(self) -> list[Operand]:
        ops: list[Operand] = []
        while True:
            t = self.peek()
            if t is None or t.kind in ("pipe", "rp"):
                return ops
            ops.append(self.operand())

    def operand(self) -> Operand:
        t = self.toks[self.i]
        self.i += 1
        op: Operand
        if t.kind == "str":
            op = ("lit", _unquote(t.text))
        elif t.kind == "raw":
            op = ("lit", t.text[1:-1])
        elif t.kind == "char":
            op = ("lit", ord(_unquote('"' + t.text[1:-1] + '"')))
        elif t.kind == "num":
            txt = t.text
            op = ("lit", int(txt, 0) if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", txt) else float(txt))
        elif t.kind == "var":
            op = ("var", t.text)
        elif t.kind == "field":
            op = ("dot", [x for x in t.text.split(".") if x])
        elif t.kind == "ident":
            if t.text in ("true", "false"):
                op = ("lit", t.text == "true")
            elif t.text == "nil":
                op = ("lit", None)
            elif t.text in self.funcs:
                op = ("fn", t.text)
            else:
                raise TemplateError(f'function "{t.text}" not defined')
        elif t.kind == "lp":
            inner = self.pipeline(allow_decl=False)
            if self.peek() is None or self.toks[self.i].kind != "rp":
                raise TemplateError("unclosed left paren")
            self.i += 1
            op = ("pipe", inner)
        else:
            raise TemplateError(f"unexpected {t.text!r} in operand")
        nxt = self.peek()
        if nxt is not None and nxt.kind == "chain":
            self.i += 1
            op = ("chain", op, [x for x in nxt.text.split(".") if x])
        return op


def _unquote(s: str) -> str:
    try:
        out = s[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        return out.encode("latin-1", "ignore").decode("utf-8", "replace") if out.isascii() is False else out
    except UnicodeDecodeError:
        raise TemplateError(f"invalid syntax: {s}") from None


def parse(src: str, name: str = "template", funcs: frozenset[str] = FUNCTION_NAMES) -> list[_Node]:
    """Parses ``src`` (calling only ``funcs``); raises TemplateError ``template: NAME:LINE: reason``."""
    root: list[_Node] = []
    stack: list[tuple[_Node, list[_Node]]] = []
    current = root
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(src):
        text = src[pos:m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            current.append(_Node("text", text=text))
        pos = m.end()
        trim_next = bool(m.group(3))
        body = m.group(2).strip()
        line = src.count("\n", 0, m.start()) + 1
        try:
            if body.startswith("/*"):
                if not body.endswith("*/"):
                    raise TemplateError("unclosed comment")
                continue
            toks = _tokens(body)
            if not toks:
                raise TemplateError("missing value for command")
            head = toks[0]
            p = _Parser(toks, funcs)
            if head.kind == "ident" and head.text in ("if", "range", "with"):
                p.i = 1
                node = _Node(head.text, pipe=p.pipeline(allow_decl=head.text != "if"))
                current.append(node)
                stack.append((node, current))
                current = node.body
            elif head.kind == "ident" and head.text == "else":
                if not stack:
                    raise TemplateError("unexpected {{else}}")
                node, _parent = stack[-1]
                if current is node.else_body:
                    raise TemplateError("expected end; found {{else}}")
                if len(toks) > 1:  # else if ... / else with ...
                    kind = toks[1].text
                    if kind not in ("if", "with") or kind != node.kind:
                        raise TemplateError(f"unexpected {toks[1].text!r} after else")
                    p.i = 2
                    chained = _Node(kind, pipe=p.pipeline(allow_decl=kind != "if"))
                    node.else_body.append(chained)
                    stack[-1] = (chained, _parent)
                    # The chained node ends with the same {{end}}: mark by sharing the parent.
                    current = chained.body
                else:
                    current = node.else_body
            elif head.kind == "ident" and head.text == "end":
                if not stack:
                    raise TemplateError("unexpected {{end}}")
                _node, current = stack.pop()
            elif head.kind == "ident" and head.text in ("define", "template", "block", "break", "continue"):
                raise TemplateError(f"{{{{{head.text}}}}} is not supported")
            else:
                pipe = p.pipeline()
                if p.i != len(toks):
                    raise TemplateError(f"unexpected {toks[p.i].text!r} in command")
                current.append(_Node("action", pipe=pipe))
        except TemplateError as e:
            raise TemplateError(f"template: {name}:{line}: {e}") from None
    text = src[pos:]
    if trim_next:
        text = text.lstrip()
    if text:
        current.append(_Node("text", text=text))
    if stack:
        raise TemplateError(f"template: {name}: unexpected EOF")
    if "{{" in text:
        raise TemplateError(f"template: {name}: unclosed action")
    return root


# ---------------------------------------------------------------- evaluation


class _Exec:
    def __init__(self, funcs: dict[str, Callable[..., Any]], dot: Any, variables: dict[str, Any]) -> None:
        self.funcs = funcs
        self.vars = [dict(variables)]
        self.vars[0]["$"] = dot
        self.out: list[str] = []
        self.steps = 0

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.vars):
            if name in scope:
                return scope[name]
        raise TemplateError(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any, declare: bool) -> None:
        if declare:
            self.vars[-1][name] = value
            return
        for scope in reversed(self.vars):
            if name in scope:
                scope[name] = value
                return
        raise TemplateError(f"undefined variable: {name}")

    def run(self, nodes: list[_Node], dot: Any) -> None:
        for n in nodes:
            self.steps += 1
            if self.steps > 100_000:
                raise TemplateError("template too expensive (more than 100000 steps)")
            if n.kind == "text":
                self.out.append(n.text)
            elif n.kind == "action":
                assert n.pipe is not None
                v = self.pipe(n.pipe, dot)
                if not n.pipe.decl:
                    self.out.append(to_text(v))
            elif n.kind in ("if", "with"):
                assert n.pipe is not None
                self.vars.append({})
                v = self.pipe(n.pipe, dot)
                if truthy(v):
                    self.run(n.body, v if n.kind == "with" else dot)
                else:
                    self.run(n.else_body, dot)
                self.vars.pop()
            elif n.kind == "range":
                assert n.pipe is not None
                self.vars.append({})
                decl = n.pipe.decl
                v = self.pipe(n.pipe, dot, declare=False)  # range's variables are per element
                items: list[tuple[Any, Any]]
                if isinstance(v, dict):
                    items = sorted(v.items())
                elif isinstance(v, list):
                    items = list(enumerate(v))
                elif isinstance(v, int) and not isinstance(v, bool):
                    items = [(i, i) for i in range(v)]
                elif v is None:
                    items = []
                else:
                    raise TemplateError(f"range can't iterate over {to_text(v)}")
                if not items:
                    self.run(n.else_body, dot)
                for k, e in items:
                    if len(decl) == 1:
                        self.vars[-1][decl[0]] = e
                    elif len(decl) == 2:
                        self.vars[-1][decl[0]] = k
                        self.vars[-1][decl[1]] = e
                    self.run(n.body, e)
                self.vars.pop()

    def pipe(self, p: _Pipe, dot: Any, declare: bool = True) -> Any:
        val: Any = None
        for i, cmd in enumerate(p.cmds):
            val = self.command(cmd, dot, val, i > 0)
        for name in p.decl[-1:] if declare else ():
            self.set_var(name, val, not p.assign)
        return val

    def command(self, cmd: list[Operand], dot: Any, piped: Any, has_piped: bool) -> Any:
        head = cmd[0]
        if head[0] == "fn":
            args = [self.operand(o, dot) for o in cmd[1:]]
            if has_piped:
                args.append(piped)
            fn = self.funcs[head[1]]
            try:
                return fn(*args)
            except TemplateError as e:
                raise TemplateError(f"error calling {head[1]}: {e}") from None
            except TypeError:
                raise TemplateError(f"wrong number of args for {head[1]}: got {len(args)}") from None
            except (ValueError, ZeroDivisionError, OverflowError) as e:
                raise TemplateError(f"error calling {head[1]}: {e}") from None
        if len(cmd) > 1 or has_piped:
            raise TemplateError(f"can't give argument to non-function {self._name(head)}")
        return self.operand(head, dot)

    @staticmethod
    def _name(o: Operand) -> str:
        return str(o[1]) if o[0] in ("var", "fn", "lit") else o[0]

    def operand(self, o: Operand, dot: Any) -> Any:
        kind = o[0]
        if kind == "lit":
            return o[1]
        if kind == "var":
            return self.lookup(o[1])
        if kind == "dot":
            return _fields(dot, o[1])
        if kind == "fn":
            return self.command([o], dot, None, False)
        if kind == "pipe":
            return self.pipe(o[1], dot)
        if kind == "chain":
            return _fields(self.operand(o[1], dot), o[2])
        raise TemplateError(f"bad operand {kind}")


def _fields(v: Any, names: list[str]) -> Any:
    for n in names:
        if isinstance(v, dict):
            v = v.get(n, "")  # Prometheus uses missingkey=zero
        elif isinstance(v, TemplateSample | TemplateData) and hasattr(v, n):
            v = getattr(v, n)
        elif v is None:
            raise TemplateError(f"nil pointer evaluating .{n}")
        else:
            raise TemplateError(f"can't evaluate field {n} in type {type(v).__name__}")
    return v


@dataclass
class TemplateData:
    """The dot of an alert template: ``.Labels``, ``.ExternalLabels``, ``.ExternalURL``, ``.Value``."""

    Labels: dict[str, str]
    ExternalLabels: dict[str, str]
    ExternalURL: str
    Value: float


def expand(src: str, data: TemplateData, query: QueryFunc | None = None, time_ms: int = 0,
           name: str = "template") -> str:
    """Expands ``src`` against ``data``; ``query`` serves the ``query`` function at ``time_ms``.
    Raises TemplateError (callers turn it into ``<error expanding template: ...>``)."""
    if "{{" not in src:
        return src
    nodes = _parse_cached(src, name)
    funcs = dict(_BASE_FUNCTIONS)

    def run_query(q: Any) -> list[TemplateSample]:
        if query is None:
            raise TemplateError("query is not available here")
        try:
            vec = query(str(q), time_ms)
        except Exception as e:
            raise TemplateError(str(e)) from None
        return [_template_sample(s) for s in vec]

    funcs["query"] = run_query
    funcs["externalURL"] = lambda: data.ExternalURL
    funcs["pathPrefix"] = lambda: urllib.parse.urlparse(data.ExternalURL).path
    variables = {"$labels": data.Labels, "$externalLabels": data.ExternalLabels,
                 "$externalURL": data.ExternalURL, "$value": data.Value}
    ex = _Exec(funcs, data, variables)
    ex.run(nodes, data)
    return "".join(ex.out)


def execute(nodes: list[_Node], funcs: dict[str, Callable[..., Any]], dot: Any) -> str:
    """Runs parsed ``nodes`` with another function table and ``dot`` (LogQL's line_format)."""
    ex = _Exec(funcs, dot, {})
    ex.run(nodes, dot)
    return "".join(ex.out)


def _template_sample(s: Sample) -> TemplateSample:
    return TemplateSample(Labels=dict(s.labels), Value=s.value)


@functools.lru_cache(maxsize=8192)
def _parse_cached(src: str, name: str) -> list[_Node]:
    """Templates are parsed once (the trees are never changed while executing)."""
    return parse(src, name)


def check(src: str, name: str) -> None:
    """Raises TemplateError when ``src`` does not parse (load-time validation)."""
    if "{{" in src:
        parse(src, name)
