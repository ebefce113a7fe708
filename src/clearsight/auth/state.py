"""Where the identity state lives: the SQL engine (SQLite in the data directory by default, or
PostgreSQL) and its schema, brought to the newest migration at start."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def engine_url(state_url: str, data_dir: str | Path) -> str:
    """``auth.state_url`` as a SQLAlchemy URL ("" = ``<data_dir>/auth.db``; psycopg 3 for PostgreSQL)."""
    if not state_url:
        return f"sqlite:///{Path(data_dir).resolve() / 'auth.db'}"
    if state_url.startswith("postgresql://"):
        return "postgresql+psycopg://" + state_url[len("postgresql://"):]
    return state_url


# Page size of a new SQLite file (an existing file keeps its own; SQLite's default is 4096). Every
# table and index takes at least one page: the freshly migrated schema (20 tables, 22 indexes) is 45
# pages, 180 KiB at 4 KiB and 53 KiB at 1 KiB (32 KiB at 512, where rows of a few hundred bytes,
# audit entries, spill to overflow pages). 1 KiB was SQLite's default until 3.12.
SQLITE_PAGE_SIZE = 1024


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before WAL mode: a no-op once the file exists
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def open_engine(url: str, **kwargs: Any) -> Engine:
    """An engine on ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


VERSION_TABLE = "clearsight_auth_version"  # alembic's version table (migrations/env.py)
_REVISION = re.compile(r'^(down_)?revision = (None|"([^"]+)")$', re.MULTILINE)


def head_revision() -> str:
    """The newest migration's revision: the one of ``migrations/versions`` that no other names as
    its ``down_revision`` (the migrations form one chain). Read from the files' text, so a start
    whose database is already there needs no alembic (its import and upgrade check took ~0.12 s
    of CPU at every start)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("v*.py"):
        for m in _REVISION.finditer(path.read_text()):
            if m.group(1) is None:
                revisions.add(m.group(3))
            elif m.group(3) is not None:
                parents.add(m.group(3))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"auth migrations: expected one head revision, found {sorted(heads)}")
    return heads.pop()


def at_head(engine: Engine) -> bool:
    """Whether the database records exactly the newest migration as applied."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        applied = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return applied == [head_revision()]


def migrate(engine: Engine) -> None:
    """Runs every migration not yet applied (``migrations/versions``), in one transaction; nothing
    (and no alembic import) when the database is already at the newest."""
    if at_head(engine):
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Alembic announces every plugin and step at INFO: a first start would print a dozen lines of it.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class StateDb:
    """The engine and a session factory; ``close()`` releases the pool."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.engine = open_engine(url, **engine_kwargs)
        migrate(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()
