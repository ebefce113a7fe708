"""``clearsight audit``, ``clearsight audit verify`` (exit 1 after a row is changed with SQL) and
``clearsight signing create|list|revoke`` on a state database in a data directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
from typer.testing import CliRunner

from clearsight.auth.audit import AuditEvent, AuditLog
from clearsight.auth.directory import Directory
from clearsight.auth.signing import SigningSecrets
from clearsight.auth.state import StateDb
from clearsight.cli.main import app


def _state(tmp_path: Path) -> StateDb:
    db = StateDb(f"sqlite:///{tmp_path / 'auth.db'}")
    Directory(db).create_org("default")
    return db


def test_audit_list_and_verify(tmp_path: Path) -> None:
    db = _state(tmp_path)
    log = AuditLog(db)
    log.record(AuditEvent("auth.login", "failure", "default", "user:alice", source_ip="10.1.1.1"))
    log.record(AuditEvent("apikey.create", "success", "default", "user:admin", detail={"name": "ci"}))
    db.close()
    runner = CliRunner()
    r = runner.invoke(app, ["audit", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and "apikey.create" in lines[0] and "ip=10.1.1.1" in lines[1]
    r = runner.invoke(app, ["audit", "--data-dir", str(tmp_path), "--action", "auth.login", "-o", "json"])
    assert [x["actor"] for x in orjson.loads(r.output)] == ["user:alice"]
    r = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "intact: 2 entries" in r.output
    with sqlite3.connect(tmp_path / "auth.db") as c:
        c.execute("UPDATE audit_log SET outcome = 'success' WHERE id = 1")
    r = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1 and "entry 1: contents do not match its hash" in r.output
    assert runner.invoke(app, ["audit", "--data-dir", str(tmp_path / "none")]).exit_code == 1
    assert runner.invoke(app, ["audit", "--data-dir", str(tmp_path), "--since", "soon"]).exit_code == 2


def test_signing_create_list_revoke(tmp_path: Path) -> None:
    _state(tmp_path).close()
    runner = CliRunner()
    r = runner.invoke(app, ["signing", "create", "edge", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    key_id = r.output.split("key id (x-org-key): ")[1].split()[0]
    secret = r.output.split("secret: ")[1].split()[0]
    db = StateDb(f"sqlite:///{tmp_path / 'auth.db'}")
    assert SigningSecrets(db).lookup(key_id) == ("default", secret.encode())
    r = runner.invoke(app, ["signing", "list", "--data-dir", str(tmp_path)])
    assert key_id in r.output and "active" in r.output and secret not in r.output
    assert runner.invoke(app, ["signing", "revoke", "1", "--data-dir", str(tmp_path)]).exit_code == 0
    assert SigningSecrets(db).lookup(key_id) is None
    assert runner.invoke(app, ["signing", "revoke", "99", "--data-dir", str(tmp_path)]).exit_code == 1
    assert runner.invoke(app, ["signing", "create", "x", "--org", "nope", "--data-dir", str(tmp_path)]).exit_code == 1
    db.close()
