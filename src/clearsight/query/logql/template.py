"""The Go templates of ``| line_format`` and ``| label_format``: the project's Go-template engine
(``rules/template.py``: actions, pipelines, ``if``/``range``/``with``, variables, ``{{- -}}``
trimming) with Loki's template functions instead of Prometheus'.

The dot is the entry's label map (``{{.level}}``; a missing label is ""); ``__line__`` is the
line and ``__timestamp__`` its time. Functions: Go's and/or/not/len/index/print/printf/println/
eq/ne/lt/le/gt/ge and Loki's ToUpper ToLower upper lower title trim trimSpace trimAll trimPrefix
trimSuffix replace substr trunc repeat contains hasPrefix hasSuffix count regexReplaceAll
regexReplaceAllLiteral default add sub mul div mod addf subf mulf divf ceil floor round max min
maxf minf int float64 b64enc b64dec urlencode urldecode alignLeft alignRight indent nindent abbrev
unixEpoch unixEpochMillis unixEpochNanos date (Go layouts). An unknown function or bad syntax is a
compile error (``TemplateError``), so a bad template is a 400 when the query is parsed.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clearsight.model.matchers import RegexError, compile_regex
from clearsight.query.promql.fn_labels import expand_template
from clearsight.rules import template as gotemplate
from clearsight.rules.template import to_text, truthy


class TemplateError(ValueError):
    pass


@dataclass
class Context:
    labels: dict[str, str]
    line: str
    ts_ns: int


@dataclass
class GoTime:
    ns: int

    def __str__(self) -> str:
        t = dt.datetime.fromtimestamp(self.ns // 1_000_000_000, dt.UTC)
        frac = self.ns % 1_000_000_000
        base = t.strftime("%Y-%m-%d %H:%M:%S")
        if frac:
            base += "." + f"{frac:09d}".rstrip("0")
        return base + " +0000 UTC"


# --- functions ------------------------------------------------------------------------------------

def _s(v: Any) -> str:
    return v if isinstance(v, str) else to_text(v)


def _num(v: Any) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return 0.0


def _int(v: Any) -> int:
    f = _num(v)
    return int(f) if math.isfinite(f) else 0


def _compiled(regex: Any) -> Any:
    try:
        return compile_regex(_s(regex))
    except RegexError as e:
        raise TemplateError(str(e)) from None


def _regex_replace(literal: bool) -> Callable[[Any, Any, Any], str]:
    def f(regex: Any, src: Any, repl: Any) -> str:
        rx = _compiled(regex)
        text, r = _s(src), _s(repl)
        out: list[str] = []
        pos = 0
        for m in rx.finditer(text):
            out.append(text[pos:m.start()])
            out.append(r if literal else expand_template(r, m))
            pos = m.end()
        out.append(text[pos:])
        return "".join(out)
    return f


_GO_LAYOUT = (("2006", "%Y"), ("01", "%m"), ("02", "%d"), ("15", "%H"), ("03", "%I"), ("04", "%M"), ("05", "%S"),
              ("Jan", "%b"), ("January", "%B"), ("Mon", "%a"), ("Monday", "%A"), ("PM", "%p"), ("MST", "UTC"),
              ("-0700", "+0000"), ("Z07:00", "Z"), ("06", "%y"))


def _date(layout: Any, t: Any) -> str:
    if not isinstance(t, GoTime):
        raise TemplateError("date needs a time (e.g. __timestamp__)")
    lay = _s(layout)
    d = dt.datetime.fromtimestamp(t.ns / 1e9, dt.UTC)
    frac = t.ns % 1_000_000_000
    out: list[str] = []
    i = 0
    tokens = sorted(_GO_LAYOUT, key=lambda p: -len(p[0]))
    while i < len(lay):
        if lay.startswith(".000", i) or lay.startswith(".999", i):
            j = i + 1
            while j < len(lay) and lay[j] == lay[i + 1]:
                j += 1
            digits = f"{frac:09d}"[: j - i - 1]
            out.append("." + (digits.rstrip("0") if lay[i + 1] == "9" else digits) if lay[i + 1] == "0" or
                       digits.rstrip("0") else "")
            i = j
            continue
        for go, py in tokens:
            if lay.startswith(go, i):
                out.append(d.strftime(py) if py.startswith("%") else py)
                i += len(go)
                break
        else:
            out.append(lay[i])
            i += 1
    return "".join(out)


def _b64dec(s: Any) -> str:
    return base64.b64decode(_s(s), validate=True).decode()


def _div(a: Any, b: Any) -> int:
    x, y = _int(a), _int(b)
    if y == 0:
        raise ZeroDivisionError("integer divide by zero")
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _substr(start: Any, end: Any, s: Any) -> str:
    text = _s(s)
    a, b = _int(start), _int(end)
    if a < 0:
        return text[:b]
    if b < 0 or b > len(text):
        return text[a:]
    return text[a:b]


def _trunc(n: Any, s: Any) -> str:
    text = _s(s)
    k = _int(n)
    return text[:k] if k >= 0 else text[len(text) + k:] if -k < len(text) else text


FUNCS: dict[str, Callable[..., Any]] = {
    "ToUpper": lambda s: _s(s).upper(), "ToLower": lambda s: _s(s).lower(),
    "upper": lambda s: _s(s).upper(), "lower": lambda s: _s(s).lower(),
    "title": lambda s: _s(s).title(),
    "trim": lambda s: _s(s).strip(), "trimSpace": lambda s: _s(s).strip(),
    "trimAll": lambda cut, s: _s(s).strip(_s(cut)),
    "trimPrefix": lambda p, s: _s(s).removeprefix(_s(p)),
    "trimSuffix": lambda p, s: _s(s).removesuffix(_s(p)),
    "replace": lambda old, new, s: _s(s).replace(_s(old), _s(new)),
    "substr": _substr, "trunc": _trunc,
    "repeat": lambda n, s: _s(s) * max(0, _int(n)),
    "contains": lambda sub, s: _s(sub) in _s(s),
    "hasPrefix": lambda p, s: _s(s).startswith(_s(p)),
    "hasSuffix": lambda p, s: _s(s).endswith(_s(p)),
    "count": lambda rx, s: sum(1 for _ in _compiled(rx).finditer(_s(s))),
    "regexReplaceAll": _regex_replace(False), "regexReplaceAllLiteral": _regex_replace(True),
    "default": lambda d, *v: v[0] if v and truthy(v[0]) else d,
    "add": lambda *a: sum(_int(x) for x in a), "sub": lambda a, b: _int(a) - _int(b),
    "mul": lambda *a: math.prod(_int(x) for x in a), "div": _div,
    "mod": lambda a, b: math.fmod(_int(a), _int(b)).__int__(),
    "addf": lambda *a: sum(_num(x) for x in a), "subf": lambda a, *b: _num(a) - sum(_num(x) for x in b),
    "mulf": lambda *a: math.prod(_num(x) for x in a),
    "divf": lambda a, *b: _num(a) / math.prod(_num(x) for x in b) if math.prod(_num(x) for x in b) else math.inf,
    "ceil": lambda a: float(math.ceil(_num(a))), "floor": lambda a: float(math.floor(_num(a))),
    "round": lambda a, p=0, r=0.5: math.floor(_num(a) * 10 ** _int(p) + _num(r)) / 10 ** _int(p),
    "max": lambda *a: max(_int(x) for x in a), "min": lambda *a: min(_int(x) for x in a),
    "maxf": lambda *a: max(_num(x) for x in a), "minf": lambda *a: min(_num(x) for x in a),
    "int": _int, "float64": _num,
    "b64enc": lambda s: base64.b64encode(_s(s).encode()).decode(), "b64dec": _b64dec,
    "urlencode": lambda s: urllib.parse.quote_plus(_s(s)), "urldecode": lambda s: urllib.parse.unquote_plus(_s(s)),
    "alignLeft": lambda n, s: _s(s)[:_int(n)].ljust(_int(n)),
    "alignRight": lambda n, s: _s(s)[:_int(n)].rjust(_int(n)),
    "indent": lambda n, s: "\n".join(" " * _int(n) + x for x in _s(s).split("\n")),
    "nindent": lambda n, s: "\n" + "\n".join(" " * _int(n) + x for x in _s(s).split("\n")),
    "abbrev": lambda n, s: _s(s) if len(_s(s)) <= _int(n) else _s(s)[: max(0, _int(n) - 3)] + "...",
    "unixEpoch": lambda t: t.ns // 1_000_000_000 if isinstance(t, GoTime) else _int(t),
    "unixEpochMillis": lambda t: t.ns // 1_000_000 if isinstance(t, GoTime) else _int(t),
    "unixEpochNanos": lambda t: t.ns if isinstance(t, GoTime) else _int(t),
    "date": _date,
}

for _name in ("and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge"):
    FUNCS.setdefault(_name, gotemplate.base_functions()[_name])
_NAMES = frozenset([*FUNCS, "__line__", "__timestamp__"])


@dataclass
class Template:
    nodes: list[Any]

    def render(self, ctx: Context) -> str:
        funcs = dict(FUNCS)
        funcs["__line__"] = lambda: ctx.line
        funcs["__timestamp__"] = lambda: GoTime(ctx.ts_ns)
        try:
            return gotemplate.execute(self.nodes, funcs, ctx.labels)
        except gotemplate.TemplateError as e:
            raise TemplateError(str(e)) from None


_CACHE: dict[str, Template] = {}


def compile_template(text: str) -> Template:
    hit = _CACHE.get(text)
    if hit is not None:
        return hit
    try:
        tpl = Template(gotemplate.parse(text, "line", _NAMES))
    except gotemplate.TemplateError as e:
        raise TemplateError(str(e)) from None
    if len(_CACHE) > 1024:
        _CACHE.clear()
    _CACHE[text] = tpl
    return tpl
