"""The manager: aligned evaluation slots and missed iterations (virtual clock), reloads that keep
state and write stale markers for removed rules, a bad reload that keeps the previous rules, and
alert state persisted across a restart."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from clearsight.model.labels import Labels
from clearsight.model.samples import is_stale_nan
from clearsight.rules.alerting import FIRING, AlertingRule
from clearsight.rules.manager import OUTAGE_TOLERANCE_MS, RuleManager
from clearsight.rules.types import Sample

RULES = """
groups:
  - name: g
    interval: 10s
    rules:
      - record: r:up
        expr: up
      - alert: Down
        expr: down
"""
T0 = 1_700_000_000.0


class Env:
    def __init__(self) -> None:
        self.now = T0
        self.lock = threading.Lock()
        self.writes: list[tuple[Labels, int, float]] = []
        self.queries: list[tuple[str, int]] = []
        self.notified: list[dict[str, Any]] = []
        self.slow_at: set[int] = set()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)

    def query(self, expr: str, t: int) -> list[Sample]:
        self.queries.append((expr, t))
        if t in self.slow_at and expr == "up":
            self.now += 25  # this evaluation overruns two and a half intervals
        return [Sample((("__name__", expr), ("i", "a")), 0.0)]

    def write(self, samples: Any, sync: bool) -> None:
        self.writes.extend(samples)

    def manager(self, path: Path, state_dir: Path | None = None) -> RuleManager:
        return RuleManager([str(path)], query=self.query, write=self.write, notify=self.notified.extend,
                           state_dir=state_dir, clock=self.clock, sleep=self.sleep)


def _firing(m: RuleManager) -> list[Any]:
    return [a for g in m.groups for r in g.rules if isinstance(r, AlertingRule) for a in r.active_alerts()
            if a.state == FIRING]


def run_with_an_overrun(env: Env, f: Path, iterations: int = 5) -> tuple[RuleManager, int]:
    """Runs the manager of ``f`` on ``env``'s clock until ``iterations`` evaluations of its first
    group, the second of which overruns two and a half intervals; returns it and the first slot."""
    m = env.manager(f)
    m.load()
    g = m.groups[0]
    first = g.eval_timestamp(int(T0 * 1000)) + 10_000
    env.slow_at = {first + 10_000}

    async def run() -> None:
        await m.start()
        while g.stats.iterations < iterations:
            await asyncio.sleep(0.01)
        await m.stop()

    asyncio.run(run())
    return m, first


def test_slots_are_aligned_and_overruns_count_as_missed(tmp_path: Path) -> None:
    f = tmp_path / "r.yml"
    f.write_text(RULES)
    env = Env()
    m, first = run_with_an_overrun(env, f)
    g = m.groups[0]
    times = sorted({t for e, t in env.queries if e == "up"})
    assert times[:4] == [first, first + 10_000, first + 30_000, first + 40_000]  # slot first+20s skipped
    assert all((t - g.hash_offset_ms()) % 10_000 == 0 for t in times)
    assert g.stats.missed == 1
    assert env.notified and env.notified[0]["labels"]["alertname"] == "Down"


def test_reload_keeps_state_and_marks_removed_rules_stale(tmp_path: Path) -> None:
    f = tmp_path / "r.yml"
    f.write_text(RULES)
    env = Env()
    m = env.manager(f)
    m.load()
    m.eval_group(m.groups[0], 10_000)
    active_before = _firing(m)
    f.write_text(RULES.replace("      - record: r:up\n        expr: up\n", ""))
    env.writes.clear()
    env.now = 20.0
    ok, err = asyncio.run(m.reload())
    assert (ok, err) == (True, "")
    assert [(dict(lb)["__name__"], t) for lb, t, v in env.writes if is_stale_nan(v)] == [("r:up", 20_000)]
    assert _firing(m) == active_before  # the alert's state carried over

    f.write_text("groups: [")
    ok, err = asyncio.run(m.reload())
    assert not ok and "invalid YAML" in err and not m.last_reload_ok
    assert [r.name for r in m.groups[0].rules] == ["Down"]  # the previous rules keep running

    f.write_text("groups: []\n")
    env.writes.clear()
    assert asyncio.run(m.reload()) == (True, "")
    assert m.groups == [] and sorted(dict(lb)["__name__"] for lb, _t, v in env.writes if is_stale_nan(v)) == [
        "ALERTS", "ALERTS_FOR_STATE"]


def test_alert_state_survives_a_restart_within_the_outage_tolerance(tmp_path: Path) -> None:
    f = tmp_path / "r.yml"
    f.write_text(RULES)
    state = tmp_path / "state"
    env = Env()
    m = env.manager(f, state)
    m.load()
    m.eval_group(m.groups[0], int(T0 * 1000))
    [alert] = _firing(m)
    assert alert.last_sent_at_ms == int(T0 * 1000)

    env2 = Env()
    env2.now = T0 + 300
    m2 = env2.manager(f, state)
    m2.load()
    [restored] = _firing(m2)
    assert (restored.labels, restored.active_at_ms, restored.last_sent_at_ms) == (
        alert.labels, alert.active_at_ms, alert.last_sent_at_ms)
    assert m2.groups[0].prev_series == m.groups[0].prev_series

    env3 = Env()
    env3.now = T0 + OUTAGE_TOLERANCE_MS / 1000 + 1
    m3 = env3.manager(f, state)
    m3.load()
    assert _firing(m3) == []  # too old: alerts start over; series are still known for stale markers
    assert m3.groups[0].prev_series == m.groups[0].prev_series


def test_groups_evaluate_concurrently(tmp_path: Path) -> None:
    """Each group's first evaluation waits inside its query until the other's has started: both
    run at once in the manager's executor (rules within one group run in order: test_group.py)."""
    f = tmp_path / "r.yml"
    f.write_text("groups:\n  - name: a\n    interval: 10s\n    rules:\n      - record: r:a\n        expr: a\n"
                 "  - name: b\n    interval: 10s\n    rules:\n      - record: r:b\n        expr: b\n")
    running = {"a": threading.Event(), "b": threading.Event()}
    overlapped: dict[str, bool] = {}

    class Overlap(Env):
        def query(self, expr: str, t: int) -> list[Sample]:
            if expr not in overlapped:
                running[expr].set()
                overlapped[expr] = running["b" if expr == "a" else "a"].wait(10)
            return super().query(expr, t)

    env = Overlap()
    with ThreadPoolExecutor(max_workers=2) as pool:
        m = RuleManager([str(f)], query=env.query, write=env.write, notify=None, clock=env.clock,
                        sleep=env.sleep, executor=pool)
        m.load()

        async def run() -> None:
            await m.start()
            while min(g.stats.iterations for g in m.groups) < 1:
                await asyncio.sleep(0.01)
            await m.stop()

        asyncio.run(run())
    assert overlapped == {"a": True, "b": True}
