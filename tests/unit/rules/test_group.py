"""A group: rules in order at one timestamp, one write per evaluation, stale markers for series
that disappear, failures counted, alerts handed to the notify function; slots aligned."""

from __future__ import annotations

import math
from typing import Any

from clearsight.model.labels import Labels
from clearsight.model.samples import is_stale_nan
from clearsight.rules.group import Group
from clearsight.rules.model import GroupSpec, RuleSpec
from clearsight.rules.types import Sample

M = 60_000


def _spec(*rules: RuleSpec, interval_ms: int = M, name: str = "g") -> GroupSpec:
    return GroupSpec(file="f.yml", name=name, interval_ms=interval_ms, limit=0, rules=rules)


class Store:
    """Writes land here; queries read the latest value per series (enough for chained rules)."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[Labels, int, float]]] = []
        self.data: dict[str, list[Sample]] = {}

    def write(self, samples: Any, sync: bool) -> None:
        self.writes.append(list(samples))
        for lbls, _t, v in samples:
            name = dict(lbls)["__name__"]
            kept = [s for s in self.data.get(name, []) if s.labels != lbls]
            self.data[name] = kept if math.isnan(v) else [*kept, Sample(lbls, v)]

    def query(self, expr: str, t: int) -> list[Sample]:
        if expr == "fail":
            raise RuntimeError("bad query")
        return list(self.data.get(expr, []))


def test_rules_run_in_order_and_removed_series_get_stale_markers() -> None:
    store = Store()
    store.data["up"] = [Sample((("__name__", "up"), ("i", "a")), 1.0), Sample((("__name__", "up"), ("i", "b")), 1.0)]
    g = Group(_spec(RuleSpec(kind="recording", name="r1", expr="up"),
                    RuleSpec(kind="recording", name="r2", expr="r1")), M)
    g.eval(0, store.query, store.write, None)
    # r2 reads r1: r1's results are written before r2 runs (as Prometheus commits per rule).
    assert [sorted(dict(lb)["__name__"] for lb, _t, _v in w) for w in store.writes] == [["r1", "r1"], ["r2", "r2"]]
    store.data["up"] = store.data["up"][:1]
    g.eval(M, store.query, store.write, None)
    stale = [(dict(lb)["__name__"], dict(lb)["i"]) for w in store.writes[2:] for lb, t, v in w if is_stale_nan(v)]
    assert sorted(stale) == [("r1", "b"), ("r2", "b")]
    assert all(t == M for w in store.writes[2:] for _lb, t, _v in w)


def test_independent_rules_are_written_once_per_evaluation() -> None:
    store = Store()
    store.data["up"] = [Sample((("__name__", "up"), ("i", "a")), 1.0)]
    g = Group(_spec(RuleSpec(kind="recording", name="r1", expr="up"),
                    RuleSpec(kind="recording", name="r2", expr="up"),
                    RuleSpec(kind="alerting", name="A", expr="up")), M)
    g.eval(0, store.query, store.write, None)
    assert len(store.writes) == 1 and len(store.writes[0]) == 4  # r1, r2, ALERTS, ALERTS_FOR_STATE


def test_a_failing_rule_is_counted_and_the_rest_still_run() -> None:
    store = Store()
    store.data["up"] = [Sample((("__name__", "up"),), 1.0)]
    g = Group(_spec(RuleSpec(kind="recording", name="bad", expr="fail"),
                    RuleSpec(kind="recording", name="ok", expr="up")), M)
    g.eval(0, store.query, store.write, None)
    bad, ok = g.rules
    assert (bad.health, bad.last_error, ok.health) == ("err", "bad query", "ok")
    assert (g.stats.evaluations, g.stats.failures, g.stats.iterations) == (2, 1, 1)
    assert store.data["ok"]


def test_firing_alerts_are_handed_to_notify_in_postable_shape() -> None:
    store = Store()
    store.data["up"] = [Sample((("__name__", "up"), ("i", "a")), 0.0)]
    sent: list[list[dict[str, Any]]] = []
    g = Group(_spec(RuleSpec(kind="alerting", name="Down", expr="up")), M)
    g.eval(0, store.query, store.write, sent.append)
    assert [sorted(a) for a in sent[0]] == [["annotations", "endsAt", "generatorURL", "labels", "startsAt"]]
    assert sent[0][0]["labels"] == {"alertname": "Down", "i": "a"}


def test_evaluation_slots_are_aligned_with_a_stable_per_group_offset() -> None:
    g = Group(_spec(interval_ms=15_000), M)
    off = g.hash_offset_ms()
    assert 0 <= off < 15_000
    assert Group(_spec(interval_ms=15_000), M).hash_offset_ms() == off  # stable across restarts
    for now in (1_700_000_000_000, 1_700_000_007_321, 1_700_000_014_999):
        ts = g.eval_timestamp(now)
        assert ts <= now < ts + 15_000 and (ts - off) % 15_000 == 0
    offsets = {Group(_spec(interval_ms=15_000, name=f"g{i}"), M).hash_offset_ms() for i in range(20)}
    assert len(offsets) > 10  # groups are spread over the interval


def test_state_survives_a_json_round_trip() -> None:
    store = Store()
    store.data["up"] = [Sample((("__name__", "up"), ("i", "a")), 0.0)]
    spec = _spec(RuleSpec(kind="alerting", name="Down", expr="up", for_ms=5 * M),
                 RuleSpec(kind="recording", name="r", expr="up"))
    g = Group(spec, M)
    g.eval(0, store.query, store.write, None)
    g2 = Group(spec, M)
    g2.restore_state(g.state_json(), restore_alerts=True)
    [a] = g2.rules[0].active.values()  # type: ignore[union-attr]
    assert (a.state, a.active_at_ms) == ("pending", 0)
    assert g2.prev_series == g.prev_series
    g3 = Group(spec, M)
    g3.restore_state(g.state_json(), restore_alerts=False)
    assert g3.rules[0].active == {} and g3.prev_series == g.prev_series  # type: ignore[union-attr]


def test_restored_pending_alerts_do_not_count_the_downtime() -> None:
    store = Store()
    store.data["up"] = [Sample((("__name__", "up"), ("i", "a")), 0.0)]
    long_for = _spec(RuleSpec(kind="alerting", name="Down", expr="up", for_ms=60 * M))
    g = Group(long_for, M)
    g.eval(0, store.query, store.write, None)
    g.eval(20 * M, store.query, store.write, None)  # 20 of 60 minutes pending when it went down
    state = {**g.state_json(), "saved_at_ms": 20 * M}
    g2 = Group(long_for, M)
    g2.restore_state(state, restore_alerts=True, now_ms=50 * M)  # down for 30 minutes
    [a] = g2.rules[0].active.values()  # type: ignore[union-attr]
    assert (a.state, a.active_at_ms) == ("pending", 30 * M)  # 40 minutes still to go
    short_for = _spec(RuleSpec(kind="alerting", name="Down", expr="up", for_ms=25 * M))
    g3 = Group(short_for, M)
    g3.restore_state(state, restore_alerts=True, now_ms=50 * M)  # 5 minutes left: the grace period applies
    [b] = g3.rules[0].active.values()  # type: ignore[union-attr]
    assert b.active_at_ms == 50 * M + 10 * M - 25 * M
