"""Recurring silences: weekly windows in a time zone (crossing midnight, DST changes; expected instants
written out in UTC), their materialisation as ordinary silences on a virtual clock (pending before the
window, muting inside it, re-announced after it, once per window, expired with their schedule), and
the notifier reading the schedules through its source."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearsight.notify.matchers import parse_matchers
from clearsight.notify.recurring import WEEKDAYS, WeeklyWindow, WindowError, parse_window
from clearsight.notify.schedules import SilenceSchedule, materialise, parse_schedule, window_key
from clearsight.notify.silences import SilenceError

from .support import T0, Harness, sent
from .test_scenarios import BASE

BERLIN = "Europe/Berlin"


def utc(*a: int) -> float:
    return datetime(*a, tzinfo=UTC).timestamp()


def test_a_window_crossing_midnight_runs_into_the_next_day() -> None:
    w = parse_window(["monday", "tuesday", "wednesday", "thursday", "friday"], "22:00", "06:00", BERLIN)
    assert w.crosses_midnight
    # winter time in Berlin is UTC+1: Friday 2026-01-09 22:00 local is 21:00 UTC
    assert w.between(utc(2026, 1, 9, 12), utc(2026, 1, 10, 12)) == [(utc(2026, 1, 9, 21), utc(2026, 1, 10, 5))]
    assert w.contains(utc(2026, 1, 9, 23))  # Friday 00:00 local, inside Friday's window
    assert w.contains(utc(2026, 1, 10, 4, 59))  # Saturday 05:59 local, still Friday's window
    assert not w.contains(utc(2026, 1, 10, 5))  # Saturday 06:00 local: the end is exclusive
    assert not w.contains(utc(2026, 1, 10, 22))  # Saturday 23:00 local: Saturday is not listed
    assert not w.contains(utc(2026, 1, 11, 23, 30))  # Monday 00:30 local: no window started on Sunday
    assert w.contains(utc(2026, 1, 12, 21, 30))  # Monday 22:30 local


def test_the_running_window_and_the_next_ones() -> None:
    w = parse_window(["sunday"], "02:00", "04:00", "UTC")
    sunday_3am = utc(2026, 1, 4, 3)  # 2026-01-04 is a Sunday
    assert w.next_windows(sunday_3am, 3) == [
        (utc(2026, 1, 4, 2), utc(2026, 1, 4, 4)),
        (utc(2026, 1, 11, 2), utc(2026, 1, 11, 4)),
        (utc(2026, 1, 18, 2), utc(2026, 1, 18, 4)),
    ]
    assert w.next_windows(utc(2026, 1, 4, 4), 1) == [(utc(2026, 1, 11, 2), utc(2026, 1, 11, 4))]


def test_dst_changes_keep_wall_clock_times_and_change_the_length() -> None:
    w = parse_window(["sunday"], "02:00", "04:00", BERLIN)
    # a normal summer Sunday: 02:00-04:00 CEST (UTC+2) is 00:00-02:00 UTC, 2 h
    assert w.starting_on(datetime(2026, 10, 18).date()) == (utc(2026, 10, 18, 0), utc(2026, 10, 18, 2))
    # 2026-10-25, clocks go back at 03:00 CEST: 02:00 is taken at its first occurrence (CEST), 04:00 is CET:
    # 00:00-03:00 UTC, 3 h
    assert w.starting_on(datetime(2026, 10, 25).date()) == (utc(2026, 10, 25, 0), utc(2026, 10, 25, 3))
    # 2026-03-29, clocks go forward at 02:00 CET: 02:00 does not exist (read as CET, i.e. 01:00 UTC); 04:00 CEST
    # is 02:00 UTC: 1 h
    assert w.starting_on(datetime(2026, 3, 29).date()) == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))
    # a daily window in New York moves by an hour in UTC after the November change, not in local time
    ny = parse_window(list(WEEKDAYS), "08:00", "17:00", "America/New_York")
    assert ny.between(utc(2026, 10, 31, 0), utc(2026, 11, 2, 23)) == [
        (utc(2026, 10, 31, 12), utc(2026, 10, 31, 21)),  # EDT, UTC-4
        (utc(2026, 11, 1, 13), utc(2026, 11, 1, 22)),  # EST, UTC-5 (the change was at 02:00 that night)
        (utc(2026, 11, 2, 13), utc(2026, 11, 2, 22)),
    ]


def test_a_whole_day_window() -> None:
    w = parse_window(["saturday", "sunday"], "00:00", "24:00", "UTC")
    assert w.between(utc(2026, 1, 2, 12), utc(2026, 1, 6)) == [
        (utc(2026, 1, 3), utc(2026, 1, 4)),
        (utc(2026, 1, 4), utc(2026, 1, 5)),
    ]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (([], "02:00", "04:00", "UTC"), "weekdays"),
        ((["sundae"], "02:00", "04:00", "UTC"), "weekdays[0]"),
        ((["sunday"], "2:00", "04:00", "UTC"), "startTime"),
        ((["sunday"], "24:00", "04:00", "UTC"), "startTime"),
        ((["sunday"], "02:00", "24:30", "UTC"), "endTime"),
        ((["sunday"], "02:00", "02:00", "UTC"), "endTime"),
        ((["sunday"], "02:00", "04:00", "Mars/Olympus"), "timeZone"),
        ((["sunday"], "02:00", "04:00", "Local"), "timeZone"),
        ((["sunday"], "02:00", "04:00", None), "timeZone"),
    ],
)
def test_bad_windows_name_the_field(args: tuple[object, object, object, object], field: str) -> None:
    with pytest.raises(WindowError, match=f"^{re.escape(field)}:"):
        parse_window(*args)


@given(
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.integers(0, 1439),
    end=st.integers(1, 1440),
    zone=st.sampled_from(["UTC", BERLIN, "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]),
    t=st.floats(1.6e9, 1.9e9),
)
def test_windows_are_ordered_and_contain_their_start(
    days: frozenset[int], start: int, end: int, zone: str, t: float
) -> None:
    if start == end:
        return
    w = WeeklyWindow(days, start, end, zone)
    ws = w.between(t, t + 8 * 86400)
    assert ws, "every week has a window when a day is listed"
    for a, b in ws:
        assert a < b <= a + 25 * 3600  # at most a day plus a DST hour
        assert w.contains(a)
        assert (a, b) not in w.between(b, b + 1e-6)  # the end is exclusive (a next window may start there)
    assert [a for a, _ in ws] == sorted(a for a, _ in ws)


def test_parse_schedule_names_the_field() -> None:
    good = {"matchers": [{"name": "alertname", "value": "Backup", "isRegex": False, "isEqual": True}],
            "weekdays": ["sunday"], "startTime": "02:00", "endTime": "04:00", "timeZone": BERLIN, "comment": "backups"}
    assert parse_schedule(good).window == parse_window(["sunday"], "02:00", "04:00", BERLIN)
    for change, msg in [({"matchers": []}, "matchers"), ({"comment": " "}, "comment"),
                        ({"matchers": [{"name": "a", "value": "", "isRegex": False, "isEqual": True}]}, "matchers"),
                        ({"endTime": "25:00"}, "endTime"), ({"weekdays": "sunday"}, "weekdays")]:
        with pytest.raises(SilenceError, match=f"^{msg}"):
            parse_schedule({**good, **change})


# T0 is Tuesday 2023-11-14 22:13:20 UTC: a window on Tuesdays 22:14-22:15 UTC runs from T0+40 to T0+100
WINDOW = WeeklyWindow(frozenset({1}), 22 * 60 + 14, 22 * 60 + 15, "UTC")


def schedule(sid: str = "a" * 32) -> SilenceSchedule:
    return SilenceSchedule(sid, "main", tuple(parse_matchers('a="2"')), WINDOW, "nightly job", "ops", T0)


@pytest.mark.anyio
async def test_a_window_mutes_its_alerts_and_they_are_announced_after_it() -> None:
    async with Harness(BASE) as h:
        sch = schedule()
        assert materialise(h.notifier.silences, [sch], h.clock.now()) == (1, 0)
        (sil,) = h.notifier.silences.all()
        assert (sil.starts_at, sil.ends_at) == (T0 + 40, T0 + 100)
        assert sil.state(h.clock.now()) == "pending" and sil.schedule == window_key(sch.id, T0 + 40)
        assert materialise(h.notifier.silences, [sch], h.clock.now()) == (0, 0)  # once per window
        h.push("2", ends_in=3600)
        await h.at(10)
        assert sent(h.rec["default"]) == [(1.0, [("2", "firing")])]  # before the window: notified
        h.push("3", ends_in=3600)  # not matched by the schedule
        await h.at(45)
        by_name = {a.labels["a"]: h.notifier.status_of(a).silenced_by for a in h.notifier.alerts.values()}
        assert by_name == {"2": [sil.id], "3": []}
        h.push("2", ends_in=3600, x="new")  # a new alert inside the window: muted
        h.push("4", ends_in=3600)  # and one the schedule does not match: notified
        await h.at(99)
        inside = [(t, alerts) for t, alerts in sent(h.rec["default"]) if 40 <= t <= 100]
        assert [(t, [a[0] for a in alerts]) for t, alerts in inside] == [(1.0 + 9 * 5, ["3", "4"])]  # group flushes every 5 s
        await h.at(110)
        after = [(t, [a[0] for a in alerts]) for t, alerts in sent(h.rec["default"]) if t > 100]
        assert after == [(1.0 + 20 * 5, ["2", "2", "3", "4"])]  # the first flush after the window: announced
        assert h.notifier.silences.get(sil.id).state(h.clock.now()) == "expired"


@pytest.mark.anyio
async def test_an_early_expired_window_stays_expired_and_a_deleted_schedule_expires_its_silences() -> None:
    async with Harness(BASE) as h:
        sch = schedule()
        materialise(h.notifier.silences, [sch], h.clock.now())
        await h.at(50)
        (sil,) = h.notifier.silences.all()
        h.notifier.silences.expire(sil.id)  # amtool silence expire, in the middle of the window
        assert materialise(h.notifier.silences, [sch], h.clock.now()) == (0, 0)
        # a week later (within the horizon of 24 h before): the next window's silence, pending
        await h.clock.advance(7 * 86400 - 3600)
        assert materialise(h.notifier.silences, [sch], h.clock.now()) == (1, 0)
        nxt = [s for s in h.notifier.silences.all() if s.id != sil.id]
        assert [(s.starts_at, s.state(h.clock.now())) for s in nxt] == [(T0 + 40 + 7 * 86400, "pending")]
        # the schedule is deleted: its pending silence is expired, the other schedule's is kept
        other = schedule("b" * 32)
        assert materialise(h.notifier.silences, [other], h.clock.now()) == (1, 1)
        states = {s.schedule.split("@")[0]: s.state(h.clock.now()) for s in h.notifier.silences.all()
                  if s.id != sil.id}
        assert states == {"a" * 32: "expired", "b" * 32: "pending"}


@pytest.mark.anyio
async def test_the_notifier_reads_its_schedules_through_the_source() -> None:
    async with Harness(BASE) as h:
        calls: list[int] = []

        def source() -> list[SilenceSchedule]:
            calls.append(1)
            return [schedule()]

        h.notifier.schedule_source = source
        await h.notifier.sync_schedules()
        # read through the source (the maintenance loop's first run may read it too: still one silence)
        assert calls
        assert [s.schedule for s in h.notifier.silences.all()] == [window_key("a" * 32, T0 + 40)]

        def broken() -> list[SilenceSchedule]:
            raise OSError("database is locked")

        h.notifier.schedule_source = broken
        await h.notifier.sync_schedules()  # a failed read expires nothing
        assert [s.state(h.clock.now()) for s in h.notifier.silences.all()] == ["pending"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "matchers": st.one_of(_json, st.lists(st.fixed_dictionaries(
            {"name": st.one_of(st.text(max_size=8), _json), "value": st.one_of(st.text(max_size=8), _json)},
            optional={"isRegex": _json, "isEqual": _json}), max_size=3)),
        "weekdays": st.one_of(_json, st.lists(st.sampled_from([*WEEKDAYS, "Sunday", "funday", ""]), max_size=8)),
        "startTime": st.one_of(_json, st.from_regex(r"\A\d{1,2}:\d{1,2}\Z")),
        "endTime": st.one_of(_json, st.from_regex(r"\A\d{1,2}:\d{1,2}\Z")),
        "timeZone": st.one_of(_json, st.sampled_from(["UTC", BERLIN, "America", "../etc", "Europe/", "Local", ""])),
        "comment": _json,
    },
)


@given(body=st.one_of(_json, _fields))
def test_any_body_is_a_schedule_or_a_silence_error(body: object) -> None:
    try:
        parsed = parse_schedule(body)
    except SilenceError as e:
        assert str(e).split(":")[0].split("[")[0].split(".")[0] in {
            "expected a schedule object", "matchers", "matcher", "weekdays", "startTime", "endTime", "timeZone",
            "comment"}, str(e)
        return
    assert parsed.matchers and parsed.comment.strip() and parsed.window.weekdays
    assert parsed.window.start != parsed.window.end
