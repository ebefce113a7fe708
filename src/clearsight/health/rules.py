"""Health rules: a metric per resource type with warning and critical thresholds (the PulseSight
design). Pure: parsing and the built-in defaults.

A rules file (``health.rules_file``)::

    health_rules:
      - resource_type: host            # host | container | service
        metric: cpu_usage              # the signal's name (also used by correlation)
        expr: 100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[2m])))
        thresholds: {warning: 70, critical: 90}
        direction: above               # above (default): value >= threshold; below: value <= threshold
        unit: "%"                      # shown in reasons and explanations

``expr`` is evaluated once per evaluation for all resources of the type; each output series is
attributed to a resource by its labels (``resources/matching.py``: ``instance``, ``host``,
``container_id``, ``job``...), so the expression must keep such a label (``by (instance)``). One
query per rule instead of one per resource keeps evaluation cost flat as the fleet grows. A rule
of a file replaces the built-in rule of the same ``resource_type`` and ``metric``; ``enabled:
false`` removes it. Errors name the file, the rule index and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clearsight.resources.model import KINDS

_METRIC_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$")
_FIELDS = frozenset({"resource_type", "metric", "expr", "thresholds", "direction", "unit", "enabled"})
_IGNORED_FS = 'fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs|tracefs|autofs|fuse.*"'


class HealthRuleError(ValueError):
    pass


@dataclass(frozen=True)
class HealthRule:
    resource_type: str
    metric: str
    expr: str
    warning: float | None
    critical: float | None
    direction: str = "above"
    unit: str = ""

    def level(self, value: float) -> str:
        """``critical``, ``warning`` or ``healthy`` for a value (NaN is healthy: no verdict)."""
        def crosses(t: float | None) -> bool:
            if t is None or value != value:
                return False
            return value >= t if self.direction == "above" else value <= t
        if crosses(self.critical):
            return "critical"
        if crosses(self.warning):
            return "warning"
        return "healthy"

    def threshold(self, level: str) -> float | None:
        return self.critical if level == "critical" else self.warning


DEFAULT_RULES: tuple[HealthRule, ...] = (
    HealthRule("host", "cpu_usage",
               '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[2m])))', 80, 95, unit="%"),
    HealthRule("host", "memory_usage",
               "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)", 85, 95, unit="%"),
    HealthRule("host", "disk_usage",
               f"100 * max by (instance) (1 - node_filesystem_avail_bytes{{{_IGNORED_FS}}} "
               f"/ node_filesystem_size_bytes{{{_IGNORED_FS}}})", 80, 90, unit="%"),
    # containers (the agent's container collector: cAdvisor names plus clearsight_container_*)
    HealthRule("container", "memory_usage",
               "100 * container_memory_usage_bytes / (container_spec_memory_limit_bytes > 0)", 85, 95, unit="%"),
    HealthRule("container", "restarts_15m", "increase(clearsight_container_restarts_total[15m])", 1, 5),
    HealthRule("container", "health_check_failing", 'max by (id) (clearsight_container_health{status="unhealthy"})',
               None, 1),
    # scraped services: some targets down is a warning, all of them a critical
    HealthRule("service", "targets_up", "100 * avg by (job) (up)", 99.9, 0, direction="below", unit="%"),
)


def _threshold(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise HealthRuleError(f"{where}: must be a number")
    return float(v)


def parse_rule(d: Any, where: str, check_expr: Callable[[str], str | None] | None = None) -> HealthRule | None:
    """One rule (None when ``enabled: false``); raises ``HealthRuleError`` naming the field."""
    if not isinstance(d, dict):
        raise HealthRuleError(f"{where}: a rule must be a mapping")
    for k in d:
        if k not in _FIELDS:
            raise HealthRuleError(f"{where}.{k}: unknown field (known: {', '.join(sorted(_FIELDS))})")
    rtype = d.get("resource_type")
    if rtype not in KINDS:
        raise HealthRuleError(f"{where}.resource_type: must be one of {', '.join(KINDS)}, got {rtype!r}")
    metric = d.get("metric")
    if not isinstance(metric, str) or not _METRIC_RE.fullmatch(metric):
        raise HealthRuleError(f"{where}.metric: must be a name like cpu_usage, got {metric!r}")
    enabled = d.get("enabled", True)
    if not isinstance(enabled, bool):
        raise HealthRuleError(f"{where}.enabled: must be true or false")
    if not enabled:
        return None
    expr = d.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        raise HealthRuleError(f"{where}.expr: is required (a PromQL expression)")
    if check_expr is not None:
        err = check_expr(expr)
        if err:
            raise HealthRuleError(f"{where}.expr: {err}")
    th = d.get("thresholds")
    if not isinstance(th, dict) or not th or not set(th) <= {"warning", "critical"}:
        raise HealthRuleError(f"{where}.thresholds: must be a mapping with warning and/or critical")
    warning = _threshold(th.get("warning"), f"{where}.thresholds.warning")
    critical = _threshold(th.get("critical"), f"{where}.thresholds.critical")
    direction = d.get("direction", "above")
    if direction not in ("above", "below"):
        raise HealthRuleError(f"{where}.direction: must be above or below, got {direction!r}")
    if warning is not None and critical is not None and (
            (direction == "above" and warning > critical) or (direction == "below" and warning < critical)):
        raise HealthRuleError(f"{where}.thresholds: warning {warning:g} is beyond critical {critical:g} "
                              f"for direction {direction}")
    unit = d.get("unit", "")
    if not isinstance(unit, str) or len(unit) > 16:
        raise HealthRuleError(f"{where}.unit: must be a string of at most 16 characters")
    return HealthRule(rtype, metric, expr, warning, critical, direction, unit)


def load_rules(path: Path | None, check_expr: Callable[[str], str | None] | None = None) -> list[HealthRule]:
    """The built-in rules, with those of ``path`` replacing or adding (raises HealthRuleError)."""
    rules = {(r.resource_type, r.metric): r for r in DEFAULT_RULES}
    if path is None:
        return list(rules.values())
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise HealthRuleError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise HealthRuleError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("health_rules"), list) or set(doc) != {"health_rules"}:
        raise HealthRuleError(f"{path}: expected a mapping with one key, health_rules: a list of rules")
    seen: set[tuple[str, str]] = set()
    for i, d in enumerate(doc["health_rules"]):
        where = f"{path}: health_rules[{i}]"
        rule = parse_rule(d, where, check_expr)
        key = (d["resource_type"], d["metric"])
        if key in seen:
            raise HealthRuleError(f"{where}: duplicate rule for {key[0]} {key[1]}")
        seen.add(key)
        if rule is None:
            rules.pop(key, None)
        else:
            rules[key] = rule
    return list(rules.values())
