"""The rule manager's figures at ``/metrics``: per group last duration, interval, iterations,
missed iterations, evaluations and failures; alerts by state; whether the last reload worked."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clearsight.rules.alerting import AlertingRule
from clearsight.rules.manager import RuleManager


class RulesCollector(Collector):
    def __init__(self, managers: Callable[[], list[RuleManager]]) -> None:
        self.managers = managers

    def collect(self) -> Iterator[Metric]:
        managers = self.managers()
        groups = [g for m in managers for g in m.groups]
        lbl = ["rule_group"]
        last = GaugeMetricFamily("clearsight_rule_group_last_duration_seconds",
                                 "Duration of the last evaluation of the group.", labels=lbl)
        interval = GaugeMetricFamily("clearsight_rule_group_interval_seconds", "Evaluation interval of the group.",
                                     labels=lbl)
        last_ts = GaugeMetricFamily("clearsight_rule_group_last_evaluation_timestamp_seconds",
                                    "Evaluation timestamp of the group's last evaluation.", labels=lbl)
        rules = GaugeMetricFamily("clearsight_rule_group_rules", "Rules in the group.", labels=lbl)
        iters = CounterMetricFamily("clearsight_rule_group_iterations", "Evaluations of the group.", labels=lbl)
        missed = CounterMetricFamily("clearsight_rule_group_iterations_missed",
                                     "Evaluation slots skipped because the previous evaluation ran late.", labels=lbl)
        evals = CounterMetricFamily("clearsight_rule_evaluations", "Rule evaluations.", labels=lbl)
        fails = CounterMetricFamily("clearsight_rule_evaluation_failures", "Rule evaluations that failed.",
                                    labels=lbl)
        states = {"pending": 0, "firing": 0}
        for g in groups:
            key = [f"{g.file};{g.name}"]
            last.add_metric(key, g.stats.last_duration_s)
            interval.add_metric(key, g.interval_ms / 1000)
            last_ts.add_metric(key, g.stats.last_eval_ms / 1000)
            rules.add_metric(key, len(g.rules))
            iters.add_metric(key, g.stats.iterations)
            missed.add_metric(key, g.stats.missed)
            evals.add_metric(key, g.stats.evaluations)
            fails.add_metric(key, g.stats.failures)
            for r in g.rules:
                if isinstance(r, AlertingRule):
                    for a in r.active_alerts():
                        states[a.state] += 1
        yield from (last, interval, last_ts, rules, iters, missed, evals, fails)
        alerts = GaugeMetricFamily("clearsight_alerts", "Active alerts by state.", labels=["state"])
        for state, n in states.items():
            alerts.add_metric([state], n)
        yield alerts
        yield GaugeMetricFamily("clearsight_rule_config_last_reload_successful",
                                "1 when the last rule reload succeeded.",
                                value=int(all(m.last_reload_ok for m in managers)))
