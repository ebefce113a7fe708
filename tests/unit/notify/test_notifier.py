"""The notifier as the rules engine sees it: ``notify`` from another thread, and a 10k-alert
fan-out through a routing tree with nothing dropped."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from clearsight.notify.alert import format_time
from clearsight.notify.config import parse_config

from .support import T0, Harness, with_recorders

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


async def test_reload_keeps_the_previous_config_on_error_and_reroutes_held_alerts(tmp_path: Path) -> None:
    async with Harness(TREE) as h:
        h.push("1", instance="i1", ends_in=3600)
        await h.at(2)
        assert len(h.rec["default"].sent) == 1
        bad = tmp_path / "bad.yml"
        bad.write_text("route:\n  receiver: missing\nreceivers:\n- name: default\n")
        ok, err = await h.notifier.reload_file(bad)
        assert not ok and err.startswith(f"{bad}:2: route.receiver: undefined receiver 'missing'")
        assert h.notifier.config.route.routes  # the previous tree still runs
        good = tmp_path / "good.yml"
        good.write_text(TREE.replace("group_interval: 10s", "group_interval: 20s"))
        ok, _ = await h.notifier.reload_file(good)
        assert ok and h.notifier.config.route.group_interval == 20
        # with the recorder put back: the held alert is re-grouped but not re-sent (notification log)
        cfg = with_recorders(parse_config(TREE.replace("10s", "20s"), "t.yml"), {"default": [h.rec["default"]]})
        await h.notifier.reload(cfg)
        await h.at(60)
        assert len(h.rec["default"].sent) == 1
        h.push("2", instance="i1", ends_in=3600)
        await h.at(90)
        assert h.rec["default"].sent[-1].alerts == [("1", "firing"), ("2", "firing")]
