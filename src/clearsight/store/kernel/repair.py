"""Start-up repair of a damaged DuckDB WAL or database file, the way Prometheus repairs its WAL:
keep every intact commit before the damage, move the damaged file aside, say exactly what was lost,
start.

DuckDB's WAL (format measured on DuckDB 2.0, ``storage_version`` of 1.x files): a header object,
then entries framed as ``[u64 size][u64 checksum][size bytes]``, each a serialized object whose first
field (id 100) is the entry type; a commit ends with a ``WAL_FLUSH`` entry (type 100). On open
DuckDB replays the WAL and

- stops silently at an incomplete last entry (a write cut short by a crash: never acknowledged,
  because an acknowledgement waits for the fsync of the whole commit);
- refuses to open at all when an entry's checksum does not match ("Corrupt WAL file: entry at byte
  position N ..."): before this module the server exited with a traceback, and moving the WAL
  aside by hand lost every commit since the last checkpoint.

``repair_wal`` walks the framing (no checksums needed: DuckDB names the damaged entry), cuts the
WAL after the last complete commit before the damage, keeps the original as
``<wal>.damaged-<ts>`` and reports the commits, entries and bytes dropped. Commits *after* the
damage are not replayed: they may depend on the damaged one (a series created there), and DuckDB
has no way to skip a transaction.

A damaged database file (its headers or the blocks DuckDB reads at open) cannot be opened at all;
``quarantine`` moves it and its WAL aside (``.damaged-<ts>``) so the store starts empty, and the
caller logs that everything that was in it is lost (the files are kept for offline recovery).
Errors that are not damage (a lock held by another process, permissions) are never "repaired".
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

WAL_FLUSH = 100  # DuckDB WALType::WAL_FLUSH: the last entry of every commit
_HDR = struct.Struct("<QQ")
_POSITION = re.compile(r"byte position (\d+)")
_WAL_DAMAGE = ("Corrupt WAL file", "Failure while replaying WAL file")
_FILE_DAMAGE = ("Corrupt database file", "is not a valid DuckDB database file",
                "Could not read enough bytes from file")


def is_wal_damage(e: BaseException) -> bool:
    return any(m in str(e) for m in _WAL_DAMAGE)


def is_file_damage(e: BaseException) -> bool:
    return not is_wal_damage(e) and any(m in str(e) for m in _FILE_DAMAGE)


@dataclass(frozen=True)
class WalLayout:
    """The WAL's framing: where each complete commit ends, and where the framing breaks (an entry
    running past the end of the file), if anywhere."""

    size: int
    header_end: int
    commit_ends: list[int]  # offsets just after each WAL_FLUSH entry, ascending
    entry_starts: list[int]
    broken_at: int | None  # offset of an entry whose frame runs past the end
    flushes_after_break: int = 0  # complete WAL_FLUSH frames found in the bytes after broken_at

    @property
    def damaged_framing(self) -> bool:
        """The framing breaks before a later complete commit: damage, not a write cut short (a
        crash can only cut the last commit, which DuckDB writes and fsyncs as one piece)."""
        return self.broken_at is not None and self.flushes_after_break > 0


def _header_end(data: bytes | mmap.mmap) -> int:
    """End of the WAL's header object (its fields end with the 0xFFFF terminator)."""
    end = data.find(b"\xff\xff", 0, 4096)
    return end + 2 if end >= 0 else len(data)


def wal_layout(wal: Path) -> WalLayout:
    """Walks the WAL's frames (memory-mapped: a 256 MB WAL is not read into memory)."""
    with open(wal, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return WalLayout(0, 0, [], [], None)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _walk(data)


def _walk(data: mmap.mmap) -> WalLayout:
    pos = header_end = _header_end(data)
    commits: list[int] = []
    starts: list[int] = []
    broken: int | None = None
    n = len(data)
    while pos < n:
        if pos + _HDR.size > n:
            broken = pos
            break
        size, _checksum = _HDR.unpack_from(data, pos)
        end = pos + _HDR.size + size
        if end > n or size < 3:
            broken = pos
            break
        starts.append(pos)
        # field id 100 (u16 little endian), then the type as a varint
        body = data[pos + _HDR.size:pos + _HDR.size + 3]
        if body[0] == 100 and body[1] == 0 and body[2] == WAL_FLUSH:
            commits.append(end)
        pos = end
    after = _count_flush_frames(data, broken) if broken is not None else 0
    return WalLayout(n, header_end, commits, starts, broken, after)


_FLUSH_BODY = b"\x64\x00\x64\xff\xff"  # {100: WAL_FLUSH} serialized: a 5-byte entry


def _count_flush_frames(data: mmap.mmap, start: int) -> int:
    """WAL_FLUSH frames (size 5, that body) in ``data[start:]``: commits completed after ``start``."""
    n = 0
    pos = data.find(_FLUSH_BODY, start + _HDR.size)
    while pos >= 0:
        if pos - _HDR.size >= start and _HDR.unpack_from(data, pos - _HDR.size)[0] == len(_FLUSH_BODY):
            n += 1
        pos = data.find(_FLUSH_BODY, pos + 1)
    return n


@dataclass(frozen=True)
class WalRepair:
    kept_bytes: int
    kept_commits: int
    lost_bytes: int
    lost_commits: int  # commit markers found after the cut (a destroyed marker is not counted)
    damage_at: int
    aside: Path

    def describe(self) -> str:
        return (f"damage at byte {self.damage_at}: kept {self.kept_commits} commits ({self.kept_bytes} bytes), "
                f"dropped at least {self.lost_commits} commits: the damaged one and every one after it "
                f"({self.lost_bytes} bytes); the damaged WAL is kept as {self.aside}")


def _aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.damaged-{stamp}.{n}")
        n += 1
    return target


def repair_wal(wal: Path, error: BaseException | str) -> WalRepair:
    """Cuts ``wal`` after the last complete commit before the damage DuckDB reported (or before
    the first break in the framing). The original is kept beside it as ``.damaged-<ts>``."""
    layout = wal_layout(wal)
    m = _POSITION.search(str(error))
    damage = int(m.group(1)) if m else (layout.broken_at if layout.broken_at is not None else layout.header_end)
    if layout.broken_at is not None:
        damage = min(damage, layout.broken_at)
    kept = [c for c in layout.commit_ends if c <= damage]
    cut = kept[-1] if kept else layout.header_end
    aside = _aside(wal)
    shutil.copy2(wal, aside)
    with open(wal, "r+b") as f:
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    fsync_path(wal.parent)
    lost_commits = len(layout.commit_ends) - len(kept) + layout.flushes_after_break
    return WalRepair(cut, len(kept), layout.size - cut, lost_commits, damage, aside)


def quarantine(db: Path) -> list[Path]:
    """Moves the database file aside as ``<name>.damaged-<ts>`` and its WAL beside it as
    ``<name>.damaged-<ts>.wal`` (the pair DuckDB opens together, so ``salvage`` can replay it);
    returns the new paths, the database file first."""
    moved = []
    target = _aside(db)
    if db.exists():
        db.rename(target)
        moved.append(target)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        wal_target = target.with_name(target.name + ".wal")
        wal.rename(wal_target)
        moved.append(wal_target)
    fsync_path(db.parent)
    return moved


def salvage(con: duckdb.DuckDBPyConnection, damaged: Path, tables: list[str], fixups: list[str]) -> str:
    """Copies every readable row of ``tables`` from the damaged file (attached read-only, its WAL
    replayed when it can be) into the same tables of ``con``'s database (a name ending in ``*``: every
    table of the damaged file with that prefix, e.g. time partitions, created empty when
    missing), in ranges of rows: a
    range that cannot be read (a block with a bad checksum) is skipped, halved down to 2,048 rows.
    Then runs ``fixups`` (the store's consistency repairs, e.g. rows whose parent was lost) and
    commits. Returns what was kept and lost, per table."""
    wal = damaged.with_name(damaged.name + ".wal")
    try:
        con.execute(f"ATTACH '{sql_str(damaged)}' AS damaged (READ_ONLY)")
    except duckdb.Error as e:
        if not wal.exists():
            return f"nothing could be salvaged: {_line(e)}"
        wal.rename(wal.with_name(wal.name + ".unreplayable"))
        try:
            con.execute(f"ATTACH '{sql_str(damaged)}' AS damaged (READ_ONLY)")
        except duckdb.Error as e2:
            return f"nothing could be salvaged: {_line(e2)}"
    parts = []
    reader = con.cursor()
    try:
        con.execute("BEGIN TRANSACTION")
        tables = _expand(con, tables)
        for t in tables:
            try:
                total = int(reader.execute(f"SELECT count(*) FROM damaged.{t}").fetchall()[0][0])
            except duckdb.Error as e:
                parts.append(f"{t}: unreadable ({_line(e)})")
                continue
            try:  # rowids have gaps after deletes; max(rowid) reads no data block
                top = int(reader.execute(f"SELECT coalesce(max(rowid) + 1, 0) FROM damaged.{t}").fetchall()[0][0])
            except duckdb.Error:
                top = total
            kept = _copy_ranges(con, reader, t, 0, max(top, total))
            parts.append(f"{t}: kept {kept} of {total} rows")
        for sql in fixups:
            con.execute(sql)
        if fixups:
            left = [f"{t} {con.execute(f'SELECT count(*) FROM main.{t}').fetchall()[0][0]}" for t in tables]
            parts.append("left after removing rows that lost their parent: " + ", ".join(left))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        reader.close()
        con.execute("DETACH damaged")
    return "; ".join(parts)


def _expand(con: duckdb.DuckDBPyConnection, tables: list[str]) -> list[str]:
    """``tables`` with each ``prefix*`` replaced by the damaged file's tables of that prefix, each
    created (empty, same columns) in the new file when it has no such table."""
    out: list[str] = []
    for t in tables:
        if not t.endswith("*"):
            out.append(t)
            continue
        try:
            names = [str(n) for (n,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'damaged' AND schema_name = 'main' "
                "AND starts_with(table_name, ?) ORDER BY table_name", [t[:-1]]).fetchall()]
        except duckdb.Error:
            continue  # the damaged catalogue cannot be listed: nothing of these tables is salvaged
        for name in names:
            con.execute(f"CREATE TABLE IF NOT EXISTS main.{name} AS SELECT * FROM damaged.{name} WHERE false")
        out.extend(names)
    return out


_ROW_GROUP = 122_880  # DuckDB's rows per row group
_MIN_RANGE = 2_048


def _copy_ranges(con: duckdb.DuckDBPyConnection, reader: duckdb.DuckDBPyConnection, table: str, lo: int,
                 hi: int) -> int:
    kept = 0
    todo = [(a, min(hi, a + _ROW_GROUP)) for a in range(lo, hi, _ROW_GROUP)]
    while todo:
        a, b = todo.pop(0)
        try:  # read on another cursor: a failed statement would abort the writing transaction
            rows = reader.sql(f"SELECT * FROM damaged.{table} WHERE rowid >= {int(a)} AND rowid < {int(b)}").to_arrow_table()
            assert rows is not None
        except duckdb.Error:
            if b - a > _MIN_RANGE:
                mid = (a + b) // 2
                todo[:0] = [(a, mid), (mid, b)]
            continue
        if rows.num_rows:
            # by name, the columns the table still has (an older file may hold one since dropped)
            have = set(con.table(f"main.{table}").columns)
            cols = ", ".join(f'"{c}"' for c in rows.column_names if c in have)
            con.register("salvaged_rows", rows)
            con.execute(f"INSERT INTO main.{table} BY NAME SELECT {cols} FROM salvaged_rows")
            con.unregister("salvaged_rows")
            kept += rows.num_rows
    return kept


def sql_str(p: Path) -> str:
    return str(p).replace("'", "''")


def _line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__


def fsync_path(d: Path) -> None:
    """fsync of a file or a directory (after a rename in it)."""
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
