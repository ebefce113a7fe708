"""The hash-chained audit log on SQLite and PostgreSQL: appends chain, filters and org scoping, and
``verify`` catches a row modified, deleted in the middle, deleted at the tail, or a forged head,
each done with plain SQL as an attacker with database access would."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import text

from clearsight.auth.audit import FAILURE, GENESIS, SUCCESS, AuditEvent, AuditLog, entry_hash
from clearsight.auth.state import StateDb


def _fill(log: AuditLog, n: int = 6) -> None:
    for i in range(n):
        log.record(AuditEvent("auth.login", SUCCESS if i % 2 == 0 else FAILURE, "default" if i < 4 else "team-b",
                              f"user:u{i}", target="/api/v1/auth/login", source_ip="10.0.0.1",
                              user_agent="curl/8", trace_id=f"{i:032x}", detail={"status": 200}), now_ms=1000 * (i + 1))


def test_entries_chain_from_genesis_and_verify(state: StateDb) -> None:
    log = AuditLog(state)
    assert log.verify().ok and log.verify().entries == 0 and log.verify().head_hash == GENESIS
    _fill(log)
    res = log.verify()
    assert res.ok and res.entries == 6 and res.problems == []
    rows = list(reversed(log.query(None)))
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["prev_hash"] == GENESIS
    for a, b in itertools.pairwise(rows):
        assert b["prev_hash"] == a["hash"]
    raw = {**rows[2], "detail": '{"status":200}'}
    assert entry_hash(raw) == rows[2]["hash"]
    assert res.head_hash == rows[-1]["hash"]


def test_query_filters_and_organisation_scope(state: StateDb) -> None:
    log = AuditLog(state)
    _fill(log)
    assert [r["id"] for r in log.query("default")] == [4, 3, 2, 1]
    assert [r["id"] for r in log.query("team-b")] == [6, 5]
    assert [r["actor"] for r in log.query("default", outcome=FAILURE)] == ["user:u3", "user:u1"]
    assert [r["id"] for r in log.query("default", since_ms=2000, until_ms=3000)] == [3, 2]
    assert [r["id"] for r in log.query("default", actor="user:u2")] == [3]
    assert log.query("default", action="apikey.create") == []
    assert [r["id"] for r in log.query(None, limit=2)] == [6, 5]
    row = log.query("default", actor="user:u0")[0]
    assert row["detail"] == {"status": 200} and row["source_ip"] == "10.0.0.1" and row["trace_id"] == "0" * 32


def test_long_values_are_cut_before_hashing(state: StateDb) -> None:
    log = AuditLog(state)
    log.record(AuditEvent("x", SUCCESS, "default", "user:" + "a" * 500, user_agent="u" * 1000))
    row = log.query(None)[0]
    assert len(row["actor"]) == 200 and len(row["user_agent"]) == 256
    assert log.verify().ok


def test_concurrent_appends_keep_one_chain(state: StateDb) -> None:
    log = AuditLog(state)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(10):
                log.record(AuditEvent("a", SUCCESS, "default", f"t{t}:{i}"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    res = log.verify()
    assert res.ok and res.entries == 40, res.problems


@pytest.mark.parametrize(("sql", "expect"), [
    ("UPDATE audit_log SET outcome = 'success' WHERE id = 2", "entry 2: contents do not match its hash"),
    ("UPDATE audit_log SET detail = '{}' WHERE id = 1", "entry 1: contents do not match its hash"),
    ("DELETE FROM audit_log WHERE id = 3", "entries 3..3 are missing"),
    ("DELETE FROM audit_log WHERE id >= 5", "newest entries deleted"),
    ("UPDATE audit_head SET hash = '" + "a" * 64 + "'", "the head hash does not match"),
])
def test_tampering_with_sql_is_detected(state: StateDb, sql: str, expect: str) -> None:
    log = AuditLog(state)
    _fill(log)
    with state.engine.begin() as c:
        c.execute(text(sql))
    res = log.verify()
    assert not res.ok
    assert any(expect in p for p in res.problems), res.problems


def test_rewriting_a_row_with_its_own_new_hash_breaks_the_next_link(state: StateDb) -> None:
    log = AuditLog(state)
    _fill(log)
    row = {**list(reversed(log.query(None)))[1], "detail": '{"status":200}'}
    row["actor"] = "user:someone-else"
    forged = entry_hash(row)
    with state.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET actor = :a, hash = :h WHERE id = 2"), {"a": row["actor"], "h": forged})
    res = log.verify()
    assert not res.ok
    assert any("entry 3: prev_hash" in p for p in res.problems), res.problems
