"""Contract of the kernel's database wrapper: reader cursors are pooled, refused once closed or
when the store says it is not usable, and closing closes everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.store.interface import StoreClosed
from clearsight.store.kernel.database import Database


def test_reader_cursors_are_pooled_and_refused_after_close(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.duckdb", checkpoint_threshold="16MB", threads=1, memory_limit="64MB", what="x store")
    db.writer.execute("CREATE TABLE t (v INTEGER)")
    db.writer.execute("INSERT INTO t VALUES (1), (2)")
    with db.reader() as cur:
        first = cur
        assert cur.execute("SELECT sum(v) FROM t").fetchone() == (3,)
    with db.reader() as cur:
        assert cur is first  # returned to the pool and reused
    with pytest.raises(StoreClosed, match="x store is closed"), db.reader(lambda: False):
        pass
    db.close()
    db.close()  # idempotent
    with pytest.raises(StoreClosed), db.reader():
        pass
