"""``clearsight users|orgs|roles|apikeys`` on the state database of a data directory."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from clearsight.auth.directory import now_ms
from clearsight.auth.system import open_state
from clearsight.auth.tokens import token_hash
from clearsight.cli.main import app
from clearsight.config import load_config


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args), input=stdin)
    return r.exit_code, r.output


def test_cli_round_trip(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert run("orgs", "create", "team-b", *d)[0] == 0
    assert run("orgs", "create", "../x", *d)[0] == 1
    code, out = run("users", "create", "bob", "--role", "editor", "--org", "team-b", "--password-stdin", *d,
                    stdin="long enough password\n")
    assert code == 0 and "bob" in out
    code, out = run("users", "create", "eve", "--password", "short", *d)
    assert code == 1 and "at least 12" in out
    code, out = run("roles", "create", "reader", "--permissions", "metrics:read,logs:read", "--org", "team-b", *d)
    assert code == 0
    code, out = run("apikeys", "create", "prom", "--role", "reader", "--org", "team-b", "-o", "json", *d)
    assert code == 0
    created = orjson.loads(out)
    key = created["key"]
    assert key.startswith("cs_") and created["role"] == "reader"
    code, out = run("apikeys", "list", "--org", "team-b", "-o", "json", *d)
    listed = orjson.loads(out)
    assert [k["prefix"] for k in listed] == [key[:10]] and "key" not in listed[0]
    assert run("apikeys", "revoke", str(created["id"]), "--org", "default", *d)[0] == 1  # another org's id
    assert run("apikeys", "revoke", str(created["id"]), "--org", "team-b", *d)[0] == 0
    assert run("roles", "revoke", "reader", "--org", "team-b", *d)[0] == 0
    assert run("users", "revoke", "bob", *d)[0] == 0
    code, out = run("users", "list", "--org", "team-b", "-o", "json", *d)
    assert [(u["username"], u["disabled"]) for u in orjson.loads(out)] == [("bob", True)]
    db, directory, keys = open_state(load_config(env={}, overrides={"storage.data_dir": str(tmp_path)}))
    try:
        assert keys.grant(token_hash(key), now_ms()) is None
        assert [o.name for o in directory.list_orgs()] == ["team-b"]
    finally:
        db.close()
    assert run("orgs", "revoke", "team-b", *d)[0] == 0
