"""The alert state machine as Prometheus' rules/alerting.go: for, keep_firing_for, resolved
retention, limit, templates, ALERTS/ALERTS_FOR_STATE and which alerts are (re)sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clearsight.model.labels import Labels
from clearsight.rules.alerting import FIRING, INACTIVE, PENDING, RESOLVED_RETENTION_MS, AlertingRule
from clearsight.rules.model import RuleSpec
from clearsight.rules.recording import RecordingRule, RuleEvalError
from clearsight.rules.types import QueryFunc, Sample

M = 60_000
A: Labels = (("__name__", "up"), ("instance", "a"), ("job", "x"))


def _query(active: Callable[[int], list[Sample]]) -> QueryFunc:
    return lambda expr, t: active(t)


def _rule(for_ms: int = 0, kff_ms: int = 0, **kw: object) -> AlertingRule:
    spec = RuleSpec(kind="alerting", name="Down", expr="up == 0", for_ms=for_ms, keep_firing_for_ms=kff_ms,
                    labels=(("severity", "page"), ("inst", "{{ $labels.instance }}")),
                    annotations=(("summary", "{{ $labels.instance }} is {{ $value }}"),))
    return AlertingRule(spec, external_url="http://cs:9800")


def _down_until(end_ms: int) -> QueryFunc:
    return _query(lambda t: [Sample(A, 0.0)] if t < end_ms else [])


def test_pending_then_firing_after_for_then_resolved() -> None:
    r = _rule(for_ms=2 * M)
    q = _down_until(5 * M)
    states = []
    for t in range(0, 8 * M, M):
        out = r.eval(t, q)
        states.append(r.state())
        if t == 0:
            assert out == [((("__name__", "ALERTS"), ("alertname", "Down"), ("alertstate", "pending"),
                             ("inst", "a"), ("instance", "a"), ("job", "x"), ("severity", "page")), 1.0),
                           ((("__name__", "ALERTS_FOR_STATE"), ("alertname", "Down"), ("inst", "a"),
                             ("instance", "a"), ("job", "x"), ("severity", "page")), 0.0)]
    assert states == [PENDING, PENDING, FIRING, FIRING, FIRING, INACTIVE, INACTIVE, INACTIVE]
    [a] = r.active.values()
    assert (a.active_at_ms, a.fired_at_ms, a.resolved_at_ms) == (0, 2 * M, 5 * M)
    assert dict(a.annotations) == {"summary": "a is 0"}


def test_for_zero_fires_at_once_and_pending_that_vanishes_is_dropped() -> None:
    r = _rule()
    r.eval(0, _down_until(M))
    assert r.state() == FIRING
    r2 = _rule(for_ms=5 * M)
    r2.eval(0, _down_until(M))
    r2.eval(M, _down_until(M))
    assert r2.active == {}


def test_resolved_alert_is_kept_for_the_retention_then_dropped() -> None:
    r = _rule()
    q = _down_until(M)
    r.eval(0, q)
    r.eval(M, q)
    assert [a.state for a in r.active.values()] == [INACTIVE]
    r.eval(M + RESOLVED_RETENTION_MS, q)
    assert len(r.active) == 1
    r.eval(M + RESOLVED_RETENTION_MS + 1, q)
    assert r.active == {}


def test_keep_firing_for() -> None:
    r = _rule(kff_ms=2 * M)
    q = _down_until(M)
    states = []
    for t in range(0, 5 * M, M):
        r.eval(t, q)
        states.append(r.state())
    assert states == [FIRING, FIRING, FIRING, INACTIVE, INACTIVE]


def test_returning_alert_after_resolution_starts_pending_again() -> None:
    r = _rule(for_ms=M)
    series = {0: True, M: True, 2 * M: False, 3 * M: True}
    q = _query(lambda t: [Sample(A, 0.0)] if series[t] else [])
    for t in sorted(series):
        r.eval(t, q)
    [a] = r.active.values()
    assert (a.state, a.active_at_ms) == (PENDING, 3 * M)


def test_limit_and_duplicate_labelsets_fail_the_rule() -> None:
    r = _rule()
    two = _query(lambda t: [Sample(A, 0.0), Sample((("__name__", "up"), ("instance", "b"), ("job", "x")), 0.0)])
    with pytest.raises(RuleEvalError, match="exceeded limit of 1 with 2 alerts"):
        r.eval(0, two, limit=1)
    assert r.active == {}
    spec = RuleSpec(kind="alerting", name="X", expr="e", labels=(("instance", "same"),))
    dup = AlertingRule(spec)
    with pytest.raises(RuleEvalError, match="same labelset after applying alert labels"):
        dup.eval(0, two)


def test_query_errors_fail_the_rule() -> None:
    def broken(expr: str, t: int) -> list[Sample]:
        raise RuntimeError("boom")

    with pytest.raises(RuleEvalError, match="boom"):
        _rule().eval(0, broken)


def test_alerts_to_send_follow_prometheus_resend_rules() -> None:
    r = _rule(for_ms=M)
    q = _down_until(4 * M)
    r.eval(0, q)
    assert r.alerts_to_send(0, M, M) == []  # pending is never sent
    r.eval(M, q)
    [sent] = r.alerts_to_send(M, M, M)
    assert sent["labels"]["alertname"] == "Down" and sent["startsAt"] == "1970-01-01T00:01:00.000Z"
    assert sent["endsAt"] == "1970-01-01T00:05:00.000Z"  # valid for 4 x max(resend delay, interval)
    assert sent["generatorURL"] == "http://cs:9800/graph?g0.expr=up%20%3D%3D%200&g0.tab=1"
    r.eval(2 * M, q)
    assert r.alerts_to_send(2 * M, M, M) == []  # last sent + resend delay is not before now
    r.eval(2 * M + 1, q)
    assert len(r.alerts_to_send(2 * M + 1, M, M)) == 1
    r.eval(4 * M, q)
    [resolved] = r.alerts_to_send(4 * M, M, M)
    assert resolved["endsAt"] == "1970-01-01T00:04:00.000Z"


def test_template_errors_become_the_annotation_text() -> None:
    spec = RuleSpec(kind="alerting", name="T", expr="e", annotations=(("s", "{{ humanize \"x\" }}"),))
    r = AlertingRule(spec)
    r.eval(0, _down_until(M))
    [a] = r.active.values()
    assert dict(a.annotations)["s"].startswith("<error expanding template: error calling humanize:")


def test_recording_rule_renames_sets_labels_and_checks_limit() -> None:
    spec = RuleSpec(kind="recording", name="job:up", expr="up", labels=(("team", "core"), ("job", "")))
    r = RecordingRule(spec)
    q = _query(lambda t: [Sample(A, 1.0)])
    assert r.eval(0, q) == [((("__name__", "job:up"), ("instance", "a"), ("team", "core")), 1.0)]
    with pytest.raises(RuleEvalError, match="exceeded limit of 1 with 2 series"):
        r.eval(0, _query(lambda t: [Sample(A, 1.0), Sample((("instance", "b"),), 1.0)]), limit=1)
    scalar = RecordingRule(RuleSpec(kind="recording", name="s", expr="1"))
    assert scalar.eval(0, _query(lambda t: [Sample((), 1.0)])) == [((("__name__", "s"),), 1.0)]
