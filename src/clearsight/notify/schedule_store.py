"""Recurring silence schedules in the state database (table ``silence_schedules``, migration 0010), always
read and written under an organisation (a schedule of another organisation is not found); ``all()``
is the notifier's view across organisations (notify/schedules.py materialises their windows)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa

from clearsight.auth.state import StateDb
from clearsight.notify.recurring import WeeklyWindow
from clearsight.notify.schedules import ScheduleInput, SilenceSchedule
from clearsight.notify.silences import matcher_from_json, matcher_json

_meta = sa.MetaData()
TABLE = sa.Table(
    "silence_schedules",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("org", sa.String(128), nullable=False),
    sa.Column("matchers", sa.Text, nullable=False),
    sa.Column("weekdays", sa.String(32), nullable=False),
    sa.Column("start_min", sa.Integer, nullable=False),
    sa.Column("end_min", sa.Integer, nullable=False),
    sa.Column("zone", sa.String(64), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)
MAX_PER_ORG = 200


class ScheduleNotFound(LookupError):
    pass


class ScheduleLimit(RuntimeError):
    pass


def _row(r: Any) -> SilenceSchedule:
    matchers = tuple(matcher_from_json(m, "matcher") for m in orjson.loads(r.matchers))
    days = frozenset(int(d) for d in r.weekdays.split(","))
    return SilenceSchedule(r.id, r.org, matchers, WeeklyWindow(days, r.start_min, r.end_min, r.zone), r.comment,
                           r.created_by, r.created_ms / 1000)


class ScheduleStore:
    def __init__(self, db: StateDb, clock: Callable[[], float] = time.time) -> None:
        self.engine = db.engine
        self.clock = clock

    def of_org(self, org: str) -> list[SilenceSchedule]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(TABLE).where(TABLE.c.org == org).order_by(TABLE.c.created_ms, TABLE.c.id))
            return [_row(r) for r in rows]

    def all(self) -> list[SilenceSchedule]:
        with self.engine.connect() as c:
            return [_row(r) for r in c.execute(sa.select(TABLE).order_by(TABLE.c.created_ms, TABLE.c.id))]

    def create(self, org: str, s: ScheduleInput, by: str) -> SilenceSchedule:
        now_ms = int(self.clock() * 1000)
        sid = uuid.uuid4().hex
        w = s.window
        with self.engine.begin() as c:
            n = c.execute(sa.select(sa.func.count()).select_from(TABLE).where(TABLE.c.org == org)).scalar_one()
            if n >= MAX_PER_ORG:
                raise ScheduleLimit(f"the organisation has {n} recurring silences, the limit is {MAX_PER_ORG}")
            c.execute(TABLE.insert().values(
                id=sid, org=org, matchers=orjson.dumps([matcher_json(m) for m in s.matchers]).decode(),
                weekdays=",".join(str(d) for d in sorted(w.weekdays)), start_min=w.start, end_min=w.end, zone=w.zone,
                comment=s.comment, created_by=by, created_ms=now_ms))
        return SilenceSchedule(sid, org, s.matchers, w, s.comment, by, now_ms / 1000)

    def delete(self, org: str, sid: str) -> None:
        with self.engine.begin() as c:
            n = c.execute(TABLE.delete().where(TABLE.c.org == org, TABLE.c.id == sid)).rowcount
        if not n:
            raise ScheduleNotFound(f"recurring silence {sid!r} not found")
