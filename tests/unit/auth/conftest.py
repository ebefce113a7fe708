"""The identity state on both backends: a SQLite file and PostgreSQL at 127.0.0.1:5432 (a schema of
its own per test, dropped afterwards). Without PostgreSQL the PostgreSQL cases skip, or fail when
the environment variable CI is set."""

from __future__ import annotations

import os
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
        try:
            eng = create_engine(url)
            with eng.connect() as c:
                c.execute(text("select 1"))
            eng.dispose()
            return url
        except Exception:
            continue
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDb]:
    if request.param == "sqlite":
        db = StateDb(f"sqlite:///{tmp_path / 'auth.db'}")
        yield db
        db.close()
        return
    base = _pg_base_url()
    if base is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (database test, user postgres or root)")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
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
