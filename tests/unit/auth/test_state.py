"""The identity state layer (directory, keys, sessions, bootstrap) on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import bcrypt
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from clearsight.auth.bootstrap import ADMIN_USER, BootstrapError, bootstrap
from clearsight.auth.directory import LOCKOUT_AFTER, Directory, lock_duration_s, now_ms
from clearsight.auth.errors import Conflict, InvalidInput, LockedOut, NotFound, Unauthenticated
from clearsight.auth.keys import ApiKeys
from clearsight.auth.permissions import BUILTIN_ROLES
from clearsight.auth.sessions import Sessions
from clearsight.auth.state import MIGRATIONS, SQLITE_PAGE_SIZE, StateDb, at_head, head_revision, migrate
from clearsight.auth.tokens import token_hash

PW = "correct horse battery"


def test_migrations_create_the_tables_and_run_once(state: StateDb) -> None:
    names = set(inspect(state.engine).get_table_names())
    assert {"organisations", "users", "memberships", "roles", "role_permissions", "api_keys",
            "refresh_families", "refresh_tokens", "server_secrets", "clearsight_auth_version"} <= names
    assert "sessions" not in names  # opaque sessions gave way to JWT + refresh tokens (migration 0006)
    migrate(state.engine)  # a second run is a no-op
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with state.engine.connect() as c:
        assert c.execute(text("select version_num from clearsight_auth_version")).scalars().all() == [head]



def test_head_revision_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_a_database_at_the_head_opens_without_running_alembic(state: StateDb,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import alembic.command

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("alembic ran on a database already at the head")

    assert at_head(state.engine)
    monkeypatch.setattr(alembic.command, "upgrade", refuse)
    migrate(state.engine)  # a no-op, without alembic
    with state.engine.begin() as c:  # an older recorded revision is not the head: alembic would run
        c.execute(text("update clearsight_auth_version set version_num = '0009'"))
    assert not at_head(state.engine)
    with pytest.raises(AssertionError, match="alembic ran"):
        migrate(state.engine)


def test_a_new_database_is_not_at_the_head(tmp_path: Path) -> None:
    from clearsight.auth.state import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert not at_head(engine)
    finally:
        engine.dispose()

def test_orgs_users_memberships(directory: Directory) -> None:
    assert [o.name for o in directory.list_orgs()] == ["default", "team-b"]
    with pytest.raises(Conflict):
        directory.create_org("default")
    with pytest.raises(InvalidInput, match="invalid organisation name"):
        directory.create_org("../etc")
    alice = directory.create_user("alice", PW, "default", "viewer")
    assert [m.username for m in directory.list_members("default")] == ["alice"]
    assert directory.list_members("team-b") == []
    with pytest.raises(NotFound):
        directory.member("team-b", alice.id)  # an id of another organisation is not found
    directory.set_membership("alice", "team-b", "editor")
    assert directory.memberships(alice.id) == {"default": "viewer", "team-b": "editor"}
    directory.remove_member("default", alice.id)
    assert directory.memberships(alice.id) == {"team-b": "editor"}
    directory.remove_member("team-b", alice.id)  # last membership: the user is gone
    with pytest.raises(Unauthenticated):
        directory.login("alice", PW)


@pytest.mark.parametrize(("password", "why"), [("short", "at least 12"), ("alice", "at least 12"),
                                               ("Alice-Alice-", None)])
def test_password_policy(directory: Directory, password: str, why: str | None) -> None:
    if why is None:
        directory.create_user("alice-alice-", "Alice-Alice-x", "default", "viewer")
        with pytest.raises(InvalidInput, match="must not be the username"):
            directory.create_user("alice-alice-x", "Alice-Alice-X", "default", "viewer")
        return
    with pytest.raises(InvalidInput, match=why):
        directory.create_user("alice", password, "default", "viewer")


def test_user_input_is_checked(directory: Directory) -> None:
    with pytest.raises(InvalidInput, match="username"):
        directory.create_user("bad name", PW, "default", "viewer")
    with pytest.raises(InvalidInput, match="unknown role"):
        directory.create_user("bob", PW, "default", "nope")
    with pytest.raises(NotFound):
        directory.create_user("bob", PW, "nowhere", "viewer")
    directory.create_user("bob", PW, "default", "viewer")
    with pytest.raises(Conflict):
        directory.create_user("bob", PW, "default", "viewer")


def test_login_lockout_with_backoff(directory: Directory) -> None:
    directory.create_user("carol", PW, "default", "editor")
    t = now_ms()
    for _ in range(LOCKOUT_AFTER - 1):
        with pytest.raises(Unauthenticated):
            directory.login("carol", "wrong password!", now=t)
    assert directory.login("carol", PW, now=t).orgs == {"default": "editor"}  # resets the count
    for _ in range(LOCKOUT_AFTER):
        with pytest.raises(Unauthenticated):
            directory.login("carol", "wrong password!", now=t)
    with pytest.raises(LockedOut) as e:
        directory.login("carol", PW, now=t)  # locked: even the right password is refused
    assert e.value.status == 429 and 0 < e.value.retry_after_s <= lock_duration_s(LOCKOUT_AFTER)
    later = t + int(lock_duration_s(LOCKOUT_AFTER) * 1000) + 1
    with pytest.raises(Unauthenticated):
        directory.login("carol", "wrong password!", now=later)  # the 6th failure locks for twice as long
    with pytest.raises(LockedOut) as e2:
        directory.login("carol", PW, now=later)
    assert e2.value.retry_after_s == pytest.approx(lock_duration_s(LOCKOUT_AFTER + 1), abs=0.01)
    assert lock_duration_s(LOCKOUT_AFTER + 1) == 2 * lock_duration_s(LOCKOUT_AFTER)
    assert directory.login("carol", PW, now=later + 3000).username == "carol"


def test_unknown_user_and_disabled_user_fail_alike(directory: Directory) -> None:
    directory.create_user("dave", PW, "default", "viewer")
    directory.disable_user("dave")
    for user in ("dave", "nobody"):
        with pytest.raises(Unauthenticated, match="invalid username or password"):
            directory.login(user, PW)


def test_bcrypt_hash_verifies_and_is_upgraded_to_argon2id(directory: Directory, state: StateDb) -> None:
    directory.create_user("erin", "placeholder-password", "default", "viewer")
    directory.set_password_hash("erin", bcrypt.hashpw(PW.encode(), bcrypt.gensalt(rounds=4)).decode())
    with pytest.raises(Unauthenticated):
        directory.login("erin", "wrong password!")
    assert directory.login("erin", PW).username == "erin"
    with state.engine.connect() as c:
        stored = c.execute(text("select password_hash from users where username='erin'")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert directory.login("erin", PW).username == "erin"


def test_custom_roles(directory: Directory) -> None:
    directory.create_role("default", "payments-reader", ["metrics:read", "logs:read"])
    assert directory.role_permissions("default", "payments-reader") == {"metrics:read", "logs:read"}
    assert directory.role_permissions("team-b", "payments-reader") is None  # per organisation
    assert directory.role_permissions("team-b", "viewer") == BUILTIN_ROLES["viewer"]
    with pytest.raises(InvalidInput, match="unknown permissions: metrics:delete"):
        directory.create_role("default", "x", ["metrics:delete"])
    with pytest.raises(Conflict):
        directory.create_role("default", "admin", ["metrics:read"])
    directory.create_user("fay", PW, "default", "payments-reader")
    with pytest.raises(Conflict, match="held by 1"):
        directory.delete_role("default", "payments-reader")
    names = [r.name for r in directory.list_roles("default")]
    assert "payments-reader" in names and "superadmin" in names


def test_api_keys(keys: ApiKeys) -> None:
    view, key = keys.create("default", "prom", "ingest", allowed_cidrs="10.0.0.0/8, ::1")
    assert key.startswith("cs_") and len(key) > 40 and view.prefix == key[:10]
    assert view.allowed_cidrs == ["10.0.0.0/8", "::1/128"]
    g = keys.grant(token_hash(key), now_ms())
    assert g is not None and g.org == "default" and g.permissions == BUILTIN_ROLES["ingest"]
    assert keys.grant(token_hash(key + "x"), now_ms()) is None
    assert [k.name for k in keys.list("default")] == ["prom"] and keys.list("team-b") == []
    with pytest.raises(NotFound):
        keys.revoke("team-b", view.id)  # another organisation's key id
    keys.record_last_used({view.id: 1234})
    assert keys.list("default")[0].last_used_ms == 1234
    keys.revoke("default", view.id)
    assert keys.grant(token_hash(key), now_ms()) is None
    _, short = keys.create("team-b", "short", "viewer", expires_ms=now_ms() + 50_000)
    assert keys.grant(token_hash(short), now_ms()) is not None
    assert keys.grant(token_hash(short), now_ms() + 60_000) is None  # expired


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"role": "nope"}, "unknown role"), ({"allowed_cidrs": "10.0.0.0/33"}, "invalid CIDR"),
    ({"expires_ms": 1}, "future"), ({"value": "abc"}, "'cs_'"), ({"name": ""}, "key name"),
])
def test_api_key_bad_input(keys: ApiKeys, kwargs: dict[str, object], why: str) -> None:
    args: dict[str, object] = {"org": "default", "name": "k", "role": "viewer", **kwargs}
    with pytest.raises(InvalidInput, match=why):
        keys.create(**args)  # type: ignore[arg-type]
    assert keys.list("default") == []


def test_sessions(directory: Directory, sessions: Sessions) -> None:
    u = directory.create_user("gus", PW, "default", "viewer")
    t = sessions.create(u.id, "default")
    token, expires = t.access, t.access_expires_ms
    g = sessions.resolve(token, now_ms())
    assert g is not None and g.username == "gus" and g.role == "viewer" and g.expires_ms == expires
    assert sessions.resolve(token, expires + 1) is None
    assert sessions.resolve("css_" + "x" * 40, now_ms()) is None
    directory.set_membership("gus", "default", "editor")  # role changes apply to live sessions
    g2 = sessions.resolve(token, now_ms())
    assert g2 is not None and g2.role == "editor"
    sessions.end(token)
    assert sessions.resolve(token, now_ms()) is None
    t2 = sessions.create(u.id, "default").access
    sessions.end_all(u.id)
    assert sessions.resolve(t2, now_ms()) is None


def test_bootstrap_random_password_printed_once(directory: Directory, keys: ApiKeys, state: StateDb) -> None:
    fresh = Directory(state)
    with state.engine.begin() as c:
        for table in ("memberships", "users", "organisations"):
            c.execute(text(f"delete from {table}"))
    out = io.StringIO()
    assert bootstrap(fresh, keys, "default", {}, out=out)
    printed = out.getvalue()
    password = next(line.strip() for line in printed.splitlines() if line.startswith("    "))
    assert fresh.login(ADMIN_USER, password).orgs == {"default": "superadmin"}
    out2 = io.StringIO()
    assert not bootstrap(fresh, keys, "default", {}, out=out2)  # second start: nothing, nothing printed
    assert out2.getvalue() == ""


def test_bootstrap_from_environment(state: StateDb) -> None:
    d = Directory(state)
    k = ApiKeys(d)
    key = "cs_" + "k" * 30
    out = io.StringIO()
    assert bootstrap(d, k, "main", {"CLEARSIGHT_AUTH_ADMIN_PASSWORD": PW, "CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY": key},
                     out=out)
    assert out.getvalue() == ""  # a given password is not printed
    assert d.login(ADMIN_USER, PW).orgs == {"main": "superadmin"}
    g = k.grant(token_hash(key), now_ms())
    assert g is not None and g.org == "main" and "orgs:cross" in g.permissions


@pytest.mark.parametrize("env", [{"CLEARSIGHT_AUTH_ADMIN_PASSWORD": "short"},
                                 {"CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY": "not-a-key"}])
def test_bootstrap_refuses_bad_secrets_and_creates_nothing(state: StateDb, env: dict[str, str]) -> None:
    d = Directory(state)
    with pytest.raises(BootstrapError):
        bootstrap(d, ApiKeys(d), "default", env, out=io.StringIO())
    assert d.count_orgs() == 0


def test_a_new_sqlite_file_uses_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    new = tmp_path / "new.db"
    StateDb(f"sqlite:///{new}").close()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as c:  # a file created before: SQLite's default 4 KiB pages
        c.execute("PRAGMA page_size=4096")
        c.execute("CREATE TABLE t (x)")
    db = StateDb(f"sqlite:///{old}")
    try:
        Directory(db).create_org("team-c")  # the migrated schema works in the old file
    finally:
        db.close()
    with sqlite3.connect(new) as c:
        assert c.execute("PRAGMA page_size").fetchone() == (SQLITE_PAGE_SIZE,)
        pages = c.execute("PRAGMA page_count").fetchone()[0]
    assert new.stat().st_size == pages * SQLITE_PAGE_SIZE < 4096 * pages
    with sqlite3.connect(old) as c:
        assert c.execute("PRAGMA page_size").fetchone() == (4096,)
