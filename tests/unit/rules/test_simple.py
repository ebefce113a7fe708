"""GoSight-style simple rules compile into alerting rules (rules/simple.py via rules/model.py)."""

from __future__ import annotations

import pytest

from clearsight.query.logql.parser import parse_expr as parse_logql
from clearsight.query.promql.parser import parse_with_positions
from clearsight.rules.model import RuleFileError, parse_rule_text


def one(rule_yaml: str) -> tuple[str, str, dict[str, str], dict[str, str], int, int]:
    (group,) = parse_rule_text("groups:\n- name: g\n  rules:\n" + rule_yaml, "r.yml")
    (spec,) = group.rules
    assert spec.kind == "alerting"
    return spec.expr, spec.language, dict(spec.labels), dict(spec.annotations), spec.for_ms, spec.keep_firing_for_ms


def test_metric_rule_from_match_and_expression() -> None:
    expr, lang, labels, ann, for_ms, kff = one(
        "  - {name: HighLoad, type: metric, match: {__name__: node_load1, instance: 'web \"1\"'},\n"
        "     expression: {operator: '>=', value: 4.5}, level: warning, for: 2m, cooldown: 5m,\n"
        "     description: Load is high, labels: {team: ops}}\n")
    assert expr == '({__name__="node_load1", instance="web \\"1\\""}) >= 4.5' and lang == "promql"
    parse_with_positions(expr)
    assert labels == {"team": "ops", "severity": "warning"} and ann == {"summary": "Load is high"}
    assert (for_ms, kff) == (120_000, 300_000)


def test_metric_rule_from_promql() -> None:
    expr, lang, *_ = one("  - {name: Ratio, type: metric, expr: 'rate(a[5m]) / rate(b[5m])',\n"
                         "     expression: {operator: '>', value: 0}}\n")
    assert expr == "(rate(a[5m]) / rate(b[5m])) > 0" and lang == "promql"


def test_repeat_interval_and_notify_on_resolve_become_the_alerts_annotations() -> None:
    # The built-in notifier honours them per alert (tests/unit/notify/test_scenarios.py).
    *_, ann, _for, _kff = one("  - {name: A, type: log, match: {app: x}, repeat_interval: 30m, notify_on_resolve: false}\n")
    assert ann == {"summary": "A", "clearsight_repeat_interval": "30m", "clearsight_notify_on_resolve": "false"}
    *_, ann, _for, _kff = one("  - {name: A, type: log, match: {app: x}, notify_on_resolve: true,\n"
                              "     annotations: {clearsight_notify_on_resolve: 'false'}}\n")
    assert ann["clearsight_notify_on_resolve"] == "true"  # the rule's field wins over a hand-written annotation


def test_log_rule_counts_matching_lines() -> None:
    expr, lang, labels, ann, *_ = one(
        "  - {name: PaymentErrors, type: log, match: {app: shop}, contains: [payment, failed], window: 10m,\n"
        "     expression: {operator: '>', value: 10}, level: critical}\n")
    assert lang == "logql"
    assert expr == 'sum by (app) (count_over_time({app="shop"} |= "payment" |= "failed" [10m])) > 10'
    parse_logql(expr)
    assert labels == {"severity": "critical"} and ann == {"summary": "PaymentErrors"}


def test_event_rule_defaults_to_any_event_and_more_than_none() -> None:
    expr, lang, *_ = one("  - {name: RootShell, type: event, match: {type: falco_alert, level: error}, contains: shell}\n")
    assert lang == "logql"
    assert expr == ('sum by (event_type, level) (count_over_time({event_type="falco_alert", level="ERROR"} '
                    '|= "shell" [5m])) > 0')
    parse_logql(expr)
    expr, *_ = one("  - {name: AnyChange, type: event, match: {origin: ci}}\n")
    assert expr.startswith('sum by (event_type, origin) (count_over_time({event_type=~".+", origin="ci"} [5m]))')
    parse_logql(expr)


@pytest.mark.parametrize(("rule", "field", "message"), [
    ("{name: A, type: trace}", "type", "must be one of metric, log, event"),
    ("{name: A, type: metric, match: {__name__: x}}", "expression", "needs expression"),
    ("{name: A, type: metric, match: {__name__: x}, expression: {operator: '=>', value: 1}}", "expression",
     "operator must be one of"),
    ("{name: A, type: metric, match: {__name__: x}, expression: {operator: '>', value: high}}", "expression",
     "value must be a number"),
    ("{name: A, type: log, match: {app: x}, repeat_interval: often}", "repeat_interval", "invalid duration"),
    ("{name: A, type: log, match: {app: x}, repeat_interval: 0s}", "repeat_interval", "must be positive"),
    ("{name: A, type: log, match: {app: x}, notify_on_resolve: 'yes'}", "notify_on_resolve", "expected true or false"),
    ("{name: A, type: event, match: {host: x}}", "match", "an event rule matches type, level, origin"),
    ("{name: A, type: log, contains: x}", "match", "at least one stream label"),
    ("{name: A, type: log, match: {app: x}, window: soon}", "window", "invalid duration"),
    ("{name: A, type: log, match: {app: x}, colour: red}", "colour", "not found in a simple rule"),
    ("{type: log, match: {app: x}}", "name", "needs a name"),
    ("{name: A, type: metric, expr: 'up', match: {__name__: up}, expression: {operator: '>', value: 0}}", "expr",
     "either expr or match"),
])
def test_bad_simple_rules_name_the_field(rule: str, field: str, message: str) -> None:
    with pytest.raises(RuleFileError) as ei:
        parse_rule_text(f"groups:\n- name: g\n  rules:\n  - {rule}\n", "r.yml")
    (err,) = ei.value.errors
    assert err.startswith('r.yml:4: group "g", rule 1') and f'field "{field}"' in err and message in err, err


def test_promql_of_a_metric_rule_is_checked() -> None:
    def check(expr: str) -> str | None:
        return "bad" if "(" in expr and "rate(" in expr and "[" not in expr else None

    with pytest.raises(RuleFileError, match='field "expr": could not parse expression: bad'):
        parse_rule_text("groups:\n- name: g\n  rules:\n  - {name: A, type: metric, expr: 'rate(x)',\n"
                        "     expression: {operator: '>', value: 1}}\n", "r.yml", check_expr=check)


def test_rate_and_error_ratio_monitors() -> None:
    expr, lang, *_ = one("  - {name: ErrorsUp, type: metric, monitor: rate, match: {__name__: errors_total},\n"
                         "     window: 10m, by: [job], expression: {operator: '>', value: 1}}\n")
    assert expr == 'sum by (job) (rate({__name__="errors_total"}[10m])) > 1' and lang == "promql"
    parse_with_positions(expr)
    expr, *_ = one("  - {name: ErrorRatio, type: metric, monitor: error_ratio,\n"
                   "     errors: {__name__: http_requests_total, code: '500'}, total: {__name__: http_requests_total},\n"
                   "     expression: {operator: '>', value: 0.05}}\n")
    assert expr == ('(sum (rate({__name__="http_requests_total", code="500"}[5m])) / '
                    'sum (rate({__name__="http_requests_total"}[5m]))) > 0.05')
    parse_with_positions(expr)


@pytest.mark.parametrize(("rule", "field", "message"), [
    ("{name: A, type: metric, monitor: spike, match: {__name__: x}, expression: {operator: '>', value: 1}}",
     "monitor", "must be one of threshold, rate, error_ratio"),
    ("{name: A, type: metric, monitor: error_ratio, errors: {__name__: e}, expression: {operator: '>', value: 1}}",
     "total", "expected a mapping"),
    ("{name: A, type: metric, monitor: rate, expr: 'x', expression: {operator: '>', value: 1}}", "expr",
     "takes match"),
    ("{name: A, type: metric, match: {__name__: x}, by: [job], expression: {operator: '>', value: 1}}", "by",
     "neither by nor window"),
    ("{name: A, type: log, match: {app: x}, monitor: rate}", "monitor", "monitors are metric rules"),
])
def test_bad_monitors_name_the_field(rule: str, field: str, message: str) -> None:
    with pytest.raises(RuleFileError) as ei:
        parse_rule_text(f"groups:\n- name: g\n  rules:\n  - {rule}\n", "r.yml")
    (err,) = ei.value.errors
    assert f'field "{field}"' in err and message in err, err
