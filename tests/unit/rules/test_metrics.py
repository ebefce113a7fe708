"""The rule manager's figures at /metrics: evaluation duration, missed iterations, failures,
evaluations, alerts by state and the reload flag, as exposed in the text format."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from clearsight.rules.manager import RuleManager
from clearsight.rules.metrics import RulesCollector
from clearsight.rules.types import Sample

from .test_manager import RULES, Env, run_with_an_overrun

BROKEN = RULES + "      - record: r:broken\n        expr: broken\n"


class FailingEnv(Env):
    def query(self, expr: str, t: int) -> list[Sample]:
        if expr == "broken":
            raise RuntimeError("no such thing")
        return super().query(expr, t)


def _exposed(m: RuleManager) -> dict[str, float]:
    reg = CollectorRegistry()
    reg.register(RulesCollector(lambda: [m]))
    out: dict[str, float] = {}
    for line in generate_latest(reg).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_durations_misses_and_failures_are_exposed(tmp_path: Path) -> None:
    f = tmp_path / "r.yml"
    f.write_text(BROKEN)
    env = FailingEnv()
    m, _first = run_with_an_overrun(env, f, iterations=4)
    g = m.groups[0]
    got = _exposed(m)
    key = f'{{rule_group="{f};g"}}'
    assert got["clearsight_rule_group_iterations_missed_total" + key] == 1
    iterations = got["clearsight_rule_group_iterations_total" + key]
    assert iterations == g.stats.iterations >= 4
    assert got["clearsight_rule_evaluations_total" + key] == 3 * iterations
    assert got["clearsight_rule_evaluation_failures_total" + key] == iterations  # r:broken, every time
    assert got["clearsight_rule_group_last_duration_seconds" + key] == g.stats.last_duration_s > 0
    assert got["clearsight_rule_group_interval_seconds" + key] == 10
    assert got["clearsight_rule_group_rules" + key] == 3
    assert got["clearsight_rule_group_last_evaluation_timestamp_seconds" + key] == g.stats.last_eval_ms / 1000
    assert got['clearsight_alerts{state="firing"}'] == 1 and got['clearsight_alerts{state="pending"}'] == 0
    assert got["clearsight_rule_config_last_reload_successful"] == 1
    (broken,) = [r for r in g.rules if r.name == "r:broken"]
    assert (broken.health, broken.last_error) == ("err", "no such thing")


def test_a_failed_reload_shows_in_the_reload_flag(tmp_path: Path) -> None:
    f = tmp_path / "r.yml"
    f.write_text(RULES)
    m = Env().manager(f)
    m.load()
    f.write_text(RULES.replace("interval: 10s", "interval: ten"))
    ok, _err = asyncio.run(m.reload())
    assert not ok and _exposed(m)["clearsight_rule_config_last_reload_successful"] == 0
    assert len(m.groups) == 1  # the previous rules keep running


