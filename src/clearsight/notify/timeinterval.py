"""Alertmanager ``time_intervals``: times of day, weekdays, days of month, months and years in a zone.

An interval matches an instant when every field it sets matches (an unset field matches all); a
named interval is a list of such intervals and matches when any of them does. Ranges are
inclusive (``monday:friday``, ``1:5``); negative days of month count from the month's end
(``-1`` is the last day); times are ``HH:MM`` with the end exclusive, as in Alertmanager.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_WEEKDAYS = {d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                         "sunday"])}
_MONTHS = {m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july",
                                           "august", "september", "october", "november", "december"])}
_TIME = re.compile(r"^(\d{2}):(\d{2})$")


class TimeIntervalError(ValueError):
    pass


@dataclass(frozen=True)
class TimeInterval:
    times: tuple[tuple[int, int], ...] = ()  # minutes of the day [start, end)
    weekdays: tuple[tuple[int, int], ...] = ()  # 0 = monday
    days_of_month: tuple[tuple[int, int], ...] = ()
    months: tuple[tuple[int, int], ...] = ()
    years: tuple[tuple[int, int], ...] = ()
    location: str = "UTC"

    def contains(self, ts: float) -> bool:
        t = datetime.fromtimestamp(ts, ZoneInfo(self.location))
        if self.times:
            minute = t.hour * 60 + t.minute
            if not any(a <= minute < b for a, b in self.times):
                return False
        if self.weekdays and not any(a <= t.weekday() <= b for a, b in self.weekdays):
            return False
        if self.days_of_month:
            last = calendar.monthrange(t.year, t.month)[1]

            def norm(d: int) -> int:
                return d if d > 0 else last + d + 1

            if not any(norm(a) <= t.day <= norm(b) for a, b in self.days_of_month):
                return False
        if self.months and not any(a <= t.month <= b for a, b in self.months):
            return False
        return not (self.years and not any(a <= t.year <= b for a, b in self.years))


def _minutes(text: str, where: str) -> int:
    m = _TIME.match(text.strip())
    if m is None:
        raise TimeIntervalError(f"{where}: invalid time {text!r} (expected HH:MM)")
    h, mi = int(m.group(1)), int(m.group(2))
    if h > 24 or mi > 59 or (h == 24 and mi):
        raise TimeIntervalError(f"{where}: time {text!r} out of range (00:00 to 24:00)")
    return h * 60 + mi


def _ranges(values: Any, where: str, parse: Any, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
    if not isinstance(values, list):
        raise TimeIntervalError(f"{where}: expected a list")
    out: list[tuple[int, int]] = []
    for i, raw in enumerate(values):
        w = f"{where}[{i}]"
        text = str(raw).strip().lower()
        a_s, sep, b_s = text.partition(":")
        a = parse(a_s, w)
        b = parse(b_s, w) if sep else a
        for v in (a, b):
            if not (lo <= v <= hi) or (v == 0 and lo < 0):
                raise TimeIntervalError(f"{w}: {v} out of range ({lo} to {hi})")
        if (a > 0) == (b > 0) and a > b:
            raise TimeIntervalError(f"{w}: start {a_s} after end {b_s}")
        out.append((a, b))
    return tuple(out)


def _int(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TimeIntervalError(f"{where}: expected a number, got {text!r}") from None


def _named(table: Mapping[str, int], what: str) -> Any:
    def parse(text: str, where: str) -> int:
        if text in table:
            return table[text]
        if what == "month" and text.isdigit():
            return int(text)
        raise TimeIntervalError(f"{where}: invalid {what} {text!r}")

    return parse


def parse_time_interval(obj: Any, where: str) -> TimeInterval:
    if not isinstance(obj, Mapping):
        raise TimeIntervalError(f"{where}: expected a mapping")
    known = {"times", "weekdays", "days_of_month", "months", "years", "location"}
    for key in obj:
        if key not in known:
            raise TimeIntervalError(f"{where}.{key}: unknown field (known: {', '.join(sorted(known))})")
    times: list[tuple[int, int]] = []
    for i, t in enumerate(obj.get("times") or []):
        w = f"{where}.times[{i}]"
        if not isinstance(t, Mapping) or set(t) != {"start_time", "end_time"}:
            raise TimeIntervalError(f"{w}: expected start_time and end_time")
        a, b = _minutes(str(t["start_time"]), f"{w}.start_time"), _minutes(str(t["end_time"]), f"{w}.end_time")
        if a >= b:
            raise TimeIntervalError(f"{w}: start_time must be before end_time")
        times.append((a, b))
    wd = _ranges(obj.get("weekdays") or [], f"{where}.weekdays", _named(_WEEKDAYS, "weekday"), 0, 6)
    dom = _ranges(obj.get("days_of_month") or [], f"{where}.days_of_month", _int, -31, 31)
    months = _ranges(obj.get("months") or [], f"{where}.months", _named(_MONTHS, "month"), 1, 12)
    years = _ranges(obj.get("years") or [], f"{where}.years", _int, 1, 9999)
    location = str(obj.get("location") or "UTC")
    if location == "Local":
        raise TimeIntervalError(f"{where}.location: name the time zone (e.g. Europe/Berlin); Local is not supported")
    try:
        ZoneInfo(location)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeIntervalError(f"{where}.location: unknown time zone {location!r}") from None
    return TimeInterval(tuple(times), wd, dom, months, years, location)


def any_contains(intervals: Sequence[TimeInterval], ts: float) -> bool:
    return any(ti.contains(ts) for ti in intervals)
