"""The audit log: append-only and hash-chained, in the state database.

Each entry stores ``hash = sha256(prev_hash + canonical(entry))`` where ``canonical`` is the sorted-key
JSON of every column but the hash itself (the id included), and ``prev_hash`` is the hash of the entry
before it (64 zeros for the first). Ids are consecutive from 1. ``verify`` recomputes the chain: a
modified row breaks its own hash, a deleted row leaves a gap in the ids and breaks the next row's
``prev_hash``, and the one-row ``audit_head`` table (the last id and hash, updated in the same
transaction as every append) reveals a deleted tail. Appends lock the head row first, so concurrent
writers (server and CLI, several workers) are serialised on SQLite and PostgreSQL alike.

Limit (documented in docs/security.md): someone who can write the database can rewrite the whole
chain and the head consistently; the chain proves integrity against partial edits, not against the
database's owner. Copy ``clearsight audit verify`` output (the head hash) elsewhere to anchor it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select, update

from clearsight.auth.models import AuditEntry, AuditHead
from clearsight.auth.state import StateDb

GENESIS = "0" * 64
SUCCESS = "success"
FAILURE = "failure"
MAX_LIMIT = 5000

# column -> maximum length (longer values are cut before hashing, so PostgreSQL stores what was hashed)
_LIMITS = {"org": 128, "actor": 200, "action": 64, "target": 256, "outcome": 16, "source_ip": 64,
           "user_agent": 256, "trace_id": 32}
_FIELDS = ("id", "ts_ms", "org", "actor", "action", "target", "outcome", "source_ip", "user_agent", "trace_id",
           "detail", "prev_hash")


@dataclass(frozen=True)
class AuditEvent:
    """What happened: ``outcome`` is "success" or "failure"; ``detail`` never holds secrets."""

    action: str
    outcome: str
    org: str
    actor: str
    target: str = ""
    source_ip: str = ""
    user_agent: str = ""
    trace_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head_hash: str
    problems: list[str]


def entry_hash(row: dict[str, Any]) -> str:
    canonical = orjson.dumps({k: row[k] for k in _FIELDS}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(row["prev_hash"].encode() + canonical).hexdigest()


def _row_dict(e: AuditEntry) -> dict[str, Any]:
    return {k: getattr(e, k) for k in (*_FIELDS, "hash")}


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    """An entry as the API and CLI show it (detail parsed)."""
    out = dict(row)
    out["detail"] = orjson.loads(row["detail"]) if row["detail"] else {}
    return out


class AuditLog:
    def __init__(self, db: StateDb) -> None:
        self.db = db

    def record(self, ev: AuditEvent, now_ms: int | None = None) -> int:
        """Appends ``ev``; returns its id."""
        ts = int(time.time() * 1000) if now_ms is None else now_ms
        values: dict[str, Any] = {
            "ts_ms": ts, "org": ev.org, "actor": ev.actor, "action": ev.action, "target": ev.target,
            "outcome": ev.outcome, "source_ip": ev.source_ip, "user_agent": ev.user_agent, "trace_id": ev.trace_id,
            "detail": orjson.dumps(ev.detail, option=orjson.OPT_SORT_KEYS).decode() if ev.detail else "",
        }
        for k, n in _LIMITS.items():
            values[k] = str(values[k])[:n]
        with self.db.session() as s, s.begin():
            # the UPDATE takes the write lock (SQLite) / row lock (PostgreSQL) before the head is read
            s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
            head = s.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
            values["id"] = int(head.seq)
            values["prev_hash"] = head.hash
            values["hash"] = entry_hash(values)
            s.add(AuditEntry(**values))
            s.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=values["hash"]))
        return int(values["id"])

    def query(self, org: str | None, *, actor: str | None = None, action: str | None = None,
              outcome: str | None = None, since_ms: int | None = None, until_ms: int | None = None,
              limit: int = 1000) -> list[dict[str, Any]]:
        """Entries of ``org`` (None: every organisation), newest first."""
        q = select(AuditEntry)
        if org is not None:
            q = q.where(AuditEntry.org == org)
        if actor:
            q = q.where(AuditEntry.actor == actor)
        if action:
            q = q.where(AuditEntry.action == action)
        if outcome:
            q = q.where(AuditEntry.outcome == outcome)
        if since_ms is not None:
            q = q.where(AuditEntry.ts_ms >= since_ms)
        if until_ms is not None:
            q = q.where(AuditEntry.ts_ms <= until_ms)
        q = q.order_by(AuditEntry.id.desc()).limit(max(1, min(limit, MAX_LIMIT)))
        with self.db.session() as s:
            return [public_view(_row_dict(e)) for e in s.scalars(q)]

    def verify(self, max_problems: int = 20) -> VerifyResult:
        """Walks the whole chain (in id order, in batches) and the head."""
        problems: list[str] = []
        prev_hash, expect_id, n = GENESIS, 1, 0
        with self.db.session() as s:
            head = s.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
            last = 0
            while True:
                batch = list(s.scalars(select(AuditEntry).where(AuditEntry.id > last)
                                       .order_by(AuditEntry.id).limit(2000)))
                if not batch:
                    break
                for e in batch:
                    row = _row_dict(e)
                    if e.id != expect_id:
                        problems.append(f"entries {expect_id}..{e.id - 1} are missing (deleted)")
                    if e.prev_hash != prev_hash:
                        problems.append(f"entry {e.id}: prev_hash does not match the entry before it")
                    if entry_hash(row) != e.hash:
                        problems.append(f"entry {e.id}: contents do not match its hash (modified)")
                    prev_hash, expect_id, last = e.hash, e.id + 1, e.id
                    n += 1
        if head is None:
            problems.append("audit_head is missing")
        else:
            if int(head.seq) != expect_id - 1:
                problems.append(f"the head says {head.seq} entries were written, the log holds entries up to "
                                f"{expect_id - 1} (newest entries deleted)")
            elif head.hash != prev_hash:
                problems.append("the head hash does not match the newest entry")
        return VerifyResult(not problems, n, prev_hash, problems[:max_problems])
