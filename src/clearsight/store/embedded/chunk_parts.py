"""The metrics store's compacted chunks in time partitions (storage kernel ``retention``).

Chunks live in one table per period (one UTC day by default), ``chunks_YYYYMMDD`` (sub-day periods:
``chunks_YYYYMMDD_HHMMSS``), same columns as the single ``chunks`` table of schema 3. A chunk goes
to the partition of its **max_ts**: a partition ending at or before the retention cutoff then holds
only chunks whose every sample expired, so retention drops it whole (``DROP TABLE``) and nothing
it should keep goes with it. A chunk spanning a boundary is stored once, in the partition of its
newest sample (its older samples leave the disk with that partition, hidden from reads by the
retention floor meanwhile). Which partition a chunk is in is a pure function of its ``max_ts``, so
the chunk catalogue needs no partition column, and a chunk is still named by ``(series, min_ts)``.

In memory, per partition: rows, samples, payload bytes (``octet_length(data)``, the size
``storage.retention_size`` bounds) and the time bounds of its chunks (``lo`` = smallest min_ts, ``hi``
= largest max_ts; deletions do not narrow them): SQL over the chunks names only the partitions
overlapping the asked range. Changes made inside the writer's transaction are pending until
``commit`` (after ``COMMIT``) and dropped by ``begin`` (after a rollback).

Schema 3 files (one ``chunks`` table) are migrated at open (``migrate``): one transaction moves
every row into its partition and drops the old table.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from clearsight.store.embedded.catalog import ChunkRows
from clearsight.store.kernel import retention
from clearsight.store.kernel.publication import Retry
from clearsight.store.kernel.retention import DAY_MS, Partition, PartitionScheme, union_sql

LEGACY_TABLE = "chunks"
COLUMNS = "series_id, min_ts, max_ts, n, codec, scale, data"
DDL = """(
    series_id UINTEGER NOT NULL,
    min_ts BIGINT NOT NULL,
    max_ts BIGINT NOT NULL,
    n UINTEGER NOT NULL,
    codec UTINYINT NOT NULL,
    scale UTINYINT NOT NULL,
    data BLOB NOT NULL
)"""
_EMPTY = ("SELECT NULL::UINTEGER AS series_id, NULL::BIGINT AS min_ts, NULL::BIGINT AS max_ts, NULL::UINTEGER AS n, "
          "NULL::UTINYINT AS codec, NULL::UTINYINT AS scale, NULL::BLOB AS data WHERE false")
_NO_LO = 2**62
_NO_HI = -(2**62)


@dataclass
class PartStats:
    part: Partition
    rows: int = 0
    samples: int = 0
    bytes: int = 0
    lo: int = _NO_LO
    hi: int = _NO_HI


def _figures(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    rows = con.execute(
        f"SELECT count(*), coalesce(sum(n), 0), coalesce(sum(octet_length(data)), 0), "
        f"coalesce(min(min_ts), {_NO_LO}), coalesce(max(max_ts), {_NO_HI}) FROM {name}"
    ).fetchall()[0]
    return {"rows": int(rows[0]), "samples": int(rows[1]), "bytes": int(rows[2]), "lo": int(rows[3]),
            "hi": int(rows[4])}


class ChunkPartitions:
    """The chunk partitions of one store. Writer thread: ``load``, ``migrate``, ``begin``,
    ``insert``, ``delete``, ``drop``, ``commit``; any thread: ``sql``, ``fetch``, ``stats``."""

    def __init__(self, period_ms: int = DAY_MS) -> None:
        self.scheme = PartitionScheme("chunks", period_ms)
        self._parts: dict[int, PartStats] = {}  # committed, by partition start
        self._pending: dict[int, PartStats] | None = None  # the open transaction's view

    # --- setup -------------------------------------------------------------------------------------

    def migrate(self, con: duckdb.DuckDBPyConnection) -> int:
        """Moves the rows of a schema-3 ``chunks`` table into partitions and drops it, in one
        transaction; returns the rows moved (0 when there is no such table)."""
        if not con.execute("SELECT 1 FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
                           [LEGACY_TABLE]).fetchall():
            return 0
        con.execute("BEGIN TRANSACTION")
        try:
            max_ts = con.execute(f"SELECT DISTINCT max_ts FROM {LEGACY_TABLE}").fetchnumpy()["max_ts"]
            starts = np.unique(self.scheme.keys(np.asarray(max_ts, dtype=np.int64))).tolist()
            moved = 0
            for start in starts:
                part = self.scheme.of(int(start))
                self.scheme.create(con, part, DDL)
                n = con.execute(
                    f"INSERT INTO {part.name} SELECT {COLUMNS} FROM {LEGACY_TABLE} WHERE max_ts >= ? AND max_ts < ?",
                    [part.start, part.end]).fetchall()
                moved += int(n[0][0])
            total = int(con.execute(f"SELECT count(*) FROM {LEGACY_TABLE}").fetchall()[0][0])
            if moved != total:
                raise RuntimeError(f"chunk partition migration moved {moved} of {total} rows")
            con.execute(f"DROP TABLE {LEGACY_TABLE}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return moved

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Reads the partitions and their figures (one aggregate per partition)."""
        self._pending = None
        self._parts = {p.start: PartStats(p, **_figures(con, p.name)) for p in self.scheme.list(con)}

    # --- the writer's transaction ------------------------------------------------------------------

    def begin(self) -> None:
        """A transaction starts: changes not committed before are forgotten (rolled back)."""
        self._pending = None

    def commit(self) -> None:
        """The transaction committed: its changes become the partitions readers see."""
        if self._pending is not None:
            self._parts = self._pending
            self._pending = None

    def _tx(self) -> dict[int, PartStats]:
        if self._pending is None:
            self._pending = copy.deepcopy(self._parts)
        return self._pending

    def _current(self) -> dict[int, PartStats]:  # writer thread
        return self._pending if self._pending is not None else self._parts

    def insert(self, con: duckdb.DuckDBPyConnection, table: dict[str, Any], nbytes: npt.NDArray[np.int64]) -> None:
        """Inserts chunk rows (``table``: the columns as numpy arrays, ``data`` an object array),
        each into the partition of its max_ts (created when missing)."""
        max_ts = np.asarray(table["max_ts"], dtype=np.int64)
        keys = self.scheme.keys(max_ts)
        tx = self._tx()
        for start in np.unique(keys).tolist():
            sel = np.flatnonzero(keys == start)
            st = tx.get(start)
            if st is None:
                part = self.scheme.of(start)
                self.scheme.create(con, part, DDL)
                st = tx[start] = PartStats(part)
            sub = {k: v if sel.shape[0] == keys.shape[0] else v[sel] for k, v in table.items()}
            con.register("_clearsight_part_rows", sub)
            try:
                con.execute(f"INSERT INTO {st.part.name} SELECT {COLUMNS} FROM _clearsight_part_rows")
            finally:
                con.unregister("_clearsight_part_rows")
            st.rows += int(sel.shape[0])
            st.samples += int(np.asarray(table["n"])[sel].sum())
            st.bytes += int(nbytes[sel].sum())
            st.lo = min(st.lo, int(np.asarray(table["min_ts"])[sel].min()))
            st.hi = max(st.hi, int(max_ts[sel].max()))

    def delete(self, con: duckdb.DuckDBPyConnection, sid: npt.NDArray[np.uint32], min_ts: npt.NDArray[np.int64],
               max_ts: npt.NDArray[np.int64], n: npt.NDArray[np.int64]) -> None:
        """Deletes the chunks named by ``(sid, min_ts)``, each from the partition of its max_ts."""
        keys = self.scheme.keys(max_ts)
        tx = self._tx()
        for start in np.unique(keys).tolist():
            sel = np.flatnonzero(keys == start)
            st = tx[start]
            con.register("_clearsight_old", {"series_id": sid[sel], "min_ts": min_ts[sel]})
            try:
                gone = con.execute(
                    f"DELETE FROM {st.part.name} c USING _clearsight_old o "
                    f"WHERE c.series_id = o.series_id AND c.min_ts = o.min_ts RETURNING octet_length(c.data)"
                ).fetchnumpy()
            finally:
                con.unregister("_clearsight_old")
            sizes = next(iter(gone.values()))
            if sizes.shape[0] != sel.shape[0]:
                raise RuntimeError(f"{st.part.name}: deleted {sizes.shape[0]} of {sel.shape[0]} chunks")
            st.rows -= int(sel.shape[0])
            st.samples -= int(n[sel].sum())
            st.bytes -= int(np.asarray(sizes, dtype=np.int64).sum())

    def plan(self, cutoff: int, size_limit: int) -> tuple[list[Partition], int]:
        """What a retention pass at ``cutoff`` drops: the partitions wholly older (kernel
        ``expired``), then the oldest over ``size_limit`` bytes of payload (``over_size``; 0 =
        unbounded), oldest first; and the cutoff, raised to the end of the last one dropped for size.
        Called before the pass's transaction opens: it plans on the committed partitions."""
        parts = self.partitions(writer=False)
        doomed = retention.expired([st.part for st in parts], cutoff)
        kept = [st for st in parts if st.part.end > cutoff]
        by_size = retention.over_size([st.part for st in kept], {st.part.name: st.bytes for st in kept}, size_limit)
        return [*doomed, *by_size], max([cutoff, *(p.end for p in by_size)])

    def delete_series(self, con: duckdb.DuckDBPyConnection, snap: ChunkRows, ids: npt.NDArray[np.uint32],
                      before: int | None) -> ChunkRows:
        """Deletes the chunks of the series ``ids`` (sorted) listed in the catalogue ``snap`` that
        are not in a partition being dropped (max_ts >= ``before``); returns them."""
        sel = snap.take(snap.find(ids, -(2**62), 2**62))
        if before is not None:
            sel = sel.take(np.flatnonzero(sel.max_ts >= before))
        if len(sel):
            self.delete(con, sel.series_id, sel.min_ts, sel.max_ts, sel.n)
        return sel

    def drop(self, con: duckdb.DuckDBPyConnection, parts: Iterable[Partition]) -> list[PartStats]:
        """Drops whole partitions (kernel ``drop``); returns their figures."""
        tx = self._tx()
        gone = [tx.pop(p.start) for p in parts if p.start in tx]
        retention.drop(con, [st.part for st in gone])
        return gone

    def drop_orphans(self, con: duckdb.DuckDBPyConnection, head_ids: npt.NDArray[np.uint32]) -> None:
        """After a salvage: deletes the chunks whose series was lost, then the series left
        without any sample (``head_ids``: the series with head samples), in one transaction (the
        store's invariants); reloads the figures."""
        con.register("_clearsight_head_ids", {"series_id": head_ids.astype(np.uint32)})
        con.execute("BEGIN TRANSACTION")
        try:
            for st in self._parts.values():
                con.execute(f"DELETE FROM {st.part.name} WHERE series_id NOT IN (SELECT series_id FROM series)")
            con.execute(f"DELETE FROM series WHERE series_id NOT IN (SELECT series_id FROM _clearsight_head_ids UNION "
                        f"SELECT series_id FROM {self.sql(writer=False)} UNION SELECT series_id FROM histogram_chunks)")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_clearsight_head_ids")
        self.load(con)

    # --- any thread --------------------------------------------------------------------------------

    def partitions(self, *, writer: bool) -> list[PartStats]:
        """The partitions, oldest first: as committed, or (``writer``) as the writer's open
        transaction sees them."""
        parts = self._current() if writer else self._parts
        return sorted(parts.values(), key=lambda st: st.part.start)

    def sql(self, lo: int | None = None, hi: int | None = None, *, writer: bool) -> str:
        """A relation of every chunk column over the partitions whose chunks may overlap
        ``[lo, hi]`` (all when not given), as committed or (``writer``) in the writer's transaction."""
        parts = [st.part for st in self.partitions(writer=writer)
                 if (lo is None or st.hi >= lo) and (hi is None or st.lo <= hi)]
        return union_sql(parts, COLUMNS, _EMPTY)

    def fetch(self, cur: duckdb.DuckDBPyConnection, sid: npt.NDArray[np.uint32], min_ts: npt.NDArray[np.int64],
              max_ts: npt.NDArray[np.int64]) -> dict[str, Any]:
        """Columns series_id, min_ts, data of the chunks named by ``(sid, min_ts)``, read from the
        partitions of their max_ts. Raises ``Retry`` when a partition is gone (retention dropped it
        after the caller's snapshot)."""
        starts = np.unique(self.scheme.keys(max_ts)).tolist()
        rel = union_sql([self.scheme.of(s) for s in starts], COLUMNS, _EMPTY)
        cur.register("_clearsight_want", {"series_id": sid, "min_ts": min_ts})
        try:
            out: dict[str, Any] = cur.execute(
                f"SELECT c.series_id, c.min_ts, c.data FROM {rel} c JOIN _clearsight_want w "
                "ON c.series_id = w.series_id AND c.min_ts = w.min_ts WHERE c.series_id BETWEEN ? AND ?",
                [int(sid.min()), int(sid.max())]).fetchnumpy()
        except duckdb.CatalogException as e:
            raise Retry(f"a chunk partition is gone: {e}") from None
        finally:
            cur.unregister("_clearsight_want")
        return out

    def totals(self) -> tuple[int, int]:
        """(partitions, payload bytes) as committed."""
        parts = list(self._parts.values())
        return len(parts), sum(st.bytes for st in parts)


def all_chunks(con: duckdb.DuckDBPyConnection) -> str:
    """A relation over every chunk partition of a metrics database opened on ``con`` (tests,
    benchmarks, offline tools)."""
    row = con.execute("SELECT value FROM clearsight_meta WHERE key = 'chunk_partition_ms'").fetchall()
    scheme = PartitionScheme("chunks", int(row[0][0]) if row else DAY_MS)
    return union_sql(scheme.list(con), COLUMNS, _EMPTY)
