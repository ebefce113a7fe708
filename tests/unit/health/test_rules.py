"""Health rules: built-in defaults, files replacing them, errors naming file, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.cli.rules import check_expr
from clearsight.health.rules import DEFAULT_RULES, HealthRule, HealthRuleError, load_rules


def test_defaults_parse_and_levels() -> None:
    for r in DEFAULT_RULES:
        assert check_expr(r.expr) is None, r.metric
    assert sorted((r.resource_type, r.metric) for r in load_rules(None)) == [
        ("container", "health_check_failing"), ("container", "memory_usage"), ("container", "restarts_15m"),
        ("host", "cpu_usage"), ("host", "disk_usage"), ("host", "memory_usage"), ("service", "targets_up")]
    up = next(r for r in DEFAULT_RULES if r.metric == "targets_up")
    assert [up.level(v) for v in (100, 99.95, 50, 0)] == ["healthy", "healthy", "warning", "critical"]
    rule = HealthRule("host", "x", "x", 70, 90)
    assert [rule.level(v) for v in (10, 70, 89.9, 90, float("nan"))] == [
        "healthy", "warning", "warning", "critical", "healthy"]
    low = HealthRule("service", "free", "x", 20, 5, direction="below")
    assert [low.level(v) for v in (50, 20, 5)] == ["healthy", "warning", "critical"]


def test_file_replaces_adds_and_disables(tmp_path: Path) -> None:
    f = tmp_path / "health.yml"
    f.write_text("""
health_rules:
  - resource_type: host
    metric: cpu_usage
    expr: cpu_percent
    thresholds: {warning: 70, critical: 90}
    unit: "%"
  - {resource_type: host, metric: disk_usage, enabled: false}
  - resource_type: service
    metric: error_ratio
    expr: sum by (job) (rate(errors_total[5m])) / sum by (job) (rate(requests_total[5m]))
    thresholds: {critical: 0.05}
""")
    rules = {(r.resource_type, r.metric): r for r in load_rules(f, check_expr)}
    assert sorted(k for k in rules if k[0] != "container") == [
        ("host", "cpu_usage"), ("host", "memory_usage"), ("service", "error_ratio"), ("service", "targets_up")]
    assert rules[("host", "cpu_usage")] == HealthRule("host", "cpu_usage", "cpu_percent", 70, 90, unit="%")
    assert rules[("service", "error_ratio")].warning is None


@pytest.mark.parametrize(("text", "message"), [
    ("rules: []", "one key, health_rules"),
    ("health_rules: [{resource_type: pod, metric: x, expr: x, thresholds: {warning: 1}}]",
     "health_rules[0].resource_type"),
    ("health_rules: [{resource_type: host, metric: 'bad name', expr: x, thresholds: {warning: 1}}]",
     "health_rules[0].metric"),
    ("health_rules: [{resource_type: host, metric: m, expr: 'rate(', thresholds: {warning: 1}}]",
     "health_rules[0].expr"),
    ("health_rules: [{resource_type: host, metric: m, expr: x, thresholds: {warn: 1}}]",
     "health_rules[0].thresholds"),
    ("health_rules: [{resource_type: host, metric: m, expr: x, thresholds: {warning: '1'}}]",
     "health_rules[0].thresholds.warning"),
    ("health_rules: [{resource_type: host, metric: m, expr: x, thresholds: {warning: 9, critical: 1}}]",
     "beyond critical"),
    ("health_rules: [{resource_type: host, metric: m, expr: x, thresholds: {warning: 1}, colour: red}]",
     "health_rules[0].colour"),
    ("health_rules: [{resource_type: host, metric: m, expr: x, thresholds: {warning: 1}},"
     " {resource_type: host, metric: m, expr: y, thresholds: {warning: 1}}]", "health_rules[1]: duplicate"),
    ("health_rules: [", "invalid YAML"),
])
def test_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "h.yml"
    f.write_text(text)
    with pytest.raises(HealthRuleError) as e:
        load_rules(f, check_expr)
    assert message in str(e.value) and str(f) in str(e.value)
