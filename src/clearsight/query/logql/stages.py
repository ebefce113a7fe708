"""LogQL pipeline stages at run time: each compiled stage is a function
``(line, labels, ts_ns) -> line | None`` over one entry (None drops it), ``labels`` a mutable dict.

Semantics follow Loki's documentation:

- parsers (``json``, ``logfmt``, ``regexp``, ``pattern``, ``unpack``) add labels; a name that is
  already a stream label (or structured metadata) gets the suffix ``_extracted``; names are
  sanitised (characters other than ``[a-zA-Z0-9_]`` become ``_``, a leading digit gets ``_``).
  ``json`` flattens nested objects with ``_`` and skips arrays; a line that is not a JSON object
  sets ``__error__=JSONParserErr`` (``__error_details__`` says why). ``logfmt`` skips malformed
  tokens silently; with ``--strict`` it stops at the first one with ``LogfmtParserErr`` (keeping
  the pairs before it); bare keys are dropped unless ``--keep-empty``. ``regexp``/``pattern`` add their named captures when the line matches.
  ``unpack`` adds the string fields of a JSON object and makes ``_entry`` the line.
- label filters: strings compare as Prometheus matchers (an absent label is ""); numbers,
  durations and bytes parse the label's value: an absent label drops the line, a value that
  does not parse keeps the line with ``__error__=LabelFilterErr``.
- ``line_format`` / ``label_format`` render Go templates (``template.py``); a template that fails
  at run time sets ``__error__=TemplateFormatErr`` and leaves the line/label unchanged.
- ``drop`` / ``keep`` remove labels (optionally only when the value matches).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from clearsight.model.matchers import compile_regex
from clearsight.query.logql.ast import (
    DecolorizeStage,
    DropStage,
    JsonStage,
    KeepStage,
    LabelAnd,
    LabelCompare,
    LabelExpr,
    LabelFilterStage,
    LabelFormatStage,
    LabelOr,
    LineFilterStage,
    LineFormatStage,
    LogfmtStage,
    PatternStage,
    RegexpStage,
    Stage,
    UnpackStage,
)
from clearsight.query.logql.ipmatch import compile_ip
from clearsight.query.logql.pattern import compile_pattern
from clearsight.query.logql.template import Context, TemplateError, compile_template
from clearsight.query.logql.units import parse_bytes, parse_go_duration

ERROR = "__error__"
ERROR_DETAILS = "__error_details__"
JSON_ERR = "JSONParserErr"
LOGFMT_ERR = "LogfmtParserErr"
LABEL_FILTER_ERR = "LabelFilterErr"
TEMPLATE_ERR = "TemplateFormatErr"
SAMPLE_ERR = "SampleExtractionErr"

StageFn = Callable[[str, dict[str, str], int], "str | None"]

_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_ANSI = re.compile(r"\x1b\[[0-9;:?]*[ -/]*[@-~]")
_SANE: dict[str, str] = {}


def sanitize(key: str) -> str:
    hit = _SANE.get(key)
    if hit is not None:
        return hit
    out = _BAD_CHARS.sub("_", key.strip())
    if out[:1].isdigit():
        out = "_" + out
    if len(_SANE) < 65536:
        _SANE[key] = out
    return out


class Pipeline:
    """The compiled stages of one log selector. ``base`` is the set of label names the parsers
    must not overwrite (stream labels and structured metadata of the entry being processed)."""

    def __init__(self, stages: tuple[Stage, ...], needed: frozenset[str] | None = None) -> None:
        """``needed``: the labels the caller reads after the pipeline (None: all of them, as a log
        query shows them). Parsers then add only the labels some later stage or the caller reads
        (Loki's label hints): a ``sum by (level)`` over ``| json`` skips the other fields."""
        self.stages = stages
        self.base: set[str] | frozenset[str] = frozenset()
        self._needed = _needed_after(stages, needed)
        self._k = 0
        self.fns: list[StageFn] = []
        for k, st in enumerate(stages):
            self._k = k
            self.fns.append(self._compile(st))
        # Whether any stage reads or writes labels (else the entry keeps its stream labels).
        self.uses_labels = any(not isinstance(s, (LineFilterStage, DecolorizeStage)) for s in stages)

    def run(self, line: str, labels: dict[str, str], ts: int) -> str | None:
        for fn in self.fns:
            res = fn(line, labels, ts)
            if res is None:
                return None
            line = res
        return line

    def _set(self, labels: dict[str, str], key: str, value: str) -> None:
        k = sanitize(key)
        if not k:
            return
        if k in self.base:
            k += "_extracted"
        labels[k] = value

    def label_names(self) -> set[str]:
        """The label names the label filters of this pipeline read."""
        out: set[str] = set()
        for st in self.stages:
            if isinstance(st, LabelFilterStage):
                out |= _label_names(st.expr)
        return out

    def _wanted(self) -> frozenset[str] | None:
        """The labels the stage being compiled must produce (None: all)."""
        return self._needed[self._k]

    def _compile(self, st: Stage) -> StageFn:
        if isinstance(st, LineFilterStage):
            return _line_filter(st)
        if isinstance(st, JsonStage):
            return self._json(st)
        if isinstance(st, LogfmtStage):
            return self._logfmt(st)
        if isinstance(st, RegexpStage):
            rx: Any = compile_regex(st.pattern)

            def regexp(line: str, labels: dict[str, str], ts: int) -> str:
                m = rx.search(line)
                if m is not None:
                    for k, v in m.groupdict().items():
                        if v is not None:
                            self._set(labels, k, v)
                return line
            return regexp
        if isinstance(st, PatternStage):
            pat = compile_pattern(st.pattern)

            def pattern(line: str, labels: dict[str, str], ts: int) -> str:
                caps = pat.match(line)
                if caps:
                    for k, v in caps:
                        self._set(labels, k, v)
                return line
            return pattern
        if isinstance(st, UnpackStage):
            return self._unpack
        if isinstance(st, DecolorizeStage):
            return lambda line, labels, ts: _ANSI.sub("", line)
        if isinstance(st, LabelFilterStage):
            test = _label_test(st.expr)
            return lambda line, labels, ts: line if test(labels) else None
        if isinstance(st, LineFormatStage):
            tpl = compile_template(st.template)

            def line_format(line: str, labels: dict[str, str], ts: int) -> str:
                try:
                    return tpl.render(Context(labels, line, ts))
                except TemplateError as e:
                    labels[ERROR] = TEMPLATE_ERR
                    labels[ERROR_DETAILS] = str(e)
                    return line
            return line_format
        if isinstance(st, LabelFormatStage):
            items = [(it.dst, it.src, compile_template(it.template) if it.template is not None else None)
                     for it in st.items]

            def label_format(line: str, labels: dict[str, str], ts: int) -> str:
                snapshot = dict(labels)
                for dst, src, tpl in items:
                    if tpl is not None:
                        try:
                            labels[dst] = tpl.render(Context(snapshot, line, ts))
                        except TemplateError as e:
                            labels[ERROR] = TEMPLATE_ERR
                            labels[ERROR_DETAILS] = str(e)
                    elif src is not None:
                        value = snapshot.get(src, "")
                        if src != dst:
                            labels.pop(src, None)
                        labels[dst] = value
                return line
            return label_format
        if isinstance(st, DropStage):
            drop_items = st.items

            def drop(line: str, labels: dict[str, str], ts: int) -> str:
                for it in drop_items:
                    v = labels.get(it.name)
                    if v is not None and (it.matcher is None or it.matcher.matches(v)):
                        del labels[it.name]
                return line
            return drop
        if isinstance(st, KeepStage):
            keep_items = st.items

            def keep(line: str, labels: dict[str, str], ts: int) -> str:
                kept = {}
                for it in keep_items:
                    v = labels.get(it.name)
                    if v is not None and (it.matcher is None or it.matcher.matches(v)):
                        kept[it.name] = v
                labels.clear()
                labels.update(kept)
                return line
            return keep
        raise TypeError(f"unknown stage {st!r}")

    # --- parsers ---------------------------------------------------------------------------------

    def _json(self, st: JsonStage) -> StageFn:
        paths = [(name, _json_path(expr)) for name, expr in st.params]
        wanted = self._wanted()
        flatten = self._flatten if wanted is None else self._flatten_wanted(wanted)

        def json_stage(line: str, labels: dict[str, str], ts: int) -> str:
            if line[:1] != "{" and not line.lstrip().startswith("{"):  # cheaper than orjson's exception
                labels[ERROR] = JSON_ERR
                labels[ERROR_DETAILS] = _NOT_AN_OBJECT
                return line
            doc = _json_object(line, labels)
            if doc is None:
                return line
            if paths:
                for name, path in paths:
                    v = _walk(doc, path)
                    if v is not None:
                        self._set(labels, name, v)
            else:
                flatten(doc, "", labels)
            return line
        return json_stage

    def _flatten_wanted(self, wanted: frozenset[str]) -> Callable[[dict[str, Any], str, dict[str, str]], None]:
        """``_flatten`` that sets only ``wanted`` labels (and their ``_extracted`` twins)."""
        want = (wanted | {w[: -len("_extracted")] for w in wanted if w.endswith("_extracted")}) - {ERROR, ERROR_DETAILS}
        prefixes = tuple(w.rsplit("_", 1)[0] + "_" for w in want if "_" in w)
        cache = _SANE
        if not prefixes:
            return self._flatten_top(want)

        def flatten(doc: dict[str, Any], prefix: str, labels: dict[str, str]) -> None:
            for k, v in doc.items():
                raw = prefix + k if prefix else k
                key = cache.get(raw) or sanitize(raw)
                if type(v) is dict:
                    if prefixes and any(p.startswith(key + "_") or key.startswith(p) for p in prefixes):
                        flatten(v, key + "_", labels)
                elif key in want and v is not None and type(v) is not list:
                    self._set(labels, key, v if type(v) is str else _scalar(v))
        return flatten

    def _flatten_top(self, want: frozenset[str]) -> Callable[[dict[str, Any], str, dict[str, str]], None]:
        """The wanted names have no ``_``: they can only be top-level keys, looked up directly;
        keys that sanitising changes are found by one set difference against the keys seen clean."""
        clean: set[str] = set()
        plain = tuple(want)

        def flatten(doc: dict[str, Any], prefix: str, labels: dict[str, str]) -> None:
            unknown = doc.keys() - clean
            if unknown:
                for k in unknown:
                    if sanitize(k) == k:
                        if len(clean) < 65536:
                            clean.add(k)
                    else:
                        v = doc[k]
                        key = sanitize(k)
                        if key in want and v is not None and type(v) is not list and type(v) is not dict:
                            self._set(labels, key, v if type(v) is str else _scalar(v))
            for w in plain:
                v = doc.get(w)
                if v is not None and type(v) is not list and type(v) is not dict:
                    self._set(labels, w, v if type(v) is str else _scalar(v))
        return flatten

    def _flatten(self, doc: dict[str, Any], prefix: str, labels: dict[str, str]) -> None:
        for k, v in doc.items():
            key = prefix + k
            if isinstance(v, dict):
                self._flatten(v, key + "_", labels)
            elif isinstance(v, list) or v is None:
                continue
            else:
                self._set(labels, key, _scalar(v))

    def _unpack(self, line: str, labels: dict[str, str], ts: int) -> str:
        doc = _json_object(line, labels)
        if doc is None:
            return line
        out = line
        for k, v in doc.items():
            if not isinstance(v, str):
                continue
            if k == "_entry":
                out = v
            else:
                self._set(labels, k, v)
        return out

    def _logfmt(self, st: LogfmtStage) -> StageFn:
        wanted = {expr: name for name, expr in st.params}
        hints = self._wanted()
        want = None if hints is None else hints | {h[: -len("_extracted")] for h in hints if h.endswith("_extracted")}

        def logfmt(line: str, labels: dict[str, str], ts: int) -> str:
            pairs, err = parse_logfmt(line, st.strict)
            if err is not None and st.strict:  # without --strict, bad tokens are skipped silently
                labels[ERROR] = LOGFMT_ERR
                labels[ERROR_DETAILS] = err
            for k, v in pairs:  # with --strict: the pairs before the error
                if v is None:
                    if not st.keep_empty:
                        continue
                    v = ""
                if wanted:
                    name = wanted.get(k)
                    if name is not None:
                        self._set(labels, name, v)
                elif want is None or sanitize(k) in want:
                    self._set(labels, k, v)
            return line
        return logfmt


def _label_names(e: LabelExpr) -> set[str]:
    if isinstance(e, (LabelAnd, LabelOr)):
        return _label_names(e.left) | _label_names(e.right)
    return {e.name}


def _needed_after(stages: tuple[Stage, ...], final: frozenset[str] | None) -> list[frozenset[str] | None]:
    """Per stage, the labels read after it (None: any label may be read)."""
    out: list[frozenset[str] | None] = [None] * len(stages)
    need: set[str] | None = None if final is None else set(final) | {ERROR, ERROR_DETAILS}
    for k in range(len(stages) - 1, -1, -1):
        out[k] = None if need is None else frozenset(need)
        st = stages[k]
        if need is None:
            continue
        if isinstance(st, LabelFilterStage):
            need |= _label_names(st.expr)
        elif isinstance(st, (LineFormatStage, LabelFormatStage, DropStage, KeepStage)):
            need = None  # templates and label rewrites may read any label
    return out


_LOGFMT = re.compile(r'\s*+(?:([^\s="]++)(?:=(?:"((?:[^"\\]++|\\.)*+)"|([^\s"=]*+)))?(?=\s|$)|(\S++))')
_LOGFMT_ESC = re.compile(r"\\(.)")
_LOGFMT_ESC_MAP = {"n": "\n", "t": "\t", "r": "\r"}


def parse_logfmt(line: str, strict: bool) -> tuple[list[tuple[str, str | None]], str | None]:
    """go-logfmt's reading: ``key=value``, ``key="quoted \\" value"``, ``key=`` (empty), bare ``key``
    (value None). Returns the pairs and the first error (with ``strict`` it stops there)."""
    out: list[tuple[str, str | None]] = []
    err: str | None = None
    for m in _LOGFMT.finditer(line):
        key, quoted, bare, garbage = m.groups()
        if garbage is not None:
            if err is None:
                err = f"logfmt syntax error at pos {m.start(4) + 1} : unexpected {garbage[:20]!r}"
            if strict:
                return out, err
            continue
        if key is None:
            continue
        if quoted is not None:
            if "\\" in quoted:
                quoted = _LOGFMT_ESC.sub(lambda e: _LOGFMT_ESC_MAP.get(e.group(1), e.group(1)), quoted)
            out.append((key, quoted))
        else:
            out.append((key, bare))
    return out, err


def _scalar(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        return repr(v) if v != int(v) or abs(v) >= 1e21 else str(int(v))
    return str(v)


_PATH_TOKEN = re.compile(r"""\s*(?:\.?([a-zA-Z_][a-zA-Z0-9_\-]*)|\[\s*(\d+)\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\])""")


def _json_path(expr: str) -> list[str | int]:
    out: list[str | int] = []
    pos = 0
    while pos < len(expr):
        m = _PATH_TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            out.append(expr[pos:])  # unparseable: never matches
            return out
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(m.group(3))
        pos = m.end()
    return out


def _walk(doc: Any, path: list[str | int]) -> str | None:
    cur = doc
    for p in path:
        if isinstance(p, int):
            if not isinstance(cur, list) or p >= len(cur):
                return None
            cur = cur[p]
        else:
            if not isinstance(cur, dict) or p not in cur:
                return None
            cur = cur[p]
    if cur is None:
        return None
    if isinstance(cur, (dict, list)):
        return orjson.dumps(cur).decode()
    return _scalar(cur)


def _line_filter(st: LineFilterStage) -> StageFn:
    pats = st.patterns
    neg = st.op.startswith("!")
    if st.ip:
        ipm = compile_ip(pats[0])

        def test(line: str) -> bool:
            return ipm.search(line)
    elif st.op in ("|=", "!="):
        def test(line: str) -> bool:
            return any(p in line for p in pats)
    elif st.op in ("|~", "!~"):
        rxs: list[Any] = [compile_regex(p) for p in pats]

        def test(line: str) -> bool:
            return any(r.search(line) is not None for r in rxs)
    else:
        compiled = [compile_pattern(p, for_filter=True) for p in pats]

        def test(line: str) -> bool:
            return any(c.match(line) is not None for c in compiled)
    if neg:
        return lambda line, labels, ts: None if test(line) else line
    return lambda line, labels, ts: line if test(line) else None


def _label_test(e: LabelExpr) -> Callable[[dict[str, str]], bool]:
    if isinstance(e, LabelAnd):
        a, b = _label_test(e.left), _label_test(e.right)
        return lambda labels: a(labels) and b(labels)
    if isinstance(e, LabelOr):
        a, b = _label_test(e.left), _label_test(e.right)
        return lambda labels: a(labels) or b(labels)
    return _compare(e)


_NUM_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def to_number(kind: str, text: str) -> float | None:
    """A label value as the filter's kind: a float, a Go duration (seconds) or a byte count."""
    if kind == "duration":
        return parse_go_duration(text)
    if kind == "bytes":
        return parse_bytes(text)
    try:
        return float(text.strip())
    except ValueError:
        return None


def _compare(c: LabelCompare) -> Callable[[dict[str, str]], bool]:
    if c.kind == "ip":
        ipm = compile_ip(c.text)
        neg, ip_name = c.op == "!=", c.name
        return lambda labels: ipm.contains(labels.get(ip_name, "")) != neg
    if c.kind == "string":
        m = c.matcher
        assert m is not None
        name = c.name
        return lambda labels: m.matches(labels.get(name, ""))
    fn = _NUM_OPS[c.op]
    ref = c.number
    name, kind = c.name, c.kind

    def test(labels: dict[str, str]) -> bool:
        v = labels.get(name)
        if v is None:
            return False
        x = to_number(kind, v)
        if x is None:
            labels[ERROR] = LABEL_FILTER_ERR
            labels[ERROR_DETAILS] = f"cannot parse {v!r} as a {kind}"
            return True
        return fn(x, ref)
    return test


_NOT_AN_OBJECT = "Value looks like a JSON value but not an object"


def _json_object(line: str, labels: dict[str, str]) -> dict[str, Any] | None:
    """The line as a JSON object, or None with Loki's ``__error__``/``__error_details__`` set."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        labels[ERROR] = JSON_ERR
        labels[ERROR_DETAILS] = str(e)
        return None
    if not isinstance(doc, dict):
        labels[ERROR] = JSON_ERR
        labels[ERROR_DETAILS] = _NOT_AN_OBJECT
        return None
    return doc
