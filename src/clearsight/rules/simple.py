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

They compile to (the expressions are built from escaped parts, so they always parse):

- metric: ``(<expr or {match}>) <operator> <value>`` in PromQL;
- log: ``sum by (<match keys>) (count_over_time({match} |= "..." [window])) <operator> <value>`` in
  LogQL (counted lines per matched stream set);
- event: the same over the event streams (``event_type``, ``level``, ``origin`` labels).

Log and event rules carry ``language: logql`` and are evaluated by the LogQL query function the
rule manager is given. ``repeat_interval`` and ``notify_on_resolve`` are refused with a pointer to the
notification route (``repeat_interval``) and the receiver (``send_resolved``), where Clearsight
configures them: a rule cannot change them per alert.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from clearsight.config import parse_duration_ms

TYPES = ("metric", "log", "event")
OPERATORS = (">", ">=", "<", "<=", "==", "!=")
FIELDS = frozenset({"name", "type", "match", "expr", "contains", "window", "expression", "level", "for",
                    "cooldown", "description", "labels", "annotations", "repeat_interval", "notify_on_resolve"})
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


def compile_simple(r: dict[str, Any], err: Err) -> tuple[str, str] | None:
    """(expression, language) of a simple rule's mapping, or None after reporting through ``err``."""
    n_errors = [0]

    def bad(field: str, msg: str) -> None:
        n_errors[0] += 1
        err(field, msg)

    for k in r:
        if k not in FIELDS:
            bad(k, f"field {k} not found in a simple rule (allowed: {', '.join(sorted(FIELDS))})")
    for k, where in (("repeat_interval", "the notification route's repeat_interval"),
                     ("notify_on_resolve", "the receiver's send_resolved")):
        if k in r:
            bad(k, f"set per notification route, not per rule: use {where} (alerting.config_file)")
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
        if contains is not None:
            bad("contains", "a metric rule has no lines to search: use match/expr and expression")
            return None
        raw = r.get("expr")
        if raw is not None and pairs:
            bad("expr", "give either expr or match, not both")
            return None
        if raw is None and not pairs:
            bad("match", "a metric rule needs match (with __name__) or expr")
            return None
        inner = str(raw) if raw is not None else "{" + ", ".join(f"{k}={_quote(v)}" for k, v in pairs) + "}"
        return f"({inner}) {op} {value}", "promql"
    if r.get("expr") is not None:
        bad("expr", f"a {kind} rule is built from match and contains (expr is for metric rules)")
        return None
    window = str(r.get("window") or DEFAULT_WINDOW)
    try:
        if parse_duration_ms(window) <= 0:
            raise ValueError("must be positive")
    except ValueError as e:
        bad("window", str(e))
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
