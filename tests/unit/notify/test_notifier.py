"""The notifier as the rules engine sees it: ``notify`` from another thread, and a 10k-alert
fan-out through a routing tree with nothing dropped."""

from __future__ import annotations

import asyncio
import threading

import pytest

from clearsight.notify.alert import format_time

from .support import T0, Harness

pytestmark = pytest.mark.anyio

TREE = """
route:
  receiver: default
  group_by: [instance]
  group_wait: 1s
  group_interval: 10s
  routes:
  - matchers: ['severity="critical"']
    receiver: pager
    continue: true
  - matchers: ['team=~"db|cache"']
    receiver: db
receivers:
- name: default
- name: pager
- name: db
"""


async def test_notify_from_another_thread_is_ingested_on_the_loop() -> None:
    async with Harness(TREE) as h:
        seen: list[str] = []
        alerts = [{"labels": {"alertname": "X", "instance": "i1"}, "startsAt": format_time(T0),
                   "endsAt": format_time(T0 + 600)}]

        def evaluation_thread() -> None:
            seen.append(threading.current_thread().name)
            h.notifier.notify(alerts)
            h.notifier.notify([{"labels": {}}])  # invalid: logged, not raised into the rules engine

        t = threading.Thread(target=evaluation_thread, name="rules-eval")
        t.start()
        await asyncio.to_thread(t.join)
        await h.at(2)
        assert seen == ["rules-eval"]
        assert [len(s.alerts) for s in h.rec["default"].sent] == [1]
        assert h.notifier.metrics.alerts_invalid._value.get() == 1


async def test_ten_thousand_alerts_through_a_routing_tree_none_dropped() -> None:
    async with Harness(TREE) as h:
        teams = ["db", "cache", "web", "api"]
        batch = []
        for i in range(10_000):
            batch.append({"labels": {"alertname": "Load", "a": str(i), "instance": f"host-{i % 100}",
                                     "team": teams[i % 4], "severity": "critical" if i % 10 == 0 else "warning"},
                          "startsAt": format_time(T0), "endsAt": format_time(T0 + 3600)})
        for k in range(0, len(batch), 1000):
            h.notifier.put_alerts(batch[k:k + 1000])
        await h.at(2)
        got = {name: sorted(int(a) for s in r.sent for a, _ in s.alerts) for name, r in h.rec.items()}
        crit = list(range(0, 10_000, 10))
        # critical: pager, then (continue) db for db/cache teams; the root's receiver only gets alerts
        # no child route matched (Alertmanager's semantics)
        assert got["pager"] == crit
        assert got["db"] == [i for i in range(10_000) if i % 4 in (0, 1)]
        assert got["default"] == [i for i in range(10_000) if i % 4 in (2, 3) and i % 10 != 0]
        # one notification per group (instance): db/cache alerts sit on 50 instances, critical on 10
        assert len(h.rec["db"].sent) == 50 and len(h.rec["pager"].sent) == 10
