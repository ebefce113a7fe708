"""Rule unit tests in the ``promtool test rules`` format, with promtool's verdicts and messages.

A test file has ``rule_files`` (globs relative to the test file), ``evaluation_interval`` (default
1m), ``group_eval_order`` and ``tests``; a test has ``interval``, ``input_series`` (``series`` and
``values`` in the expanding notation: ``1 2 _ stale 0+10x5 5-1x3 7x2 _x3``), ``alert_rule_test``
(``eval_time``, ``alertname``, ``exp_alerts`` with ``exp_labels``/``exp_annotations``),
``promql_expr_test`` (``expr``, ``eval_time``, ``exp_samples`` with ``labels``/``value``),
``external_labels``, ``external_url`` and ``name``. Rules are evaluated every
``evaluation_interval`` from 0 to the latest ``eval_time``; an alert test at time ``t`` compares
the firing alerts after the evaluation at the latest step <= ``t``.

``rules/`` does not import the engine: a ``TestBackend`` (in-memory series plus a query function)
is made per test by the caller (``make_backend``).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from clearsight.config import parse_duration_ms
from clearsight.model.labels import Labels, make_labels
from clearsight.model.samples import STALE_NAN
from clearsight.rules.alerting import FIRING, AlertingRule
from clearsight.rules.group import EvalOptions, Group
from clearsight.rules.model import ExprChecker, RuleFileError, load_rule_files
from clearsight.rules.template import go_e
from clearsight.rules.types import Vector


class TestBackend(Protocol):
    def add(self, samples: Sequence[tuple[Labels, int, float]]) -> None: ...

    def query(self, expr: str, time_ms: int) -> Vector: ...


BackendFactory = Callable[[], TestBackend]


class _Failure(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# ---------------------------------------------------------------- formatting as promtool does


def model_duration(ms: int) -> str:
    """Prometheus' ``model.Duration.String()``: ``5m``, ``1h30m``, ``0s``."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, mult, exact in (("y", 31536000000, True), ("w", 604800000, True), ("d", 86400000, False),
                              ("h", 3600000, False), ("m", 60000, False), ("s", 1000, False), ("ms", 1, False)):
        if exact and ms % mult:
            continue
        v = ms // mult
        if v > 0:
            out += f"{v}{unit}"
            ms -= v * mult
    return out


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String()`` of a millisecond count: ``5m0s``, ``1h0m0s``, ``1.5s``."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    h, rest = divmod(ms, 3600000)
    m, rest = divmod(rest, 60000)
    s, frac = divmod(rest, 1000)
    sec = f"{s}" + (f".{frac:03d}".rstrip("0") if frac else "") + "s"
    if h:
        return f"{sign}{h}h{m}m{sec}"
    if m:
        return f"{sign}{m}m{sec}"
    return f"{sign}{sec}"


def go_quote(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def labels_string(labels: Labels) -> str:
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in labels) + "}"


def format_e(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'E', -1, 64)``."""
    return go_e(v, upper=True)


def _indent_lines(text: str, indent: str) -> str:
    lines = text.split("\n")
    return "\n".join(line if i == 0 else indent + line for i, line in enumerate(lines))


def _alerts_string(items: list[tuple[Labels, Labels]]) -> str:
    if not items:
        return "[]"

    def one(la: tuple[Labels, Labels]) -> str:
        return "Labels:" + labels_string(la[0]) + "\nAnnotations:" + labels_string(la[1])

    s = "[\n0:" + _indent_lines("\n" + one(items[0]), "  ")
    for i, la in enumerate(items[1:], 1):
        s += ",\n" + str(i) + ":" + _indent_lines("\n" + one(la), "  ")
    return s + "\n]"


def _samples_string(items: list[tuple[Labels, float]]) -> str:
    if not items:
        return "nil"
    return ", ".join(labels_string(lb) + " " + format_e(v) for lb, v in items)


# ---------------------------------------------------------------- input notation

_SERIES_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(\{.*\})?\s*$", re.S)
_PAIR_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_NUM = r"(?:[-+]?(?:Inf|inf|NaN|nan|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))"
_ITEM_RE = re.compile(rf"^(?P<a>{_NUM})(?:(?P<b>[-+](?:Inf|inf|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+))?x(?P<n>\d+))?$")


def parse_series(text: str) -> Labels:
    """``metric{a="b"}`` (as promtool's input_series and exp_samples labels) to a label set."""
    m = _SERIES_RE.match(text)
    if m is None:
        raise ValueError(f"invalid series {text!r}")
    pairs: list[tuple[str, str]] = []
    if m.group(1):
        pairs.append(("__name__", m.group(1)))
    body = (m.group(2) or "{}")[1:-1].strip()
    pos = 0
    while pos < len(body):
        pm = _PAIR_RE.match(body, pos)
        if pm is None:
            raise ValueError(f"invalid label matcher in {text!r}")
        pairs.append((pm.group(1), pm.group(2).encode().decode("unicode_escape")))
        pos = pm.end()
    return make_labels(pairs)


def _num(s: str) -> float:
    t = s.lower().lstrip("+")
    if t in ("inf", "-inf", "nan"):
        return float(t)
    return float(s)


def expand_values(text: str) -> list[float | None]:
    """The expanding notation: ``a+bxn`` gives n+1 values, ``axn`` n+1 copies, ``_xn`` n gaps,
    ``_`` one gap (None), ``stale`` a stale marker."""
    out: list[float | None] = []
    for tok in str(text).split():
        if tok == "_":
            out.append(None)
        elif re.fullmatch(r"_x\d+", tok):
            out.extend([None] * int(tok[2:]))
        elif tok == "stale":
            out.append(STALE_NAN)
        else:
            m = _ITEM_RE.match(tok)
            if m is None:
                raise ValueError(f"invalid value {tok!r} in {text!r}")
            a = _num(m.group("a"))
            if m.group("n") is None:
                out.append(a)
                continue
            n = int(m.group("n"))
            b = _num(m.group("b")) if m.group("b") else 0.0
            v = a
            out.append(v)
            for _ in range(n):
                v += b
                out.append(v)
    return out


# ---------------------------------------------------------------- running


def _duration(v: Any, what: str) -> int:
    if v is None:
        return 0
    s = str(v).strip()
    if s == "0":
        return 0
    try:
        return parse_duration_ms(s)
    except ValueError:
        raise _Failure([f'{what}: not a valid duration string: "{s}"']) from None


_TOP_KEYS = {"rule_files", "evaluation_interval", "group_eval_order", "tests"}
_TEST_KEYS = {"interval", "input_series", "alert_rule_test", "promql_expr_test", "external_labels", "external_url",
              "name"}


def _strict(d: Any, keys: set[str], typ: str) -> dict[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise _Failure([f"yaml: cannot unmarshal into {typ}"])
    for k in d:
        if k not in keys:
            raise _Failure([f"yaml: unmarshal errors:\n  field {k} not found in type {typ}"])
    return d


@dataclass
class FileResult:
    file: str
    ok: bool
    errors: list[str]
    warnings: list[str] = field(default_factory=list)


def run_file(path: str, make_backend: BackendFactory, check_expr: ExprChecker | None = None) -> FileResult:
    """Runs one test file (its warnings, as promtool prints them on stderr, are in the result)."""
    warnings: list[str] = []
    try:
        _run_file(Path(path), make_backend, check_expr, warnings.append)
    except _Failure as f:
        return FileResult(path, False, f.errors, warnings)
    return FileResult(path, True, [], warnings)


def _run_file(path: Path, make_backend: BackendFactory, check_expr: ExprChecker | None,
              warn: Callable[[str], None]) -> None:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise _Failure([f"open {path}: {e.strerror}"]) from None
    except yaml.YAMLError as e:
        raise _Failure([f"yaml: {e}"]) from None
    doc = _strict(doc, _TOP_KEYS, "main.unitTestFile")
    rule_files = []
    for f in doc.get("rule_files") or []:
        p = str(f) if Path(str(f)).is_absolute() else str(path.parent / str(f))
        matches = sorted(glob.glob(p))
        if not matches:  # as promtool: a warning on stderr, the test goes on without those rules
            warn(f"  WARNING: no file match pattern {p}")
        rule_files.extend(matches)
    eval_interval = _duration(doc.get("evaluation_interval"), "evaluation_interval") or 60_000
    order: dict[str, int] = {}
    for i, gn in enumerate(doc.get("group_eval_order") or []):
        if gn in order:
            raise _Failure([f"group name repeated in evaluation order: {gn}"])
        order[str(gn)] = i
    errors: list[str] = []
    for t in doc.get("tests") or []:
        errors.extend(_run_test(_strict(t, _TEST_KEYS, "main.testGroup"), eval_interval, order, rule_files,
                                make_backend, check_expr))
    if errors:
        raise _Failure(errors)


def _run_test(tg: dict[str, Any], eval_interval: int, order: dict[str, int], rule_files: list[str],
              make_backend: BackendFactory, check_expr: ExprChecker | None) -> list[str]:
    interval = _duration(tg.get("interval"), "interval") or eval_interval
    backend = make_backend()
    pending: list[tuple[Labels, int, float]] = []
    for item in tg.get("input_series") or []:
        item = _strict(item, {"series", "values"}, "main.series")
        try:
            lbls = parse_series(str(item.get("series", "")))
            vals = expand_values(str(item.get("values", "")))
        except ValueError as e:
            return [str(e)]
        pending.extend((lbls, i * interval, v) for i, v in enumerate(vals) if v is not None)
    # As promtool's lazy loader: input samples become visible up to each evaluation step, so
    # samples after the last step (the latest eval_time rounded down) are never loaded.
    pending.sort(key=lambda x: x[1])
    loaded = 0
    try:
        specs = load_rule_files(rule_files, check_expr)
    except RuleFileError as e:
        return e.errors
    external_labels = {str(k): str(v) for k, v in (tg.get("external_labels") or {}).items()}
    opts = EvalOptions(external_labels=external_labels, external_url=str(tg.get("external_url") or ""))
    groups = [Group(s, interval, opts) for s in specs]
    groups.sort(key=lambda g: order.get(g.name, 0))  # stable: file order (promtool: random) without an order
    test_name = str(tg.get("name") or "")

    alert_tests: dict[int, list[dict[str, Any]]] = {}
    for a in tg.get("alert_rule_test") or []:
        a = _strict(a, {"eval_time", "alertname", "exp_alerts"}, "main.alertTestCase")
        t = _duration(a.get("eval_time"), "eval_time")
        if not a.get("alertname"):
            where = f" (in TestGroup {test_name})" if test_name else ""
            return [f"an item under alert_rule_test misses required attribute alertname at eval_time "
                    f"{model_duration(t)}{where}"]
        alert_tests.setdefault(t, []).append(a)
    promql_tests = []
    for q in tg.get("promql_expr_test") or []:
        q = _strict(q, {"expr", "eval_time", "exp_samples"}, "main.promqlTestCase")
        promql_tests.append((q, _duration(q.get("eval_time"), "eval_time")))
    maxt = max([*alert_tests, *(t for _, t in promql_tests), 0])
    eval_times = sorted(alert_tests)
    curr = 0
    errs: list[str] = []
    prefix = f"    name: {test_name},\n" if test_name else ""
    ts = 0
    while ts <= maxt:
        upto = loaded
        while upto < len(pending) and pending[upto][1] <= ts:
            upto += 1
        if upto > loaded:
            backend.add(pending[loaded:upto])
            loaded = upto
        eval_errs: list[str] = []
        for g in groups:
            g.eval(ts, backend.query, lambda samples, _sync: backend.add(samples), None)
            for r in g.rules:
                if r.health == "err":
                    eval_errs.append(f"    rule: {r.name}, time: {go_duration(ts)}, err: {r.last_error}")
        errs.extend(eval_errs)
        if eval_errs:
            return errs
        while curr < len(eval_times) and ts <= eval_times[curr] < ts + eval_interval:
            t = eval_times[curr]
            wanted = {a["alertname"] for a in alert_tests[t]}
            got: dict[str, list[tuple[Labels, Labels]]] = {}
            for g in groups:
                for r in g.rules:
                    if isinstance(r, AlertingRule) and r.name in wanted:
                        got.setdefault(r.name, []).extend(
                            (a.labels, a.annotations) for a in r.active.values() if a.state == FIRING)
            for case in alert_tests[t]:
                name = str(case["alertname"])
                got_alerts = sorted(got.get(name, []))
                exp: list[tuple[Labels, Labels]] = []
                for ea in case.get("exp_alerts") or []:
                    ea = _strict(ea, {"exp_labels", "exp_annotations"}, "main.alert")
                    lab = {str(k): str(v) for k, v in (ea.get("exp_labels") or {}).items()}
                    lab["alertname"] = name
                    ann = {str(k): str(v) for k, v in (ea.get("exp_annotations") or {}).items()}
                    exp.append((make_labels(lab), make_labels(ann)))
                exp.sort()
                if exp != got_alerts:
                    errs.append(f"{prefix}    alertname: {name}, time: {model_duration(t)}, \n"
                                f"        exp:{_indent_lines(_alerts_string(exp), ' ' * 12)}, \n"
                                f"        got:{_indent_lines(_alerts_string(got_alerts), ' ' * 12)}")
            curr += 1
        ts += eval_interval
    for q, t in promql_tests:
        expr = str(q.get("expr", ""))
        try:
            got_s = sorted((s.labels, s.value) for s in backend.query(expr, t))
        except Exception as e:
            errs.append(f"    expr: {go_quote(expr)}, time: {model_duration(t)}, err: {e}")
            continue
        exp_s: list[tuple[Labels, float]] = []
        bad = False
        for es in q.get("exp_samples") or []:
            es = _strict(es, {"labels", "value"}, "main.sample")
            try:
                exp_s.append((parse_series(str(es.get("labels", ""))), float(es.get("value", 0))))
            except ValueError as e:
                errs.append(f"    expr: {go_quote(expr)}, time: {model_duration(t)}, "
                            f"err: labels {go_quote(str(es.get('labels', '')))}: {e}")
                bad = True
                break
        if bad:
            continue
        exp_s.sort()
        if not _same_samples(exp_s, got_s):
            errs.append(f"    expr: {go_quote(expr)}, time: {model_duration(t)},\n"
                        f"        exp: {_samples_string(exp_s)}\n        got: {_samples_string(got_s)}")
    return errs


def _same_samples(a: list[tuple[Labels, float]], b: list[tuple[Labels, float]]) -> bool:
    # reflect.DeepEqual: NaN never equals NaN.
    return len(a) == len(b) and all(x[0] == y[0] and x[1] == y[1] for x, y in zip(a, b, strict=True))


def report(results: list[FileResult]) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) exactly as ``promtool test rules`` prints them."""
    out: list[str] = []
    err: list[str] = []
    failed = False
    for r in results:
        out.append(f"Unit Testing:  {r.file}\n")
        err.extend(w + "\n" for w in r.warnings)
        if r.ok:
            out.append("  SUCCESS\n")
        else:
            failed = True
            err.append("  FAILED:\n")
            for e in r.errors:
                err.append(e + "\n")
                out.append("\n")
        out.append("\n")
    return "".join(out), "".join(err), 1 if failed else 0
