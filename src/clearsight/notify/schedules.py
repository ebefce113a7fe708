"""Recurring silences: a schedule (matchers, a weekly window in a time zone, a comment) whose windows are
materialised as ordinary silences, so Alertmanager API clients (amtool, Grafana) see and can expire them.

``materialise`` runs in the notifier's maintenance loop (and right after a schedule is created or
deleted): for each schedule, the window running now and the ones starting within ``HORIZON`` get a
silence (pending until its window starts, so muting starts at the exact instant, not at the next
maintenance run), marked ``schedule="<id>@<window start>"``. A window gets its silence once: a
silence someone expired early is not created again for that window. The non-expired silences of a
schedule that no longer exists are expired.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearsight.model.matchers import Matcher
from clearsight.notify.alert import format_time
from clearsight.notify.recurring import WeeklyWindow, WindowError, parse_window
from clearsight.notify.silences import SilenceError, Silences, matcher_from_json, matcher_json

log = logging.getLogger("clearsight.notify.schedules")

HORIZON = 24 * 3600.0  # windows starting this far ahead already have their (pending) silence
MAX_COMMENT = 1000


@dataclass(frozen=True)
class SilenceSchedule:
    id: str
    org: str
    matchers: tuple[Matcher, ...]
    window: WeeklyWindow
    comment: str
    created_by: str
    created_at: float

    def json(self, now: float, upcoming: int = 3) -> dict[str, Any]:
        return {"id": self.id, "matchers": [matcher_json(m) for m in self.matchers], **self.window.json(), "comment": self.comment,
                "createdBy": self.created_by, "createdAt": format_time(self.created_at),
                "windows": [{"startsAt": format_time(a), "endsAt": format_time(b)}
                            for a, b in self.window.next_windows(now, upcoming)]}


@dataclass(frozen=True)
class ScheduleInput:
    matchers: tuple[Matcher, ...]
    window: WeeklyWindow
    comment: str


def parse_schedule(body: Any) -> ScheduleInput:
    """``{"matchers": [...], "weekdays": [...], "startTime", "endTime", "timeZone", "comment"}``;
    ``SilenceError`` names the first bad field."""
    if not isinstance(body, Mapping):
        raise SilenceError("expected a schedule object")
    raw = body.get("matchers")
    if not isinstance(raw, list) or not raw:
        raise SilenceError("matchers: at least one matcher required")
    matchers = tuple(matcher_from_json(m, f"matchers[{i}]") for i, m in enumerate(raw))
    if all(m.matches_empty() for m in matchers):
        raise SilenceError("matchers: at least one matcher must not match the empty string "
                           "(a silence must not match every alert)")
    try:
        window = parse_window(body.get("weekdays"), body.get("startTime"), body.get("endTime"), body.get("timeZone"))
    except WindowError as e:
        raise SilenceError(str(e)) from None
    comment = body.get("comment")
    if not isinstance(comment, str) or not comment.strip():
        raise SilenceError("comment: required (say why the alerts are muted)")
    if len(comment) > MAX_COMMENT:
        raise SilenceError(f"comment: at most {MAX_COMMENT} characters")
    return ScheduleInput(matchers, window, comment.strip())


def window_key(schedule_id: str, start: float) -> str:
    return f"{schedule_id}@{int(start)}"


def materialise(silences: Silences, schedules: Sequence[SilenceSchedule], now: float) -> tuple[int, int]:
    """Creates the silences of the windows running now or starting within ``HORIZON`` and expires those of
    deleted schedules; returns (created, expired)."""
    have = {s.schedule for s in silences.all() if s.schedule}
    created = 0
    for sch in schedules:
        for start, end in sch.window.between(now, now + HORIZON):
            key = window_key(sch.id, start)
            if key in have or end <= now:
                continue
            try:
                silences.put(sch.matchers, start, end, sch.created_by,
                             f"{sch.comment} (recurring window of schedule {sch.id})", schedule=key)
            except SilenceError as e:  # not expected: the schedule was validated when stored
                log.error("cannot create the silence of a recurring window: %s", e, extra={"schedule": sch.id})
                continue
            have.add(key)
            created += 1
    live = {sch.id for sch in schedules}
    expired = 0
    for s in silences.all():
        if s.schedule and s.schedule.split("@", 1)[0] not in live and s.state(now) != "expired":
            silences.expire(s.id)
            expired += 1
    return created, expired
