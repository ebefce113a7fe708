"""The identity state on both backends: a SQLite file and PostgreSQL (a schema of its own per test,
dropped afterwards). PostgreSQL is the one at 127.0.0.1:5432 (database test, user postgres or root,
trust) when it answers; otherwise a private server started here (initdb, a free port on 127.0.0.1,
stopped by PID; as the postgres user when running as root). Without either, the PostgreSQL cases
skip, or fail when the environment variable CI is set."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from clearsight.auth.directory import Directory
from clearsight.auth.keys import ApiKeys
from clearsight.auth.sessions import Sessions
from clearsight.auth.state import StateDb

PG_USERS = ("postgres", "root")


def _pg_base_url() -> str | None:
    for user in PG_USERS:
        url = f"postgresql+psycopg://{user}@127.0.0.1:5432/test"
        if _answers(url):
            return url
    return None


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _answers(url: str) -> bool:
    try:
        eng = create_engine(url)
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A PostgreSQL URL (SQLAlchemy, psycopg 3), or None when none can be had."""
    base = _pg_base_url()
    if base is not None:
        yield base
        return
    initdb, postgres = _pg_binary("initdb"), _pg_binary("postgres")
    if initdb is None or postgres is None:
        yield None
        return
    from tests.support.peers import free_port

    as_user: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="cs-auth-pg-"))
    if os.getuid() == 0:  # initdb refuses root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres")
    data = tmp / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*as_user, postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                             "-k", str(tmp), "-c", "fsync=off"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                yield None
                return
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None) -> Iterator[StateDb]:
    if request.param == "sqlite":
        db = StateDb(f"sqlite:///{tmp_path / 'auth.db'}")
        yield db
        db.close()
        return
    base = pg_url
    if base is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL: none at 127.0.0.1:5432 and none could be started (install postgresql)")
        pytest.skip("PostgreSQL: none at 127.0.0.1:5432 and none could be started")
    schema = f"cs_auth_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        db = StateDb(base, connect_args={"options": f"-csearch_path={schema}"})
        try:
            yield db
        finally:
            db.close()
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def directory(state: StateDb) -> Directory:
    d = Directory(state)
    d.create_org("default")
    d.create_org("team-b")
    return d


@pytest.fixture
def keys(directory: Directory) -> ApiKeys:
    return ApiKeys(directory)


@pytest.fixture
def sessions(directory: Directory) -> Sessions:
    return Sessions(directory, ttl_ms=3_600_000)
