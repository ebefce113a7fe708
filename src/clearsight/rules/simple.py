"""GoSight-style simple rules, compiled into ordinary alerting rules.

A rule in a group's ``rules:`` list that has ``type:`` instead of ``alert:``/``record:`` is a simple
rule::

    - name: HighLoad                  # the alert's name
      type: metric                    # metric | log | event
      match: {__name__: node_load1}   # equality matchers (metric: or expr: <PromQL>)
      expression: {operator: ">", value: 4}
      level: warning                  # -> the severity label
      for: 2m                         # pending before firing (default 0)
      cooldown: 5m                    # stays firing this long after it clears (keep_firing_for)
      description: Load is high       # -> the summary annotation (default: the name)
      labels: {team: ops}             # extra labels / annotations as in Prometheus rules

    - name: PaymentErrors
      type: log
      match: {app: shop}              # the stream selector
      contains: "payment failed"      # line filter(s): a string or a list, all must match
      window: 5m                      # counted over this window (default 5m)
      expression: {operator: ">", value: 10}   # default: > 0

    - name: RootShell
      type: event
      match: {type: falco_alert, level: ERROR}  # keys: type, level, origin
      contains: shell

AegisGuard-style monitors are metric rules with ``monitor:``::

    - {name: ErrorsUp, type: metric, monitor: rate, match: {__name__: errors_total}, window: 5m, by: [job],
       expression: {operator: ">", value: 1}}
    - {name: ErrorRatio, type: metric, monitor: error_ratio, errors: {__name__: http_requests_total, code: "500"},
       total: {__name__: http_requests_total}, by: [job], expression: {operator: ">", value: 0.05}}

They compile to (the expressions are built from escaped parts, so they always parse):

- metric (``monitor: threshold``, the default): ``(<expr or {match}>) <operator> <value>`` in PromQL;
- ``monitor: rate``: ``sum by (<by>) (rate({match}[window])) <operator> <value>``;
- ``monitor: error_ratio``: ``(sum by (<by>) (rate({errors}[window])) / sum by (<by>) (rate({total}[window])))
  <operator> <value>``;
- log: ``sum by (<match keys>) (count_over_time({match} |= "..." [window])) <operator> <value>`` in
  LogQL (counted lines per matched stream set);
- event: the same over the event streams (``event_type``, ``level``, ``origin`` labels).

Log and event rules carry ``language: logql`` and are evaluated by the LogQL query function the
rule manager is given. ``repeat_interval`` (a duration) and ``notify_on_resolve`` (a boolean) become
the alert's ``clearsight_repeat_interval`` / ``clearsight_notify_on_resolve`` annotations
(``model/alert_hints.py``), which the built-in notifier honours for that alert over the route's
``repeat_interval`` and the receiver's ``send_resolved``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from clearsight.config import parse_duration_ms
from clearsight.model.alert_hints import NOTIFY_ON_RESOLVE, REPEAT_INTERVAL

TYPES = ("metric", "log", "event")
OPERATORS = (">", ">=", "<", "<=", "==", "!=")
FIELDS = frozenset({"name", "type", "match", "expr", "contains", "window", "expression", "level", "for",
                    "cooldown", "description", "labels", "annotations", "repeat_interval", "notify_on_resolve",
                    "monitor", "errors", "total", "by"})
MONITORS = ("threshold", "rate", "error_ratio")
EVENT_KEYS = {"type": "event_type", "level": "level", "origin": "origin"}
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DEFAULT_WINDOW = "5m"

Err = Callable[[str, str], None]


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _number(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return repr(float(v)) if isinstance(v, float) else str(v)


def _plain(v: Any) -> Any:
    """A mapping without the parser's line bookkeeping (``__line__``/``__lines__``)."""
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if k not in ("__line__", "__lines__")}
    return v


def notify_hints(r: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The annotations for ``repeat_interval`` / ``notify_on_resolve`` of a checked simple rule."""
    out: list[tuple[str, str]] = []
    if r.get("repeat_interval") is not None:
        out.append((REPEAT_INTERVAL, str(r["repeat_interval"])))
    if r.get("notify_on_resolve") is not None:
        out.append((NOTIFY_ON_RESOLVE, "true" if r["notify_on_resolve"] else "false"))
    return tuple(out)


def _notify_fields(r: dict[str, Any], bad: Err) -> None:
    if r.get("repeat_interval") is not None:
        try:
            if parse_duration_ms(str(r["repeat_interval"])) <= 0:
                raise ValueError("must be positive")
        except ValueError as e:
            bad("repeat_interval", str(e))
    if "notify_on_resolve" in r and not isinstance(r["notify_on_resolve"], bool):
        bad("notify_on_resolve", "expected true or false")


def _window(r: dict[str, Any], bad: Err) -> str | None:
    window = str(r.get("window") or DEFAULT_WINDOW)
    try:
        if parse_duration_ms(window) <= 0:
            raise ValueError("must be positive")
    except ValueError as e:
        bad("window", str(e))
        return None
    return window


def _selector(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{k}={_quote(v)}" for k, v in pairs) + "}"


def _matchers(v: Any, field: str, bad: Err) -> list[tuple[str, str]] | None:
    v = _plain(v)
    if not isinstance(v, dict) or not v:
        bad(field, "expected a mapping of label names to values")
        return None
    out = []
    for k, x in v.items():
        if not _LABEL_NAME.match(str(k)) or isinstance(x, dict | list) or x is None:
            bad(field, f"{k}: expected a label name with a string value")
            return None
        out.append((str(k), str(x)))
    return out


def _metric(r: dict[str, Any], pairs: list[tuple[str, str]], op: str, value: str, contains: Any,
            bad: Err) -> tuple[str, str] | None:
    """A metric rule, or an AegisGuard-style monitor (``monitor: threshold | rate | error_ratio``)."""
    if contains is not None:
        bad("contains", "a metric rule has no lines to search: use match/expr and expression")
        return None
    monitor = str(r.get("monitor") or "threshold")
    if monitor not in MONITORS:
        bad("monitor", f"must be one of {', '.join(MONITORS)}")
        return None
    window = _window(r, bad)
    if window is None:
        return None
    by = r.get("by") or []
    if not isinstance(by, list) or not all(isinstance(x, str) and _LABEL_NAME.match(x) for x in by):
        bad("by", "expected a list of label names")
        return None
    grouping = f" by ({', '.join(by)})" if by else ""
    if monitor == "error_ratio":
        for k in ("match", "expr"):
            if r.get(k) is not None:
                bad(k, "an error_ratio monitor takes errors and total instead")
                return None
        errors, total = _matchers(r.get("errors"), "errors", bad), _matchers(r.get("total"), "total", bad)
        if errors is None or total is None:
            return None
        return (f"(sum{grouping} (rate({_selector(errors)}[{window}])) / sum{grouping} "
                f"(rate({_selector(total)}[{window}]))) {op} {value}"), "promql"
    for k in ("errors", "total"):
        if k in r:
            bad(k, f"only an error_ratio monitor takes {k}")
            return None
    raw = r.get("expr")
    if raw is not None and pairs:
        bad("expr", "give either expr or match, not both")
        return None
    if raw is None and not pairs:
        bad("match", "a metric rule needs match (with __name__) or expr")
        return None
    inner = str(raw) if raw is not None else _selector(pairs)
    if monitor == "rate":
        if raw is not None:
            bad("expr", "a rate monitor takes match (a counter's selector), not expr")
            return None
        return f"sum{grouping} (rate({inner}[{window}])) {op} {value}", "promql"
    if by or "window" in r:
        bad("by" if by else "window", "a threshold rule takes neither by nor window (use expr)")
        return None
    return f"({inner}) {op} {value}", "promql"


def compile_simple(r: dict[str, Any], err: Err) -> tuple[str, str] | None:
    """(expression, language) of a simple rule's mapping, or None after reporting through ``err``."""
    n_errors = [0]

    def bad(field: str, msg: str) -> None:
        n_errors[0] += 1
        err(field, msg)

    for k in r:
        if k not in FIELDS:
            bad(k, f"field {k} not found in a simple rule (allowed: {', '.join(sorted(FIELDS))})")
    _notify_fields(r, bad)
    kind = r.get("type")
    if kind not in TYPES:
        bad("type", f"must be one of {', '.join(TYPES)}")
        return None
    match = _plain(r.get("match") or {})
    if not isinstance(match, dict):
        bad("match", "expected a mapping of label names to values")
        match = {}
    pairs: list[tuple[str, str]] = []
    for k, v in match.items():
        if isinstance(v, dict | list) or v is None:
            bad("match", f"{k}: expected a string value")
            continue
        name = str(k)
        if kind == "event":
            if name not in EVENT_KEYS:
                bad("match", f"{name}: an event rule matches {', '.join(EVENT_KEYS)}")
                continue
            value = str(v).upper() if name == "level" else str(v)
            name = EVENT_KEYS[name]
        else:
            value = str(v)
            if not _LABEL_NAME.match(name):
                bad("match", f"invalid label name: {name}")
                continue
        pairs.append((name, value))
    expression = _plain(r.get("expression"))
    op, value = (">", "0") if kind != "metric" else ("", "")
    if expression is not None:
        if not isinstance(expression, dict) or set(expression) - {"operator", "value"}:
            bad("expression", "expected {operator: <op>, value: <number>}")
        else:
            op = str(expression.get("operator", ""))
            value = _number(expression.get("value")) or ""
            if op not in OPERATORS:
                bad("expression", f"operator must be one of {' '.join(OPERATORS)}")
            if not value:
                bad("expression", "value must be a number")
    elif kind == "metric":
        bad("expression", "a metric rule needs expression: {operator, value}")
    contains = r.get("contains")
    needles = [contains] if isinstance(contains, str) else contains if isinstance(contains, list) else []
    if contains is not None and (not needles or not all(isinstance(x, str) and x for x in needles)):
        bad("contains", "expected a non-empty string or a list of them")
    if n_errors[0]:
        return None
    if kind == "metric":
        return _metric(r, pairs, op, value, contains, bad)
    for k in ("monitor", "errors", "total", "by"):
        if k in r:
            bad(k, f"a {kind} rule has no {k} (monitors are metric rules)")
            return None
    if r.get("expr") is not None:
        bad("expr", f"a {kind} rule is built from match and contains (expr is for metric rules)")
        return None
    window = _window(r, bad)
    if window is None:
        return None
    if kind == "event" and "event_type" not in dict(pairs):
        pairs.insert(0, ("event_type", ".+"))
    if not pairs:
        bad("match", "a log rule needs at least one stream label to select")
        return None
    selector = "{" + ", ".join(f"{k}=~{_quote(v)}" if (k, v) == ("event_type", ".+") else f"{k}={_quote(v)}"
                               for k, v in pairs) + "}"
    filters = "".join(f" |= {_quote(x)}" for x in needles)
    keys = ", ".join(dict.fromkeys(k for k, _ in pairs))
    return f"sum by ({keys}) (count_over_time({selector}{filters} [{window}])) {op} {value}", "logql"
