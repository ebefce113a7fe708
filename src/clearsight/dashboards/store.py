"""Dashboards in the state database (table ``dashboards``, migration 0007), one row per dashboard,
always read and written under an organisation: a dashboard of another organisation is not found."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from clearsight.auth.state import StateDb
from clearsight.dashboards.model import Dashboard

_meta = sa.MetaData()
TABLE = sa.Table(
    "dashboards",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("org", sa.String(128), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
)
MAX_PER_ORG = 1000


class DashboardNotFound(LookupError):
    pass


class DashboardLimit(RuntimeError):
    pass


class VersionConflict(RuntimeError):
    pass


@dataclass(frozen=True)
class Stored:
    id: str
    title: str
    doc: dict[str, Any]
    version: int
    created_ms: int
    updated_ms: int
    updated_by: str

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "version": self.version,
            "updated": self.updated_ms / 1000,
            "updated_by": self.updated_by,
            "panels": len(self.doc.get("panels", [])),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.doc,
            "id": self.id,
            "version": self.version,
            "created": self.created_ms / 1000,
            "updated": self.updated_ms / 1000,
            "updated_by": self.updated_by,
        }


def _row(r: Any) -> Stored:
    return Stored(r.id, r.title, orjson.loads(r.doc), r.version, r.created_ms, r.updated_ms, r.updated_by)


class DashboardStore:
    def __init__(self, db: StateDb, clock: Callable[[], float] = time.time) -> None:
        self.engine = db.engine
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def list(self, org: str) -> list[Stored]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(TABLE).where(TABLE.c.org == org).order_by(TABLE.c.title, TABLE.c.id))
            return [_row(r) for r in rows]

    def get(self, org: str, did: str) -> Stored:
        with self.engine.connect() as c:
            r = c.execute(sa.select(TABLE).where(TABLE.c.org == org, TABLE.c.id == did)).first()
        if r is None:
            raise DashboardNotFound(f"dashboard {did!r} not found")
        return _row(r)

    def create(self, org: str, d: Dashboard, by: str) -> Stored:
        now = self._now()
        did = uuid.uuid4().hex
        with self.engine.begin() as c:
            n = c.execute(
                sa.select(sa.func.count()).select_from(TABLE).where(TABLE.c.org == org)
            ).scalar_one()
            if n >= MAX_PER_ORG:
                raise DashboardLimit(f"the organisation has {n} dashboards, the limit is {MAX_PER_ORG}")
            c.execute(
                TABLE.insert().values(
                    id=did,
                    org=org,
                    title=d.title,
                    doc=orjson.dumps(d.doc()).decode(),
                    version=1,
                    created_ms=now,
                    updated_ms=now,
                    updated_by=by,
                )
            )
        return Stored(did, d.title, d.doc(), 1, now, now, by)

    def update(self, org: str, did: str, d: Dashboard, by: str, version: int | None) -> Stored:
        """Replaces a dashboard; with ``version``, only if that is still the stored one (else
        ``VersionConflict``: someone saved in between)."""
        now = self._now()
        with self.engine.begin() as c:
            r = c.execute(sa.select(TABLE).where(TABLE.c.org == org, TABLE.c.id == did)).first()
            if r is None:
                raise DashboardNotFound(f"dashboard {did!r} not found")
            if version is not None and version != r.version:
                raise VersionConflict(
                    f"dashboard {did!r} was saved by {r.updated_by} since (version {r.version}, "
                    f"yours {version}): reload it"
                )
            c.execute(
                TABLE.update()
                .where(TABLE.c.org == org, TABLE.c.id == did)
                .values(
                    title=d.title,
                    doc=orjson.dumps(d.doc()).decode(),
                    version=r.version + 1,
                    updated_ms=now,
                    updated_by=by,
                )
            )
        return Stored(did, d.title, d.doc(), r.version + 1, r.created_ms, now, by)

    def delete(self, org: str, did: str) -> None:
        with self.engine.begin() as c:
            n = c.execute(TABLE.delete().where(TABLE.c.org == org, TABLE.c.id == did)).rowcount
        if not n:
            raise DashboardNotFound(f"dashboard {did!r} not found")
