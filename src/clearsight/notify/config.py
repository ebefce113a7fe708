"""The notification config: an Alertmanager config file (route tree, receivers, inhibit rules,
time intervals), parsed with errors that name the file, the line and the field.

Besides Alertmanager's receivers it accepts ``script_configs`` (a runbook command) and
``alertmanager_configs`` (forward to another Alertmanager). ``templates`` and receiver types
Clearsight does not implement are rejected by name rather than ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clearsight.config import parse_duration_ms
from clearsight.model.matchers import Matcher, MatchType, RegexError, matches_all
from clearsight.notify.matchers import MatcherError, format_matchers, parse_matchers
from clearsight.notify.receivers import PARSERS
from clearsight.notify.receivers.base import GlobalDefaults, Integration, ReceiverConfigError
from clearsight.notify.timeinterval import TimeInterval, TimeIntervalError, parse_time_interval

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class NotifyConfigError(ValueError):
    """``where`` is ``file:line: field.path``."""


@dataclass
class Route:
    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    continue_: bool = False
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: list[Route] = field(default_factory=list)
    key: str = "{}"

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert goes to: Alertmanager's depth-first walk with ``continue``."""
        if not matches_all(self.matchers, tuple(sorted(labels.items()))):
            return []
        out: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            out.extend(hits)
            if hits and not child.continue_:
                break
        return out or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by_all:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}

    def walk(self) -> list[Route]:
        out = [self]
        for r in self.routes:
            out.extend(r.walk())
        return out


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True)
class Receiver:
    name: str
    integrations: tuple[Integration, ...]


@dataclass
class NotifyConfig:
    route: Route
    receivers: dict[str, Receiver]
    inhibit_rules: list[InhibitRule] = field(default_factory=list)
    time_intervals: dict[str, list[TimeInterval]] = field(default_factory=dict)
    globals: GlobalDefaults = field(default_factory=GlobalDefaults)
    original: str = ""
    source: str = "<default>"


def default_config() -> NotifyConfig:
    """No config file: every alert goes to a receiver without integrations (kept, visible, unsent)."""
    return NotifyConfig(route=Route(receiver="null"), receivers={"null": Receiver("null", ())},
                        original="route:\n  receiver: 'null'\nreceivers:\n- name: 'null'\n")


class _Err(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = str(k.value)
            sub = f"{path}.{key}" if path else key
            out.setdefault(sub, k.start_mark.line + 1)
            _lines(v, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, f"{path}[{i}]", out)


def _line_of(lines: dict[str, int], path: str) -> int | None:
    p = path
    while p:
        if p in lines:
            return lines[p]
        cut = max(p.rfind("."), p.rfind("["))
        if cut <= 0:
            break
        p = p[:cut]
    return lines.get(p)


def _mapping(obj: Any, path: str, known: set[str]) -> Mapping[str, Any]:
    if obj is None:
        obj = {}
    if not isinstance(obj, Mapping):
        raise _Err(path, "expected a mapping")
    for k in obj:
        if k not in known:
            raise _Err(f"{path}.{k}" if path else str(k), f"unknown field (known: {', '.join(sorted(known))})")
    return obj


def _duration(obj: Mapping[str, Any], key: str, path: str, default: float) -> float:
    if obj.get(key) is None:
        return default
    try:
        v = parse_duration_ms(str(obj[key])) / 1000
    except ValueError as e:
        raise _Err(f"{path}.{key}", str(e)) from None
    return v


def _str_list(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    v = obj.get(key)
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _Err(f"{path}.{key}", "expected a list of strings")
    return tuple(v)


def _matchers(obj: Mapping[str, Any], path: str, new: str, eq: str, re_: str) -> tuple[Matcher, ...]:
    out: list[Matcher] = []
    for i, text in enumerate(obj.get(new) or []):
        if not isinstance(text, str):
            raise _Err(f"{path}.{new}[{i}]", "expected a matcher string such as severity=\"critical\"")
        try:
            out.extend(parse_matchers(text))
        except MatcherError as e:
            raise _Err(f"{path}.{new}[{i}]", str(e)) from None
    for key, typ in ((eq, MatchType.EQ), (re_, MatchType.RE)):
        legacy = obj.get(key) or {}
        if not isinstance(legacy, Mapping):
            raise _Err(f"{path}.{key}", "expected a mapping of label name to value")
        for name, value in legacy.items():
            if not _LABEL.match(str(name)):
                raise _Err(f"{path}.{key}.{name}", "invalid label name")
            try:
                out.append(Matcher.of(typ, str(name), str(value)))
            except RegexError as e:
                raise _Err(f"{path}.{key}.{name}", f"invalid regular expression: {e}") from None
    return tuple(out)


_ROUTE_KEYS = {"receiver", "group_by", "continue", "matchers", "match", "match_re", "group_wait",
               "group_interval", "repeat_interval", "mute_time_intervals", "active_time_intervals", "routes"}


def _route(obj: Any, path: str, parent: Route | None, index: int) -> Route:
    o = _mapping(obj, path, _ROUTE_KEYS)
    receiver = o.get("receiver") or (parent.receiver if parent else "")
    if not receiver:
        raise _Err(f"{path}.receiver", "the root route needs a receiver")
    if not isinstance(receiver, str):
        raise _Err(f"{path}.receiver", "expected a receiver name")
    matchers = _matchers(o, path, "matchers", "match", "match_re")
    if parent is None and matchers:
        raise _Err(f"{path}.matchers", "the root route must not have matchers")
    if parent is None and o.get("continue"):
        raise _Err(f"{path}.continue", "the root route cannot have continue")
    if "group_by" in o:
        group_by = _str_list(o, "group_by", path)
        group_all = "..." in group_by
        if group_all and len(group_by) > 1:
            raise _Err(f"{path}.group_by", "'...' must be the only element (it groups by all labels)")
        for i, name in enumerate(group_by):
            if name != "..." and not _LABEL.match(name):
                raise _Err(f"{path}.group_by[{i}]", f"invalid label name {name!r}")
        group_by = () if group_all else tuple(dict.fromkeys(group_by))
    else:
        group_by, group_all = (parent.group_by, parent.group_by_all) if parent else ((), False)
    cont = o.get("continue", False)
    if not isinstance(cont, bool):
        raise _Err(f"{path}.continue", "expected true or false")
    key = "{}" if parent is None else f"{parent.key}/{format_matchers(list(matchers))}/{index}"
    route = Route(
        receiver=receiver, matchers=matchers, group_by=group_by, group_by_all=group_all, continue_=cont,
        group_wait=_duration(o, "group_wait", path, parent.group_wait if parent else 30.0),
        group_interval=_duration(o, "group_interval", path, parent.group_interval if parent else 300.0),
        repeat_interval=_duration(o, "repeat_interval", path, parent.repeat_interval if parent else 14400.0),
        mute_time_intervals=_str_list(o, "mute_time_intervals", path),
        active_time_intervals=_str_list(o, "active_time_intervals", path),
        key=key)
    if route.group_interval <= 0:
        raise _Err(f"{path}.group_interval", "must be greater than 0")
    if route.repeat_interval <= 0:
        raise _Err(f"{path}.repeat_interval", "must be greater than 0")
    routes = o.get("routes") or []
    if not isinstance(routes, list):
        raise _Err(f"{path}.routes", "expected a list of routes")
    route.routes = [_route(r, f"{path}.routes[{i}]", route, i) for i, r in enumerate(routes)]
    return route


def _globals(obj: Any) -> GlobalDefaults:
    known = {"resolve_timeout", "smtp_from", "smtp_smarthost", "smtp_hello", "smtp_auth_username",
             "smtp_auth_password", "smtp_require_tls", "slack_api_url", "pagerduty_url", "http_timeout"}
    o = _mapping(obj, "global", known)
    g = GlobalDefaults()
    for key in known:
        if key not in o:
            continue
        if key in ("resolve_timeout", "http_timeout"):
            setattr(g, key, _duration(o, key, "global", 0))
        elif key == "smtp_require_tls":
            if not isinstance(o[key], bool):
                raise _Err(f"global.{key}", "expected true or false")
            g.smtp_require_tls = o[key]
        else:
            if not isinstance(o[key], str):
                raise _Err(f"global.{key}", "expected a string")
            setattr(g, key, o[key])
    if g.resolve_timeout <= 0:
        raise _Err("global.resolve_timeout", "must be greater than 0")
    return g


def _receiver(obj: Any, path: str, g: GlobalDefaults) -> Receiver:
    known = {"name", *PARSERS}
    if isinstance(obj, Mapping):
        for k in obj:
            if k not in known and k.endswith("_configs"):
                raise _Err(f"{path}.{k}", f"receiver type not supported (supported: {', '.join(sorted(PARSERS))})")
    o = _mapping(obj, path, known)
    name = o.get("name")
    if not isinstance(name, str) or not name:
        raise _Err(f"{path}.name", "required")
    integrations: list[Integration] = []
    for key, parse in PARSERS.items():
        items = o.get(key) or []
        if not isinstance(items, list):
            raise _Err(f"{path}.{key}", "expected a list")
        for i, item in enumerate(items):
            try:
                integrations.append(parse(item, f"{path}.{key}[{i}]", g))
            except ReceiverConfigError as e:
                msg = str(e)
                where, _, text = msg.partition(": ")
                raise _Err(where, text) from None
    return Receiver(name, tuple(integrations))


def _inhibit(obj: Any, path: str) -> InhibitRule:
    o = _mapping(obj, path, {"source_matchers", "target_matchers", "source_match", "source_match_re",
                             "target_match", "target_match_re", "equal"})
    source = _matchers(o, path, "source_matchers", "source_match", "source_match_re")
    target = _matchers(o, path, "target_matchers", "target_match", "target_match_re")
    if not source:
        raise _Err(f"{path}.source_matchers", "required (an empty source would inhibit everything)")
    if not target:
        raise _Err(f"{path}.target_matchers", "required")
    equal = _str_list(o, "equal", path)
    for i, name in enumerate(equal):
        if not _LABEL.match(name):
            raise _Err(f"{path}.equal[{i}]", f"invalid label name {name!r}")
    return InhibitRule(source, target, equal)


def parse_config(text: str, source: str = "<config>") -> NotifyConfig:
    """Parses an Alertmanager-format config; raises ``NotifyConfigError`` naming file, line and field."""
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise NotifyConfigError(f"{source}: invalid YAML: {e}") from None
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "", lines)
    try:
        return _parse(doc, text, source)
    except _Err as e:
        line = _line_of(lines, e.path)
        at = f"{source}:{line}" if line else source
        raise NotifyConfigError(f"{at}: {e.path}: {e.message}") from None


def _parse(doc: Any, text: str, source: str) -> NotifyConfig:
    top = _mapping(doc, "", {"global", "route", "receivers", "inhibit_rules", "time_intervals",
                             "mute_time_intervals", "templates"})
    if top.get("templates"):
        raise _Err("templates", "Go templates are not supported; receivers send a built-in text")
    g = _globals(top.get("global"))
    intervals: dict[str, list[TimeInterval]] = {}
    for key in ("time_intervals", "mute_time_intervals"):
        items = top.get(key) or []
        if not isinstance(items, list):
            raise _Err(key, "expected a list")
        for i, item in enumerate(items):
            path = f"{key}[{i}]"
            o = _mapping(item, path, {"name", "time_intervals"})
            name = o.get("name")
            if not isinstance(name, str) or not name:
                raise _Err(f"{path}.name", "required")
            if name in intervals:
                raise _Err(f"{path}.name", f"time interval {name!r} is defined twice")
            specs = o.get("time_intervals") or []
            if not isinstance(specs, list):
                raise _Err(f"{path}.time_intervals", "expected a list")
            parsed: list[TimeInterval] = []
            for j, spec in enumerate(specs):
                try:
                    parsed.append(parse_time_interval(spec, f"{path}.time_intervals[{j}]"))
                except TimeIntervalError as e:
                    where, _, msg = str(e).partition(": ")
                    raise _Err(where, msg) from None
            intervals[name] = parsed
    receivers: dict[str, Receiver] = {}
    items = top.get("receivers") or []
    if not isinstance(items, list):
        raise _Err("receivers", "expected a list")
    for i, item in enumerate(items):
        r = _receiver(item, f"receivers[{i}]", g)
        if r.name in receivers:
            raise _Err(f"receivers[{i}].name", f"receiver {r.name!r} is defined twice")
        receivers[r.name] = r
    if "route" not in top:
        raise _Err("route", "required (the root of the routing tree)")
    route = _route(top["route"], "route", None, 0)
    _check_refs(route, "route", receivers, intervals)
    rules = top.get("inhibit_rules") or []
    if not isinstance(rules, list):
        raise _Err("inhibit_rules", "expected a list")
    inhibit = [_inhibit(r, f"inhibit_rules[{i}]") for i, r in enumerate(rules)]
    return NotifyConfig(route=route, receivers=receivers, inhibit_rules=inhibit, time_intervals=intervals,
                        globals=g, original=text, source=source)


def _check_refs(route: Route, path: str, receivers: Mapping[str, Receiver],
                intervals: Mapping[str, Sequence[TimeInterval]]) -> None:
    if route.receiver not in receivers:
        raise _Err(f"{path}.receiver", f"undefined receiver {route.receiver!r}")
    for key in ("mute_time_intervals", "active_time_intervals"):
        for i, name in enumerate(getattr(route, key)):
            if name not in intervals:
                raise _Err(f"{path}.{key}[{i}]", f"undefined time interval {name!r}")
    for i, child in enumerate(route.routes):
        _check_refs(child, f"{path}.routes[{i}]", receivers, intervals)


def load_config_file(path: str | Path) -> NotifyConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise NotifyConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    return parse_config(text, str(p))
