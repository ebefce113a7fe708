"""Prometheus-format rule files: the model and the parser.

A file holds ``groups:``; a group has ``name``, optional ``interval`` and ``limit`` and ``rules``; a
rule is a recording rule (``record``, ``expr``, ``labels``) or an alerting rule (``alert``,
``expr``, ``for``, ``keep_firing_for``, ``labels``, ``annotations``). Unknown fields are errors,
as in Prometheus. Every error names the file, line, group, rule and field, e.g.
``rules.yml:7: group "api", rule 2 ("HighLatency"): field "for": invalid duration "5x"``.

Expressions are checked by a function the caller passes (``ExprChecker``): ``rules/`` does not
import the PromQL parser; ``server.py`` and the CLI pass the real one.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clearsight.config import parse_duration_ms
from clearsight.rules import simple, template

# Returns an error message for a bad PromQL expression, None when it parses.
ExprChecker = Callable[[str], str | None]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class RuleFileError(Exception):
    """One or more problems in rule files; ``errors`` lists each with its file, line and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class RuleSpec:
    kind: str  # "alerting" | "recording"
    name: str
    expr: str
    labels: tuple[tuple[str, str], ...] = ()  # in file order
    annotations: tuple[tuple[str, str], ...] = ()
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    line: int = 0
    language: str = "promql"  # "logql" for simple log and event rules (rules/simple.py)

    def identity(self) -> tuple[Any, ...]:
        """Equal for rules whose state may carry over a reload (as Prometheus' copyState)."""
        return (self.kind, self.name, self.expr, self.labels, self.language)


@dataclass(frozen=True)
class GroupSpec:
    file: str
    name: str
    interval_ms: int  # 0: the default evaluation interval
    limit: int
    rules: tuple[RuleSpec, ...]
    line: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.file, self.name)


class _LineLoader(yaml.SafeLoader):
    """Records the line of every mapping (as ``__line__``) for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    m = loader.construct_mapping(node, deep=True)
    out: dict[str, Any] = {str(k): v for k, v in m.items()}
    out["__line__"] = node.start_mark.line + 1
    lines = {}
    for k, _v in node.value:
        lines[str(loader.construct_object(k))] = k.start_mark.line + 1
    out["__lines__"] = lines
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in ("__line__", "__lines__")}


def parse_rule_text(text: str, file: str, check_expr: ExprChecker | None = None,
                    single_group: bool = False) -> list[GroupSpec]:
    """Parses one rule file's text (with ``single_group``: the text is one group, as the API takes
    it); raises RuleFileError listing every problem."""
    errors: list[str] = []
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        raise RuleFileError([f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}"]) from None
    if single_group:
        if not isinstance(doc, dict):
            raise RuleFileError([f"{file}:1: expected one rule group (a mapping with name and rules)"])
        doc = {"groups": [doc], "__line__": 1, "__lines__": {"groups": 1}}
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise RuleFileError([f"{file}:1: the top level must be a mapping with 'groups'"])
    for k in _clean(doc):
        if k != "groups":
            errors.append(f"{file}:{doc['__lines__'].get(k, 1)}: field {k} not found in type rulefmt.RuleGroups")
    raw_groups = doc.get("groups") or []
    if not isinstance(raw_groups, list):
        raise RuleFileError([*errors, f"{file}:{doc['__lines__'].get('groups', 1)}: groups: expected a list"])
    groups: list[GroupSpec] = []
    seen: set[str] = set()
    for gi, g in enumerate(raw_groups, 1):
        if not isinstance(g, dict):
            errors.append(f"{file}: group {gi}: expected a mapping")
            continue
        gline = g["__line__"]
        lines = g["__lines__"]
        gname = g.get("name")
        where = f'{file}:{gline}: group "{gname}"' if gname else f"{file}:{gline}: group {gi}"
        for k in _clean(g):
            if k not in ("name", "interval", "limit", "rules"):
                errors.append(f"{file}:{lines[k]}: group {gi}: field {k} not found in type rulefmt.RuleGroup")
        if not isinstance(gname, str) or not gname:
            errors.append(f"{where}: field \"name\": Groupname must not be empty")
            continue
        if gname in seen:
            errors.append(f'{where}: field "name": groupname: "{gname}" is repeated in the same file')
        seen.add(gname)
        interval_ms = 0
        if g.get("interval") is not None:
            interval_ms = _duration(g["interval"], f"{file}:{lines['interval']}: group \"{gname}\"", "interval",
                                    errors)
            if interval_ms == 0 and not errors:
                errors.append(f'{file}:{lines["interval"]}: group "{gname}": field "interval": must be positive')
        limit = g.get("limit") or 0
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            errors.append(f'{file}:{lines.get("limit", gline)}: group "{gname}": field "limit": expected a '
                          f"non-negative integer, got {limit!r}")
            limit = 0
        raw_rules = g.get("rules") or []
        if not isinstance(raw_rules, list):
            errors.append(f'{file}:{lines.get("rules", gline)}: group "{gname}": field "rules": expected a list')
            continue
        specs: list[RuleSpec] = []
        for ri, r in enumerate(raw_rules, 1):
            spec = _parse_rule(r, file, gname, ri, check_expr, errors)
            if spec is not None:
                specs.append(spec)
        groups.append(GroupSpec(file=file, name=gname, interval_ms=interval_ms, limit=limit, rules=tuple(specs),
                                line=gline))
    if errors:
        raise RuleFileError(errors)
    return groups


def _duration(v: Any, where: str, fieldname: str, errors: list[str]) -> int:
    try:
        return parse_duration_ms(str(v))
    except ValueError:
        errors.append(f'{where}: field "{fieldname}": not a valid duration string: "{v}"')
        return 0


def _parse_rule(r: Any, file: str, group: str, index: int, check_expr: ExprChecker | None,
                errors: list[str]) -> RuleSpec | None:
    if not isinstance(r, dict):
        errors.append(f'{file}: group "{group}", rule {index}: expected a mapping')
        return None
    lines: dict[str, int] = r["__lines__"]
    line = r["__line__"]
    if "type" in r and r.get("alert") is None and r.get("record") is None:
        return _parse_simple(r, file, group, index, check_expr, errors)
    name = r.get("alert") if r.get("alert") is not None else r.get("record")
    head = f'group "{group}", rule {index}' + (f' ("{name}")' if name else "")
    n_before = len(errors)

    def err(fieldname: str, msg: str) -> None:
        errors.append(f'{file}:{lines.get(fieldname, line)}: {head}: field "{fieldname}": {msg}')

    for k in _clean(r):
        if k not in ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"):
            err(k, f"field {k} not found in type rulefmt.Rule")
    has_alert, has_record = r.get("alert") is not None, r.get("record") is not None
    if has_alert and has_record:
        errors.append(f"{file}:{line}: {head}: only one of 'record' and 'alert' must be set")
        return None
    if not has_alert and not has_record:
        errors.append(f"{file}:{line}: {head}: one of 'record' or 'alert' must be set")
        return None
    kind = "alerting" if has_alert else "recording"
    key = "alert" if has_alert else "record"
    if not isinstance(name, str) or not name:
        err(key, f"'{key}' must be a non-empty string")
        return None
    expr = r.get("expr")
    if expr is None or (isinstance(expr, str) and not expr.strip()):
        errors.append(f"{file}:{line}: {head}: field 'expr' must be set in rule")
    elif not isinstance(expr, str | int | float):
        err("expr", "expected a string")
    else:
        expr = str(expr)
        if check_expr is not None:
            problem = check_expr(expr)
            if problem:
                err("expr", f"could not parse expression: {problem}")
    if kind == "recording":
        if not _METRIC_NAME.match(name):
            err("record", f"invalid recording rule name: {name}")
        for k in ("annotations", "for", "keep_firing_for"):
            if r.get(k) is not None:
                err(k, f"invalid field '{k}' in recording rule")
    labels = _string_map(r.get("labels"), "labels", err)
    annotations = _string_map(r.get("annotations"), "annotations", err)
    for k, v in labels:
        if not _LABEL_NAME.match(k) or k == "__name__":
            err("labels", f"invalid label name: {k}")
        if kind == "alerting":
            _check_template(v, f"__alert_{name}", "labels", err)
    for k, v in annotations:
        if not _LABEL_NAME.match(k):
            err("annotations", f"invalid annotation name: {k}")
        _check_template(v, f"__alert_{name}", "annotations", err)
    for_ms = _duration(r["for"], f"{file}:{lines.get('for', line)}: {head}", "for", errors) if r.get("for") else 0
    kff_ms = (_duration(r["keep_firing_for"], f"{file}:{lines.get('keep_firing_for', line)}: {head}",
                        "keep_firing_for", errors) if r.get("keep_firing_for") else 0)
    if len(errors) > n_before:
        return None
    return RuleSpec(kind=kind, name=name, expr=str(expr), labels=labels, annotations=annotations, for_ms=for_ms,
                    keep_firing_for_ms=kff_ms, line=line)


def _parse_simple(r: dict[str, Any], file: str, group: str, index: int, check_expr: ExprChecker | None,
                  errors: list[str]) -> RuleSpec | None:
    """A GoSight-style simple rule (``type: metric|log|event``), compiled by ``rules/simple.py``."""
    lines: dict[str, int] = r["__lines__"]
    line = r["__line__"]
    name = r.get("name")
    head = f'group "{group}", rule {index}' + (f' ("{name}")' if name else "")
    n_before = len(errors)

    def err(fieldname: str, msg: str) -> None:
        errors.append(f'{file}:{lines.get(fieldname, line)}: {head}: field "{fieldname}": {msg}')

    if not isinstance(name, str) or not name or not _METRIC_NAME.match(name):
        err("name", "a simple rule needs a name (letters, digits, _ and :)")
    compiled = simple.compile_simple(_clean(r), err)
    if compiled is None or len(errors) > n_before:
        return None
    expr, language = compiled
    if language == "promql" and check_expr is not None:
        problem = check_expr(expr)
        if problem:
            err("expr", f"could not parse expression: {problem}")
            return None
    labels = _string_map(r.get("labels"), "labels", err)
    if r.get("level") is not None:
        labels = (*[(k, v) for k, v in labels if k != "severity"], ("severity", str(r["level"])))
    annotations = _string_map(r.get("annotations"), "annotations", err)
    if not any(k == "summary" for k, _ in annotations):
        annotations = (*annotations, ("summary", str(r.get("description") or name)))
    hints = simple.notify_hints(r)
    annotations = (*[(k, v) for k, v in annotations if k not in dict(hints)], *hints)
    for k, v in (*labels, *annotations):
        if not _LABEL_NAME.match(k):
            err("labels", f"invalid label or annotation name: {k}")
        _check_template(v, f"__alert_{name}", "labels", err)
    for_ms = _duration(r["for"], f"{file}:{lines.get('for', line)}: {head}", "for", errors) if r.get("for") else 0
    cooldown_ms = (_duration(r["cooldown"], f"{file}:{lines.get('cooldown', line)}: {head}", "cooldown", errors)
                   if r.get("cooldown") else 0)
    if len(errors) > n_before:
        return None
    return RuleSpec(kind="alerting", name=str(name), expr=expr, labels=labels, annotations=annotations,
                    for_ms=for_ms, keep_firing_for_ms=cooldown_ms, line=line, language=language)


def _string_map(v: Any, fieldname: str, err: Callable[[str, str], None]) -> tuple[tuple[str, str], ...]:
    if v is None:
        return ()
    if not isinstance(v, dict):
        err(fieldname, "expected a mapping of strings")
        return ()
    out: list[tuple[str, str]] = []
    for k, x in _clean(v).items():
        if isinstance(x, dict | list) or x is None:
            err(fieldname, f"{k}: expected a string value")
            continue
        out.append((str(k), _yaml_scalar_text(x)))
    return tuple(out)


def _yaml_scalar_text(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)


def _check_template(src: str, name: str, fieldname: str, err: Callable[[str, str], None]) -> None:
    try:
        template.check(src, name)
    except template.TemplateError as e:
        err(fieldname, str(e))


def load_rule_files(patterns: list[str], check_expr: ExprChecker | None = None,
                    base_dir: str | None = None) -> list[GroupSpec]:
    """Loads every file matching the globs (sorted; relative globs from ``base_dir``). Raises
    RuleFileError listing every problem of every file (nothing is loaded when one is bad). A glob
    that matches nothing is not an error (as Prometheus' ``rule_files``)."""
    files: list[str] = []
    for pat in patterns:
        p = pat if base_dir is None or Path(pat).is_absolute() else str(Path(base_dir) / pat)
        files.extend(sorted(glob.glob(p)))
    errors: list[str] = []
    groups: list[GroupSpec] = []
    for f in dict.fromkeys(files):
        try:
            text = Path(f).read_text()
        except OSError as e:
            errors.append(f"{f}: cannot read rule file: {e.strerror}")
            continue
        try:
            groups.extend(parse_rule_text(text, f, check_expr))
        except RuleFileError as e:
            errors.extend(e.errors)
    if errors:
        raise RuleFileError(errors)
    return groups
