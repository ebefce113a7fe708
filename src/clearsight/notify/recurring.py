"""A weekly recurring window in a time zone: on some days of the week, from a wall-clock time to another.

A window starts on each listed weekday at ``start`` (local wall time) and ends at ``end``; an end
at or before the start ends on the next day (``22:00``-``06:00`` crosses midnight), ``24:00`` is the
end of the day. The instants follow the zone's rules on each date, so a window keeps its wall-clock
times across a DST change and its length in real time changes that day: ``02:00``-``04:00`` in
Europe/Berlin lasts 3 h on the night clocks go back (02:00 is taken at its first occurrence) and 1 h
on the night they go forward (02:00 does not exist and is read with the offset before the change,
as Python's ``zoneinfo`` does with ``fold=0``: 03:00 summer time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
DAY = 24 * 60


class WindowError(ValueError):
    """An invalid window field (the message names it)."""


@dataclass(frozen=True)
class WeeklyWindow:
    weekdays: frozenset[int]  # 0 = monday
    start: int  # minutes after local midnight, 0..1439
    end: int  # minutes, 1..1440; at or before ``start``: on the next day
    zone: str

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def _instant(self, day: date, minute: int) -> float:
        d = day + timedelta(days=minute // DAY)
        m = minute % DAY
        return datetime.combine(d, time(m // 60, m % 60), ZoneInfo(self.zone)).timestamp()

    def starting_on(self, day: date) -> tuple[float, float] | None:
        """The window that starts on local date ``day`` as (start, end) Unix seconds, if that is a listed weekday."""
        if day.weekday() not in self.weekdays:
            return None
        end = self.end + DAY if self.crosses_midnight else self.end
        return self._instant(day, self.start), self._instant(day, end)

    def between(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """The windows that overlap [t0, t1), in time order."""
        tz = ZoneInfo(self.zone)
        first = datetime.fromtimestamp(t0, tz).date() - timedelta(days=1)  # a window of yesterday may still run
        last = datetime.fromtimestamp(t1, tz).date()
        out = []
        day = first
        while day <= last:
            w = self.starting_on(day)
            if w is not None and w[1] > t0 and w[0] < t1:
                out.append(w)
            day += timedelta(days=1)
        return out

    def next_windows(self, now: float, count: int) -> list[tuple[float, float]]:
        """The window running at ``now`` (if any) and the next ones, ``count`` in all."""
        out: list[tuple[float, float]] = []
        span = 8 * 86400.0
        t0 = now
        while len(out) < count:
            out.extend(w for w in self.between(t0, t0 + span) if not out or w[0] > out[-1][0])
            t0 += span
        return out[:count]

    def contains(self, ts: float) -> bool:
        return bool(self.between(ts, ts + 1e-6))

    def json(self) -> dict[str, object]:
        return {"weekdays": [WEEKDAYS[d] for d in sorted(self.weekdays)], "startTime": _hhmm(self.start),
                "endTime": _hhmm(self.end), "timeZone": self.zone}


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _minutes(text: object, where: str, *, end: bool) -> int:
    m = _TIME.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise WindowError(f"{where}: expected HH:MM, got {text!r}")
    h, mi = int(m.group(1)), int(m.group(2))
    minute = h * 60 + mi
    if mi > 59 or minute > DAY or (minute == DAY and not end):
        raise WindowError(f"{where}: {text!r} out of range (00:00 to {'24:00' if end else '23:59'})")
    return minute


def _weekdays(raw: object) -> frozenset[int]:
    if not isinstance(raw, list) or not raw:
        raise WindowError("weekdays: expected a non-empty list of day names (monday ... sunday)")
    out: set[int] = set()
    for i, d in enumerate(raw):
        name = d.strip().lower() if isinstance(d, str) else None
        if name not in WEEKDAYS:
            raise WindowError(f"weekdays[{i}]: expected a day name (monday ... sunday), got {d!r}")
        out.add(WEEKDAYS.index(name))
    return frozenset(out)


def parse_window(weekdays: object, start: object, end: object, zone: object) -> WeeklyWindow:
    days = _weekdays(weekdays)
    a = _minutes(start, "startTime", end=False)
    b = _minutes(end, "endTime", end=True)
    if a == b:
        raise WindowError("endTime: equal to startTime (a window of no length; 00:00 to 24:00 is a whole day)")
    if not isinstance(zone, str) or not zone or zone == "Local":
        raise WindowError("timeZone: required, an IANA time zone name such as Europe/Berlin or UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"timeZone: unknown time zone {zone!r}") from None
    return WeeklyWindow(days, a, b, zone)

