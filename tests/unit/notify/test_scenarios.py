"""Alertmanager's acceptance scenarios (grouping, merge, repeat, resolve, inhibition, silences,
retries, batching), ported to a virtual clock: every delivery time is asserted exactly."""

from __future__ import annotations

import pytest

from clearsight.notify.matchers import parse_matchers
from clearsight.notify.silences import FOREVER

from .support import T0, Harness, sent

pytestmark = pytest.mark.anyio


BASE = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
- name: default
"""


async def test_group_wait_merges_alerts_into_one_notification() -> None:
    async with Harness(BASE) as h:
        h.push("1")
        await h.at(0.5)
        h.push("2")
        await h.at(3)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing"), ("2", "firing")])]


async def test_new_alert_waits_for_group_interval() -> None:
    async with Harness(BASE) as h:
        h.push("1")
        await h.at(2)
        h.push("2")
        await h.at(5.9)
        assert [s[0] for s in sent(h.rec["default"])] == [1.0]
        await h.at(7)
        assert sent(h.rec["default"])[1] == (6.0, [("1", "firing"), ("2", "firing")])


async def test_unchanged_group_repeats_after_repeat_interval() -> None:
    cfg = BASE.replace("repeat_interval: 1h", "repeat_interval: 12s")
    async with Harness(cfg) as h:
        h.push("1", ends_in=3600)
        await h.at(40)
        # flushes at 1, 6, 11, 16, ...: re-sent at the first flush at least 12 s after the last send
        assert [s[0] for s in sent(h.rec["default"])] == [1.0, 16.0, 31.0]


async def test_an_alerts_own_repeat_interval_sets_its_groups_repeat() -> None:
    # A simple rule's repeat_interval travels as an annotation (model/alert_hints.py).
    async with Harness(BASE) as h:
        h.push("1", ends_in=3600, annotations={"clearsight_repeat_interval": "12s"})
        await h.at(40)
        assert [s[0] for s in sent(h.rec["default"])] == [1.0, 16.0, 31.0]
        h.push("2", ends_in=3600)  # no interval of its own: the route's 1h; the group keeps the shortest
        await h.at(80)
        assert [s[0] for s in sent(h.rec["default"])] == [1.0, 16.0, 31.0, 41.0, 56.0, 71.0]
    async with Harness(BASE.replace("repeat_interval: 1h", "repeat_interval: 12s")) as h:
        h.push("1", ends_in=3600, annotations={"clearsight_repeat_interval": "1h"})
        await h.at(120)
        assert [s[0] for s in sent(h.rec["default"])] == [1.0]  # longer than the route's: its own wins


async def test_an_alerts_own_notify_on_resolve_replaces_send_resolved() -> None:
    quiet = {"clearsight_notify_on_resolve": "false"}
    async with Harness(BASE) as h:  # send_resolved: true
        h.push("1", "2", annotations=quiet)
        await h.at(2)
        h.push("1", resolved=True, annotations=quiet)
        await h.at(30)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing"), ("2", "firing")])]
    async with Harness(BASE, send_resolved=False) as h:
        loud = {"clearsight_notify_on_resolve": "true"}
        h.push("1", "2", annotations=loud)
        await h.at(2)
        h.push("1", resolved=True, annotations=loud)
        await h.at(30)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing"), ("2", "firing")]),
                                          (6.0, [("1", "resolved"), ("2", "firing")])]


async def test_resolved_alert_is_sent_once_then_group_ends() -> None:
    async with Harness(BASE) as h:
        h.push("1", "2")
        await h.at(2)
        h.push("1", resolved=True)
        await h.at(30)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing"), ("2", "firing")]),
                                          (6.0, [("1", "resolved"), ("2", "firing")])]
        h.push("2", resolved=True)
        await h.at(60)
        assert sent(h.rec["default"])[-1] == (31.0, [("2", "resolved")])
        assert h.notifier.dispatcher is not None and not h.notifier.dispatcher.groups


async def test_send_resolved_false_drops_resolved_alerts() -> None:
    async with Harness(BASE, send_resolved=False) as h:
        h.push("1", "2")
        await h.at(2)
        h.push("1", resolved=True)
        await h.at(20)
        # "1" resolving changes nothing the receiver is told (still a subset of what fired)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing"), ("2", "firing")])]


async def test_alert_resolving_by_its_ends_at() -> None:
    async with Harness(BASE) as h:
        h.push("1", ends_in=8)
        await h.at(20)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing")]), (11.0, [("1", "resolved")])]


async def test_alert_without_ends_at_resolves_after_resolve_timeout() -> None:
    cfg = "global:\n  resolve_timeout: 20s\n" + BASE
    async with Harness(cfg) as h:
        h.notifier.put_alerts([{"labels": {"alertname": "Test", "a": "1"}}])
        await h.at(40)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing")]), (21.0, [("1", "resolved")])]


async def test_old_alert_skips_group_wait() -> None:
    cfg = BASE.replace("group_wait: 1s", "group_wait: 30s")
    async with Harness(cfg) as h:
        h.push("1", starts_ago=60)
        await h.at(0.1)
        assert sent(h.rec["default"]) == [(0.0, [("1", "firing")])]


async def test_batching_many_alerts_in_one_group() -> None:
    async with Harness(BASE) as h:
        h.push(*[str(i) for i in range(500)])
        await h.at(2)
        assert len(h.rec["default"].sent) == 1
        assert len(h.rec["default"].sent[0].alerts) == 500


async def test_group_by_labels_and_group_by_all() -> None:
    cfg = BASE.replace("group_by: [alertname]", "group_by: ['...']")
    async with Harness(cfg) as h:
        h.push("1", "2", "3")
        await h.at(2)
        assert sorted(s[1][0][0] for s in sent(h.rec["default"])) == ["1", "2", "3"]
    async with Harness(BASE.replace("[alertname]", "[team]")) as h:
        h.push("1", "2", team="x")
        h.push("3", team="y")
        await h.at(2)
        assert sorted(len(s[1]) for s in sent(h.rec["default"])) == [1, 2]


ROUTES = """
route:
  receiver: default
  group_wait: 1s
  group_interval: 5s
  routes:
  - matchers: ['team=~"db|storage"']
    receiver: db
    continue: true
  - matchers: ['severity!="page"', 'team="db"']
    receiver: ticket
  - matchers: ['team="db"']
    receiver: pager
receivers:
- name: default
- name: db
- name: ticket
- name: pager
"""


async def test_routing_regex_negative_and_continue() -> None:
    async with Harness(ROUTES) as h:
        h.push("1", team="db", severity="page")
        h.push("2", team="db", severity="info")
        h.push("3", team="storage")
        h.push("4", team="web")
        await h.at(2)
        got = {name: sorted(a for s in r.sent for a, _ in s.alerts) for name, r in h.rec.items()}
        assert got == {"db": ["1", "2", "3"], "ticket": ["2"], "pager": ["1"], "default": ["4"]}


INHIBIT = BASE + """
inhibit_rules:
- source_matchers: ['severity="critical"']
  target_matchers: ['severity="warning"']
  equal: [cluster]
"""


async def test_inhibition_by_equal_labels_and_release() -> None:
    cfg = INHIBIT.replace("group_by: [alertname]", "group_by: ['...']")
    async with Harness(cfg) as h:
        h.push("crit", severity="critical", cluster="a")
        h.push("warn-a", severity="warning", cluster="a")
        h.push("warn-b", severity="warning", cluster="b")
        await h.at(2)
        assert sorted(a for s in h.rec["default"].sent for a, _ in s.alerts) == ["crit", "warn-b"]
        st = h.notifier.status_of(next(a for a in h.notifier.alerts.values() if a.labels["a"] == "warn-a"))
        assert st.state == "suppressed" and st.inhibited_by
        h.push("crit", resolved=True, severity="critical", cluster="a")
        await h.at(7)
        # the inhibited alert is sent at its group's next flush once the source resolved
        assert (6.0, [("warn-a", "firing")]) in sent(h.rec["default"])


async def test_silence_mutes_and_its_expiry_notifies_at_next_flush() -> None:
    async with Harness(BASE) as h:
        h.push("1", ends_in=3600)
        await h.at(2)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing")])]
        sid = h.notifier.silences.put(parse_matchers('a="1"'), 0, T0 + 20, "me", "maintenance")
        await h.at(19)
        assert len(h.rec["default"].sent) == 1
        assert h.notifier.status_of(next(iter(h.notifier.alerts.values()))).silenced_by == [sid]
        await h.at(30)
        # Alertmanager would wait for repeat_interval (1 h); the expired silence is re-announced at
        # the group's next flush (21 s)
        assert sent(h.rec["default"]) == [(1.0, [("1", "firing")]), (21.0, [("1", "firing")])]


async def test_silence_expiring_on_resolve_and_mute_until_resolved() -> None:
    async with Harness(BASE) as h:
        h.push("1", ends_in=3600)
        sid = h.notifier.silences.put(parse_matchers('a="1"'), 0, T0 + FOREVER, "me", "until fixed",
                                      expire_on_resolve=True)
        await h.at(10)
        assert h.rec["default"].sent == []
        assert h.notifier.silences.get(sid).state(h.clock.now()) == "active"
        h.push("1", resolved=True)
        assert h.notifier.silences.get(sid).state(h.clock.now()) == "expired"
        h.push("1", ends_in=3600)  # fires again: no longer muted
        await h.at(20)
        assert sent(h.rec["default"]) == [(11.0, [("1", "firing")])]


async def test_retries_with_backoff_do_not_block_other_receivers() -> None:
    cfg = (BASE + "- name: other\n").replace("group_interval: 5s", "group_interval: 30s").replace(
        "  repeat_interval: 1h\n",
        "  repeat_interval: 1h\n  routes:\n  - receiver: default\n    continue: true\n  - receiver: other\n")
    async with Harness(cfg) as h:
        h.rec["default"].fail_times = 3
        h.push("1", ends_in=3600)
        await h.at(10)
        assert sent(h.rec["other"]) == [(1.0, [("1", "firing")])]
        # attempts at 1, then backoff 1, 2, 4 s
        assert h.rec["default"].attempts == [1.0, 2.0, 4.0, 8.0]
        assert sent(h.rec["default"]) == [(8.0, [("1", "firing")])]
        assert h.notifier.metrics.requests_failed.labels("webhook")._value.get() == 3
        results = [e["result"] for e in h.notifier.history() if e["receiver"] == "default"]
        assert results == ["retrying", "retrying", "retrying", "success"]


async def test_retries_stop_at_the_flush_deadline_and_resume_next_flush() -> None:
    async with Harness(BASE) as h:
        h.rec["default"].fail_times = 4
        h.push("1", ends_in=3600)
        await h.at(7)
        # flush at 1 (deadline 6): attempts 1, 2, 4; the next wait (4 s) would pass the deadline
        assert h.rec["default"].attempts[:3] == [1.0, 2.0, 4.0]
        assert h.notifier.metrics.notifications_failed.labels("webhook", "serverError")._value.get() == 1
        await h.at(12)
        # next flush at 6: fails once more, then succeeds after 1 s
        assert h.rec["default"].attempts == [1.0, 2.0, 4.0, 6.0, 7.0]
        assert sent(h.rec["default"]) == [(7.0, [("1", "firing")])]


async def test_non_retryable_failure_is_not_retried() -> None:
    async with Harness(BASE, fail_times=1, retryable=False) as h:
        h.push("1", ends_in=3600)
        await h.at(5.5)
        assert h.rec["default"].attempts == [1.0]
        assert h.notifier.metrics.notifications_failed.labels("webhook", "serverError")._value.get() == 1


TIMES = BASE.replace("group_interval: 5s", "group_interval: 60s").replace("receivers:", """  routes:
  - matchers: ['muted="yes"']
    mute_time_intervals: [night]
  - matchers: ['office="yes"']
    active_time_intervals: [office]
receivers:""") + """
time_intervals:
- name: night
  time_intervals:
  - times: [{start_time: "22:00", end_time: "24:00"}]
    location: UTC
- name: office
  time_intervals:
  - weekdays: ['monday:friday']
    times: [{start_time: "09:00", end_time: "17:00"}]
    location: Europe/Berlin
"""


async def test_mute_and_active_time_intervals() -> None:
    # T0 is Tuesday 22:13:20 UTC (23:13 in Berlin): "night" mutes, "office" is not active.
    async with Harness(TIMES) as h:
        h.push("m", ends_in=86400, muted="yes")
        h.push("o", ends_in=86400, office="yes")
        h.push("p", ends_in=86400)
        await h.at(2)
        assert [a for s in h.rec["default"].sent for a, _ in s.alerts] == ["p"]
        # 00:00 UTC: night is over; the muted group notifies at its next flush
        await h.at(6399)
        assert "m" not in [a for s in h.rec["default"].sent for a, _ in s.alerts]
        await h.at(6422)
        assert (6421.0, [("m", "firing")]) in sent(h.rec["default"])
        # Wednesday 09:00 Berlin = 08:00 UTC
        await h.at(6400 + 8 * 3600 + 90)
        assert "o" in [a for s in h.rec["default"].sent for a, _ in s.alerts]
