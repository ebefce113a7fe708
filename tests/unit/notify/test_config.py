"""The Alertmanager-format notification config: route tree, inheritance, matchers, time intervals,
and errors that name the file, the line and the field."""

from __future__ import annotations

import pytest

from clearsight.notify.config import NotifyConfigError, parse_config
from clearsight.notify.matchers import MatcherError, parse_matchers
from clearsight.notify.timeinterval import parse_time_interval

from .support import T0

GOOD = """
global:
  resolve_timeout: 1m
route:
  receiver: default
  group_by: [alertname, cluster]
  group_wait: 10s
  routes:
  - matchers: ['service=~"db|cache"', 'env!="dev"']
    receiver: db
    group_by: ['...']
    repeat_interval: 1h
    routes:
    - match: {severity: page}
      receiver: pager
  - match_re: {team: "front.*"}
    receiver: front
    mute_time_intervals: [weekend]
receivers:
- name: default
- name: db
- name: pager
- name: front
time_intervals:
- name: weekend
  time_intervals:
  - weekdays: ['saturday:sunday']
    location: Europe/Paris
"""


def test_route_tree_inherits_and_matches() -> None:
    cfg = parse_config(GOOD, "am.yml")
    assert cfg.globals.resolve_timeout == 60
    root = cfg.route
    db, front = root.routes
    pager = db.routes[0]
    assert (db.group_wait, db.repeat_interval, db.group_by_all) == (10, 3600, True)
    assert (pager.group_by_all, pager.repeat_interval, pager.group_wait) == (True, 3600, 10)
    assert front.group_by == ("alertname", "cluster") and front.mute_time_intervals == ("weekend",)
    assert [r.receiver for r in root.match({"service": "db", "env": "prod", "severity": "page"})] == ["pager"]
    assert [r.receiver for r in root.match({"service": "db", "env": "prod"})] == ["db"]
    assert [r.receiver for r in root.match({"service": "db", "env": "dev"})] == ["default"]
    assert [r.receiver for r in root.match({"team": "frontend"})] == ["front"]
    assert front.group_labels({"alertname": "X", "team": "frontend"}) == {"alertname": "X"}
    assert len({r.key for r in root.walk()}) == 4


@pytest.mark.parametrize(("text", "expected"), [
    ("route:\n  receiver: nope\nreceivers:\n- name: a\n", "x.yml:2: route.receiver: undefined receiver 'nope'"),
    ("route:\n  receiver: a\n  group_wait: 5 minutes\nreceivers:\n- name: a\n",
     "x.yml:3: route.group_wait: invalid duration"),
    ("route:\n  receiver: a\n  routes:\n  - matchers: ['a=~\"(\"']\nreceivers:\n- name: a\n",
     "x.yml:4: route.routes[0].matchers[0]: invalid regular expression"),
    ("route:\n  receiver: a\n  group_by: ['...', x]\nreceivers:\n- name: a\n",
     "x.yml:3: route.group_by: '...' must be the only element"),
    ("route:\n  receiver: a\n  routes:\n  - mute_time_intervals: [nights]\nreceivers:\n- name: a\n",
     "x.yml:4: route.routes[0].mute_time_intervals[0]: undefined time interval 'nights'"),
    ("route:\n  receiver: a\nreceivers:\n- name: a\n  opsgenie_configs: []\n",
     "x.yml:5: receivers[0].opsgenie_configs: receiver type not supported"),
    ("route:\n  receiver: a\nreceivers:\n- name: a\n- name: a\n", "x.yml:5: receivers[1].name: receiver 'a' is defined twice"),
    ("route:\n  receiver: a\nreceivers:\n- name: a\n  email_configs:\n  - to: x@y\n",
     "x.yml:6: receivers[0].email_configs[0].smarthost: required"),
    ("route:\n  receiver: a\nreceivers:\n- name: a\ninhibit_rules:\n- target_matchers: ['a=b']\n",
     "x.yml:6: inhibit_rules[0].source_matchers: required"),
    ("route:\n  receiver: a\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n"
     "  - times: [{start_time: '25:00', end_time: '26:00'}]\n",
     "x.yml:8: time_intervals[0].time_intervals[0].times[0].start_time: time '25:00' out of range"),
    ("route:\n  receiver: a\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n"
     "  - location: Mars/Olympus\n", "x.yml:8: time_intervals[0].time_intervals[0].location: unknown time zone"),
    ("route:\n  receiver: a\n  colour: red\nreceivers:\n- name: a\n", "x.yml:3: route.colour: unknown field"),
    ("route: [\n", "x.yml: invalid YAML"),
])
def test_errors_name_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(NotifyConfigError) as e:
        parse_config(text, "x.yml")
    assert str(e.value).startswith(expected), str(e.value)


def test_matcher_syntax() -> None:
    ms = parse_matchers('{alertname="Disk\\"Full", instance=~"web-.*",env!=dev, team!~"a|b"}')
    assert [str(m) for m in ms] == ['alertname="Disk\\"Full"', 'instance=~"web-.*"', 'env!="dev"', 'team!~"a|b"']
    assert ms[1].matches("web-1") and not ms[1].matches("xweb-1")  # anchored
    for bad in ("alertname", 'a="b', "=x", '{a="b"'):
        with pytest.raises(MatcherError):
            parse_matchers(bad)


def test_time_interval_fields_in_a_zone() -> None:
    ti = parse_time_interval({"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "17:00"}],
                              "days_of_month": ["-7:-1"], "months": ["november"], "years": ["2023"],
                              "location": "America/New_York"}, "t")
    # T0 = Tue 2023-11-14 22:13 UTC = 17:13 in New York: just after the window closes
    assert not ti.contains(T0)
    assert not ti.contains(T0 - 3600)  # 16:13, but the 14th is not in the last 7 days of November
    assert ti.contains(T0 - 3600 + 14 * 86400)  # Tue 28 Nov 16:13 New York
    assert parse_time_interval({"days_of_month": ["-1"]}, "t").contains(T0 + 16 * 86400)  # 30 Nov
