"""Background rollups of the embedded metrics store: 5-minute and 1-hour buckets per series
(``model/rollups.py``), their tables, their retention, and reads of them (docs/storage.md "Rollups").

Tables (in ``metrics.duckdb``):

- ``rollups_5m`` and ``rollups_1h``: one row per (series, block): the 5-minute buckets of one hour
  (``block_start``, ``block_start + 1h]``, the 1-hour buckets of one UTC day, as parallel lists
  (DuckDB compresses them column by column; reads unnest them in DuckDB, no Python per row).
- ``rollup_dirty``: (series, hour block) pairs whose raw samples changed after their 5-minute
  buckets were computed (a late write, ``delete_series``). Inserted in the transaction that changes
  the samples; the next pass recomputes the block (and the day's 1-hour row) and deletes the pair.
- ``clearsight_meta`` keys ``rollup_<res>_from`` / ``rollup_<res>_until``: the buckets ending in
  ``(from, until]`` exist for every series (the *coverage*).

A pass runs on the store's writer thread (a writer command), so it is ordered with appends: a
sample committed before the pass is in its buckets, one committed after has a timestamp above the
new ``until`` (not yet rolled up) or is recorded dirty. Every block is one transaction (its rows and
the new ``until`` together): a ``kill -9`` leaves either the whole block or none of it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher
from clearsight.model.rollups import FIVE_MINUTES_MS, ONE_HOUR_MS, Buckets, bucket_end, coarsen, from_samples
from clearsight.model.samples import F64Array, I64Array
from clearsight.store.interface import RollupCoverage, RollupData, RollupProgress
from clearsight.store.kernel import retention

IdArray = npt.NDArray[np.uint32]
DAY_MS = 86_400_000
BLOCK_MS = {FIVE_MINUTES_MS: ONE_HOUR_MS, ONE_HOUR_MS: DAY_MS}
NAMES = {FIVE_MINUTES_MS: "5m", ONE_HOUR_MS: "1h"}
_TABLE = {FIVE_MINUTES_MS: "rollups_5m", ONE_HOUR_MS: "rollups_1h"}
_SLICE_SERIES = 4096  # series read per raw slice of a 5-minute pass
_DIRTY_PER_PASS = 4096  # dirty (series, hour) pairs recomputed per writer command

# Each resolution's rows live in time partitions (storage kernel ``retention.PartitionScheme``):
# ``rollups_5m_YYYYMMDD`` (one UTC day of hour blocks), ``rollups_1h_YYYYMMDD`` (30 days of day
# blocks, starting at multiples of 30 days since the epoch); retention drops whole partitions.
PERIOD_MS = {FIVE_MINUTES_MS: DAY_MS, ONE_HOUR_MS: 30 * DAY_MS}
SCHEMES = {res: retention.PartitionScheme(_TABLE[res], PERIOD_MS[res]) for res in BLOCK_MS}
# One row per (series, block): the block's buckets as parallel lists (DuckDB compresses the list
# elements column by column). Values are float64 bits (as in ``samples``: a numpy NaN handed to
# DuckDB as DOUBLE becomes NULL, and DuckDB canonicalizes NaN payloads). vmin/vmax are NULL when
# every bucket's min is its first value and max its last (a rising counter), corr NULL when no
# bucket has a counter reset.
PART_DDL = """(
        series_id UINTEGER NOT NULL,
        block_start BIGINT NOT NULL,
        idx USMALLINT[] NOT NULL,
        cnt UINTEGER[] NOT NULL,
        dfirst UINTEGER[] NOT NULL,
        dlast UINTEGER[] NOT NULL,
        v_first BIGINT[] NOT NULL,
        v_last BIGINT[] NOT NULL,
        vmin BIGINT[],
        vmax BIGINT[],
        vsum BIGINT[] NOT NULL,
        corr BIGINT[]
    )"""
_OLD_TABLES = "('rollup_5m', 'rollup_1h', 'rollups_5m', 'rollups_1h')"
DDL = [
    """CREATE TABLE IF NOT EXISTS rollup_dirty (
        series_id UINTEGER NOT NULL,
        block_start BIGINT NOT NULL
    )""",
    # Files written before the partitions (0f2a149: zstd blobs; its successor: one table per
    # resolution): their rollups are dropped and rolled up again from the raw samples.
    f"DELETE FROM rollup_dirty WHERE EXISTS (SELECT 1 FROM duckdb_tables() WHERE table_name IN {_OLD_TABLES})",
    "DELETE FROM clearsight_meta WHERE key LIKE 'rollup_%' AND EXISTS "
    f"(SELECT 1 FROM duckdb_tables() WHERE table_name IN {_OLD_TABLES})",
    "DROP TABLE IF EXISTS rollup_5m",
    "DROP TABLE IF EXISTS rollup_1h",
    "DROP TABLE IF EXISTS rollups_5m",
    "DROP TABLE IF EXISTS rollups_1h",
]

# A flat table of buckets (numpy columns, ``_flat``) grouped into one row per (series, block).
_INSERT = (
    "INSERT INTO {table} SELECT series_id, block_start, list(idx ORDER BY idx), list(cnt ORDER BY idx), "
    "list(dfirst ORDER BY idx), list(dlast ORDER BY idx), list(v_first ORDER BY idx), list(v_last ORDER BY idx), "
    "CASE WHEN bool_and(edge) THEN NULL ELSE list(vmin ORDER BY idx) END, "
    "CASE WHEN bool_and(edge) THEN NULL ELSE list(vmax ORDER BY idx) END, list(vsum ORDER BY idx), "
    "CASE WHEN bool_and(nocorr) THEN NULL ELSE list(corr ORDER BY idx) END "
    "FROM _clearsight_rollup WHERE block_start >= ? AND block_start < ? GROUP BY series_id, block_start"
)
# The rows back as one bucket per row (DuckDB unnests the lists in C++).
_SELECT = (
    "SELECT series_id, block_start, unnest(idx) AS idx, unnest(cnt) AS cnt, unnest(dfirst) AS dfirst, "
    "unnest(dlast) AS dlast, unnest(v_first) AS v_first, unnest(v_last) AS v_last, "
    "unnest(coalesce(vmin, v_first)) AS vmin, unnest(coalesce(vmax, v_last)) AS vmax, unnest(vsum) AS vsum, "
    "unnest(coalesce(corr, list_resize([0::BIGINT], len(v_first), 0::BIGINT))) AS corr "
    "FROM {table} WHERE block_start >= ? AND block_start < ?"
)


_VALUES = ("v_first", "v_last", "vmin", "vmax", "vsum", "corr")


def flat_columns(sids: IdArray, b: Buckets, res_ms: int) -> dict[str, npt.NDArray[Any]]:
    """Buckets as the flat table ``_INSERT`` groups into rows."""
    block = BLOCK_MS[res_ms]
    bstart = bucket_end(b.end, block) - block
    with np.errstate(invalid="ignore"):
        edge = (b.vmin.view(np.int64) == b.v_first.view(np.int64)) & (b.vmax.view(np.int64) == b.v_last.view(np.int64))
    return {
        "series_id": sids.astype(np.uint32), "block_start": bstart, "idx": ((b.end - bstart) // res_ms).astype(np.uint16),
        "cnt": b.cnt.astype(np.uint32), "dfirst": (b.end - b.t_first).astype(np.uint32),
        "dlast": (b.end - b.t_last).astype(np.uint32), **{k: getattr(b, k).view(np.int64) for k in _VALUES}, "edge": edge, "nocorr": b.corr.view(np.int64) == 0,
    }


def from_columns(res: dict[str, npt.NDArray[Any]], res_ms: int) -> tuple[IdArray, Buckets]:
    """``_SELECT``'s columns as buckets sorted by (series, end)."""
    sids = np.asarray(res["series_id"], dtype=np.uint32)
    end = np.asarray(res["block_start"], dtype=np.int64) + np.asarray(res["idx"], dtype=np.int64) * res_ms
    b = Buckets(end, np.asarray(res["cnt"], dtype=np.int64), end - np.asarray(res["dfirst"], dtype=np.int64),
                end - np.asarray(res["dlast"], dtype=np.int64),
                *(np.asarray(res[k], dtype=np.int64).view(np.float64) for k in _VALUES))
    if sids.size > 1:
        key_ok = (sids[1:] > sids[:-1]) | ((sids[1:] == sids[:-1]) & (end[1:] > end[:-1]))
        if not bool(key_ok.all()):
            order = np.lexsort((end, sids))
            sids, b = sids[order], b.take(order)
    return sids, b


class RollupHost(Protocol):
    """What the rollups need of the store (``EmbeddedMetricsStore`` implements it)."""

    def rollup_series_ids(self, tenant: str, matchers: Sequence[Matcher]) -> IdArray:
        """The tenant's series matching all matchers (sorted; no time filter)."""
        ...

    def rollup_labels(self, ids: IdArray) -> list[Labels]:
        ...

    def rollup_has_histograms(self, ids: IdArray) -> bool:
        ...

    def rollup_live_ids(self, start_ms: int, end_ms: int) -> IdArray:
        """Writer thread: every series whose samples may fall in [start_ms, end_ms]."""
        ...

    def rollup_oldest_ms(self) -> int | None:
        """Writer thread: the oldest sample's timestamp the store holds (None when it is empty)."""
        ...

    def rollup_raw(self, ids: IdArray, start_ms: int, end_ms: int) -> tuple[IdArray, I64Array, F64Array]:
        """Writer thread: the float samples of ``ids`` in [start_ms, end_ms], sorted by (series, ts)."""
        ...

    def rollup_reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        ...


@dataclass
class RollupStats:
    passes: int = 0
    blocks_written: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BLOCK_MS, 0))
    buckets_written: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BLOCK_MS, 0))
    dirty_recomputed: int = 0
    reads: int = 0
    fallbacks: int = 0
    buckets_read: int = 0


class Rollups:
    """The rollup tables of one store, their coverage and dirty set in memory.

    ``retention_ms``: per resolution, rows whose block ended before ``now - retention`` are deleted
    (whole blocks). ``settle_ms``: a block is rolled up once it ended at least this long before
    ``now`` (the store's out-of-order window: later samples are rare and handled as dirty)."""

    def __init__(self, retention_ms: dict[int, int], settle_ms: int, enabled: bool = True) -> None:
        for res in BLOCK_MS:
            if retention_ms.get(res, 0) < BLOCK_MS[res]:
                raise ValueError(f"rollup retention of {NAMES[res]} must be at least {BLOCK_MS[res] // 60_000} minutes")
        self.retention_ms = retention_ms
        self.settle_ms = settle_ms
        self.enabled = enabled
        self.stats = RollupStats()
        self._lock = threading.Lock()
        self._cov: dict[int, tuple[int, int]] = {}
        self._cov_view: list[RollupCoverage] = []
        self._parts: dict[int, dict[int, retention.Partition]] = {res: {} for res in BLOCK_MS}  # res -> start -> partition
        self._dirty: set[tuple[int, int]] = set()
        self._dirty_arr: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
        self._pending: list[tuple[IdArray, I64Array]] = []  # dirty pairs of the open transaction
        self._gen = 0  # bumped whenever rows are rewritten or deleted (reads compare it)

    # --- state ---------------------------------------------------------------------------------

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        cov: dict[int, tuple[int, int]] = {}
        rows = dict(con.execute("SELECT key, value FROM clearsight_meta WHERE key LIKE 'rollup_%'").fetchall())
        for res, name in NAMES.items():
            lo, hi = rows.get(f"rollup_{name}_from"), rows.get(f"rollup_{name}_until")
            if lo is not None and hi is not None:
                cov[res] = (int(lo), int(hi))
        dirty = con.execute("SELECT series_id, block_start FROM rollup_dirty").fetchall()
        parts = {res: {p.start: p for p in sch.list(con)} for res, sch in SCHEMES.items()}
        with self._lock:
            self._parts = parts
            self._cov = cov
            self._publish_cov()
            self._dirty = {(int(s), int(b)) for s, b in dirty}
            self._dirty_arr = None
            self._pending = []
            self._gen += 1

    def _publish_cov(self) -> None:
        """Under ``_lock``, after ``_cov`` changed: the list ``coverage`` hands out."""
        self._cov_view = [RollupCoverage(res, lo, hi) for res, (lo, hi) in sorted(self._cov.items(), reverse=True)
                          if hi > lo]

    def coverage(self) -> list[RollupCoverage]:
        """What each resolution covers (a list replaced whole on every change: no lock to read it)."""
        return self._cov_view

    def progress(self) -> RollupProgress:
        st = self.stats
        with self._lock:
            dirty, cov = len(self._dirty), dict(self._cov)
        return RollupProgress(
            passes_total=st.passes, dirty_blocks=dirty, dirty_recomputed_total=st.dirty_recomputed,
            reads_total=st.reads, fallbacks_total=st.fallbacks, buckets_read_total=st.buckets_read,
            blocks_written_total={NAMES[r]: v for r, v in st.blocks_written.items()},
            buckets_written_total={NAMES[r]: v for r, v in st.buckets_written.items()},
            until_ms={NAMES[r]: hi for r, (lo, hi) in cov.items() if hi > lo},
        )

    def until(self, res: int) -> int | None:
        c = self._cov.get(res)
        return c[1] if c else None

    # --- hooks in the store's transactions ---------------------------------------------------

    def changes_rolled_up(self, ts: I64Array) -> bool:
        """Whether samples at ``ts`` fall in hour blocks already rolled up (``mark_written`` would
        record them). Writer thread."""
        return bool(self._inside(ts).any())

    def _inside(self, ts: I64Array) -> npt.NDArray[np.bool_]:
        c = self._cov.get(FIVE_MINUTES_MS)
        if c is None or ts.shape[0] == 0 or int(ts.min()) > c[1]:
            return np.zeros(0, dtype=np.bool_)
        return (ts > c[0]) & (ts <= c[1])

    def mark_written(self, con: duckdb.DuckDBPyConnection, sids: IdArray, ts: I64Array) -> None:
        """Writer, inside the transaction that writes samples ``(sids, ts)``: records the hour blocks
        already rolled up that they change."""
        inside = self._inside(ts)
        if not bool(inside.any()):
            return
        blocks = bucket_end(ts[inside], ONE_HOUR_MS) - ONE_HOUR_MS
        self._record(con, sids[inside].astype(np.uint32), blocks)

    def mark_deleted(self, con: duckdb.DuckDBPyConnection, ids: IdArray, start_ms: int, end_ms: int) -> None:
        """Writer, inside a ``delete_series`` transaction over [start_ms, end_ms] of ``ids``: the rows
        of blocks wholly inside go (their raw samples are all deleted), the (at most two) hours the
        range cuts are recorded dirty."""
        if ids.size == 0:
            return
        con.register("_clearsight_delr", {"series_id": ids.astype(np.uint32)})
        try:
            for res, block in BLOCK_MS.items():
                first = -(-(start_ms - 1) // block) * block  # block (bs, bs + block] inside: bs + 1 >= start
                for part in self._overlapping(res, first, end_ms):
                    con.execute(f"DELETE FROM {part.name} WHERE block_start >= ? AND block_start + ? <= ? AND "
                                "series_id IN (SELECT series_id FROM _clearsight_delr)", [first, block, end_ms])
        finally:
            con.unregister("_clearsight_delr")
        with self._lock:
            self._gen += 1
        c = self._cov.get(FIVE_MINUTES_MS)
        if c is None:
            return
        edges = {int(h) for h in bucket_end(np.array([start_ms, end_ms]), ONE_HOUR_MS) - ONE_HOUR_MS
                 if not (h + 1 >= start_ms and h + ONE_HOUR_MS <= end_ms) and c[0] <= h < c[1]}
        if edges:
            blocks = np.asarray(sorted(edges), dtype=np.int64)
            self._record(con, np.repeat(ids.astype(np.uint32), blocks.size), np.tile(blocks, ids.size))

    def _record(self, con: duckdb.DuckDBPyConnection, sids: IdArray, blocks: I64Array) -> None:
        key = np.unique((sids.astype(np.int64) << 44) | (blocks // ONE_HOUR_MS))
        sids_u = (key >> 44).astype(np.uint32)
        blocks_u = (key & ((1 << 44) - 1)) * ONE_HOUR_MS
        con.register("_clearsight_dirty", {"series_id": sids_u, "block_start": blocks_u})
        try:
            con.execute("INSERT INTO rollup_dirty SELECT series_id, block_start FROM _clearsight_dirty")
        finally:
            con.unregister("_clearsight_dirty")
        self._pending.append((sids_u, blocks_u))

    def committed(self) -> None:
        """Writer, after the COMMIT of a transaction that called ``mark_*``."""
        if not self._pending:
            return
        with self._lock:
            for s, b in self._pending:
                self._dirty.update(zip(s.tolist(), b.tolist(), strict=True))
            self._dirty_arr = None
        self._pending = []

    def forget(self, con: duckdb.DuckDBPyConnection, dead: IdArray) -> None:
        """Writer, inside the transaction deleting the ``series`` rows of ``dead``: their rollups go
        too (a series id may be reused after a restart)."""
        if dead.size == 0:
            return
        con.register("_clearsight_gone", {"series_id": dead.astype(np.uint32)})
        try:
            for t in [*(p.name for parts in self._parts.values() for p in parts.values()), "rollup_dirty"]:
                con.execute(f"DELETE FROM {t} WHERE series_id IN (SELECT series_id FROM _clearsight_gone)")
        finally:
            con.unregister("_clearsight_gone")
        gone = set(dead.tolist())
        self._pending = [(s[~np.isin(s, dead)], b[~np.isin(s, dead)]) for s, b in self._pending]
        with self._lock:
            self._dirty = {p for p in self._dirty if p[0] not in gone}
            self._dirty_arr = None
            self._gen += 1

    # --- the pass (writer thread) --------------------------------------------------------------

    def run(self, con: duckdb.DuckDBPyConnection, host: RollupHost, now_ms: int, max_blocks: int) -> bool:
        """One bounded piece of work: dirty blocks first, then up to ``max_blocks`` new blocks per
        resolution, then retention. Returns True when more work is left (call again)."""
        if not self.enabled:
            return False
        self.stats.passes += 1
        more = self._recompute_dirty(con, host)
        more |= self._advance_5m(con, host, now_ms, max_blocks)
        more |= self._advance_1h(con, max_blocks)
        self._retention(con, now_ms)
        return more

    def _tx(self, con: duckdb.DuckDBPyConnection) -> contextlib.AbstractContextManager[None]:
        @contextlib.contextmanager
        def tx() -> Any:
            con.execute("BEGIN TRANSACTION")
            try:
                yield
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                self.load(con)
                raise
        return tx()

    def _set_cov(self, con: duckdb.DuckDBPyConnection, res: int, lo: int, hi: int) -> None:
        name = NAMES[res]
        con.execute("DELETE FROM clearsight_meta WHERE key IN (?, ?)", [f"rollup_{name}_from", f"rollup_{name}_until"])
        con.execute("INSERT INTO clearsight_meta VALUES (?, ?), (?, ?)",
                    [f"rollup_{name}_from", str(lo), f"rollup_{name}_until", str(hi)])

    def _write_rows(self, con: duckdb.DuckDBPyConnection, res: int, sids: IdArray, b: Buckets) -> None:
        """Inserts the buckets (sorted by series, end) as one row per (series, block)."""
        if len(b) == 0:
            return
        tbl = flat_columns(sids, b, res)
        scheme = SCHEMES[res]
        con.register("_clearsight_rollup", tbl)
        try:
            for key in np.unique(scheme.keys(tbl["block_start"])).tolist():
                part = scheme.of(key)
                if key not in self._parts[res]:
                    scheme.create(con, part, PART_DDL)
                    self._parts[res][key] = part  # a rollback reloads the list (load)
                con.execute(_INSERT.format(table=part.name), [part.start, part.end])
        finally:
            con.unregister("_clearsight_rollup")
        bs = tbl["block_start"]
        new = np.ones(len(b), dtype=bool)
        new[1:] = (sids[1:] != sids[:-1]) | (bs[1:] != bs[:-1])
        self.stats.blocks_written[res] += int(np.count_nonzero(new))
        self.stats.buckets_written[res] += len(b)

    def _five_minute(self, host: RollupHost, ids: IdArray, lo: int, hi: int) -> tuple[IdArray, Buckets]:
        """5-minute buckets of ``ids`` over the blocks in (lo, hi], read raw in slices."""
        parts_s: list[IdArray] = []
        parts_b: list[Buckets] = []
        for a in range(0, ids.size, _SLICE_SERIES):
            s, t, v = host.rollup_raw(ids[a:a + _SLICE_SERIES], lo + 1, hi)
            bs, b = from_samples(s, t, v, FIVE_MINUTES_MS)
            parts_s.append(bs)
            parts_b.append(b)
        if not parts_s:
            return np.zeros(0, dtype=np.uint32), Buckets.empty()
        return np.concatenate(parts_s), Buckets.concat(parts_b)

    def _read_rows(self, con: duckdb.DuckDBPyConnection, res: int, ids: IdArray | None, lo: int,
                   hi: int) -> tuple[IdArray, Buckets]:
        """Rows of blocks starting in [lo, hi) (of ``ids``, or all), decoded, sorted by (series, end)."""
        parts = self._overlapping(res, lo, hi)
        if not parts:
            return np.zeros(0, dtype=np.uint32), Buckets.empty()
        one = _SELECT + (" AND series_id IN (SELECT series_id FROM _clearsight_rids)" if ids is not None else "")
        sql = " UNION ALL ".join(one.format(table=p.name) for p in parts)
        if ids is not None:
            con.register("_clearsight_rids", {"series_id": ids.astype(np.uint32)})
        try:
            cols = con.execute(sql, [lo, hi] * len(parts)).fetchnumpy()
        finally:
            if ids is not None:
                con.unregister("_clearsight_rids")
        return from_columns(cols, res)

    def _overlapping(self, res: int, lo: int, hi: int) -> list[retention.Partition]:
        """The partitions of ``res`` holding blocks that start in [lo, hi)."""
        return [p for start, p in sorted(self._parts[res].items()) if start < hi and p.end > lo]

    def _recompute_dirty(self, con: duckdb.DuckDBPyConnection, host: RollupHost) -> bool:
        with self._lock:
            todo = sorted(self._dirty, key=lambda p: (p[1], p[0]))[:_DIRTY_PER_PASS]
            left = len(self._dirty) - len(todo)
        if not todo:
            return False
        arr = np.asarray(todo, dtype=np.int64)
        cov1 = self._cov.get(ONE_HOUR_MS)
        with self._tx(con):
            days: dict[int, list[int]] = {}
            for block in np.unique(arr[:, 1]).tolist():
                ids = np.unique(arr[arr[:, 1] == block, 0]).astype(np.uint32)
                sids, b = self._five_minute(host, ids, block, block + ONE_HOUR_MS)
                self._delete_rows(con, FIVE_MINUTES_MS, ids, block)
                self._write_rows(con, FIVE_MINUTES_MS, sids, b)
                day = block - block % DAY_MS
                if cov1 is not None and cov1[0] <= day and day + DAY_MS <= cov1[1]:
                    days.setdefault(day, []).extend(ids.tolist())
            for day, id_list in days.items():
                ids = np.unique(np.asarray(id_list, dtype=np.uint32))
                fs, fb = self._read_rows(con, FIVE_MINUTES_MS, ids, day, day + DAY_MS)
                self._delete_rows(con, ONE_HOUR_MS, ids, day)
                self._write_rows(con, ONE_HOUR_MS, *coarsen(fs, fb, ONE_HOUR_MS))
            con.register("_clearsight_done", {"series_id": arr[:, 0].astype(np.uint32), "block_start": arr[:, 1]})
            try:
                con.execute("DELETE FROM rollup_dirty USING _clearsight_done d WHERE rollup_dirty.series_id = "
                            "d.series_id AND rollup_dirty.block_start = d.block_start")
            finally:
                con.unregister("_clearsight_done")
        with self._lock:
            self._dirty.difference_update(todo)
            self._dirty_arr = None
            self._gen += 1
        self.stats.dirty_recomputed += len(todo)
        return left > 0

    def _delete_rows(self, con: duckdb.DuckDBPyConnection, res: int, ids: IdArray, block: int) -> None:
        part = self._parts[res].get(SCHEMES[res].start_of(block))
        if part is None:
            return
        con.register("_clearsight_del", {"series_id": ids.astype(np.uint32)})
        try:
            con.execute(f"DELETE FROM {part.name} WHERE block_start = ? AND series_id IN "
                        "(SELECT series_id FROM _clearsight_del)", [block])
        finally:
            con.unregister("_clearsight_del")

    def _advance_5m(self, con: duckdb.DuckDBPyConnection, host: RollupHost, now_ms: int, max_blocks: int) -> bool:
        target = (now_ms - self.settle_ms) // ONE_HOUR_MS * ONE_HOUR_MS
        c = self._cov.get(FIVE_MINUTES_MS)
        if c is None:
            first = host.rollup_oldest_ms()
            if first is None:
                return False
            # The first block: the hour of the oldest sample the store holds (or the retention's).
            start = max(first - first % ONE_HOUR_MS, now_ms - self.retention_ms[FIVE_MINUTES_MS])
            start -= start % ONE_HOUR_MS
            c = (start, start)
        lo, until = c
        done = 0
        while until + ONE_HOUR_MS <= target and done < max_blocks:
            nxt = until + ONE_HOUR_MS
            ids = host.rollup_live_ids(until + 1, nxt)
            with self._tx(con):
                sids, b = self._five_minute(host, ids, until, nxt)
                self._write_rows(con, FIVE_MINUTES_MS, sids, b)
                self._set_cov(con, FIVE_MINUTES_MS, lo, nxt)
            until = nxt
            done += 1
            with self._lock:
                self._cov[FIVE_MINUTES_MS] = (lo, until)
                self._publish_cov()
        if FIVE_MINUTES_MS not in self._cov and done == 0:
            with self._lock:
                self._cov[FIVE_MINUTES_MS] = c  # nothing finalised yet: remember the start
                self._publish_cov()
        return until + ONE_HOUR_MS <= target

    def _advance_1h(self, con: duckdb.DuckDBPyConnection, max_blocks: int) -> bool:
        c5 = self._cov.get(FIVE_MINUTES_MS)
        if c5 is None:
            return False
        target = c5[1] - c5[1] % DAY_MS
        c = self._cov.get(ONE_HOUR_MS)
        if c is None:
            start = -(-c5[0] // DAY_MS) * DAY_MS
            c = (start, start)
        lo, until = c
        done = 0
        while until + DAY_MS <= target and done < max_blocks:
            nxt = until + DAY_MS
            with self._tx(con):
                fs, fb = self._read_rows(con, FIVE_MINUTES_MS, None, until, nxt)
                self._write_rows(con, ONE_HOUR_MS, *coarsen(fs, fb, ONE_HOUR_MS))
                self._set_cov(con, ONE_HOUR_MS, lo, nxt)
            until = nxt
            done += 1
            with self._lock:
                self._cov[ONE_HOUR_MS] = (lo, until)
                self._publish_cov()
        if ONE_HOUR_MS not in self._cov:
            with self._lock:
                self._cov[ONE_HOUR_MS] = c
                self._publish_cov()
        return until + DAY_MS <= target

    def _retention(self, con: duckdb.DuckDBPyConnection, now_ms: int) -> None:
        for res, block in BLOCK_MS.items():
            c = self._cov.get(res)
            if c is None:
                continue
            cutoff = now_ms - self.retention_ms[res]
            cutoff -= cutoff % block
            if cutoff <= c[0]:
                continue
            new_from = min(cutoff, c[1])
            gone = retention.expired(self._parts[res].values(), new_from)
            with self._tx(con):
                retention.drop(con, gone)  # whole partitions; rows below new_from in the next stay, unread
                if res == FIVE_MINUTES_MS:
                    con.execute("DELETE FROM rollup_dirty WHERE block_start < ?", [new_from])
                self._set_cov(con, res, new_from, c[1])
            with self._lock:
                for p in gone:
                    self._parts[res].pop(p.start, None)
                self._cov[res] = (new_from, c[1])
                self._publish_cov()
                if res == FIVE_MINUTES_MS:
                    self._dirty = {p for p in self._dirty if p[1] >= new_from}
                    self._dirty_arr = None
                self._gen += 1

    # --- reads -----------------------------------------------------------------------------------

    def _dirty_overlaps(self, ids: IdArray, start_ms: int, end_ms: int) -> bool:
        with self._lock:
            if not self._dirty:
                return False
            if self._dirty_arr is None:
                d = np.asarray(sorted(self._dirty), dtype=np.int64).reshape(-1, 2)
                self._dirty_arr = (d[:, 0], d[:, 1])
            d_sid, d_block = self._dirty_arr
        hit = (d_block + ONE_HOUR_MS > start_ms) & (d_block < end_ms) & np.isin(d_sid, ids)
        return bool(hit.any())

    def select(self, host: RollupHost, tenant: str, matchers: Sequence[Matcher], res: int, start_ms: int,
               end_ms: int) -> RollupData | None:
        """Buckets ending in (start_ms, end_ms] (see ``store.interface.RollupReader``)."""
        with self._lock:
            cov, gen = self._cov.get(res), self._gen
        if cov is None or start_ms < cov[0] or end_ms > cov[1]:
            self.stats.fallbacks += 1
            return None
        ids = host.rollup_series_ids(tenant, matchers)
        if ids.size and (host.rollup_has_histograms(ids) or self._dirty_overlaps(ids, start_ms, end_ms)):
            self.stats.fallbacks += 1
            return None
        block = BLOCK_MS[res]
        if ids.size:
            with host.rollup_reader() as cur:
                sids, b = self._read_rows(cur, res, ids, start_ms - start_ms % block, end_ms)
        else:
            sids, b = np.zeros(0, dtype=np.uint32), Buckets.empty()
        with self._lock:
            moved = self._gen != gen or self._cov.get(res, (0, 0))[0] > start_ms
        if moved or self._dirty_overlaps(ids, start_ms, end_ms):
            self.stats.fallbacks += 1
            return None
        keep = (b.end > start_ms) & (b.end <= end_ms)
        if not bool(keep.all()):
            sids, b = sids[keep], b.take(np.flatnonzero(keep))
        present, counts = np.unique(sids, return_counts=True)
        labels = host.rollup_labels(present)
        order = sorted(range(len(labels)), key=labels.__getitem__)
        offs = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if order != list(range(len(labels))):
            idx = np.concatenate([np.arange(offs[i], offs[i + 1]) for i in order]).astype(np.intp)
            b = b.take(idx)
            labels = [labels[i] for i in order]
            offs = np.concatenate([[0], np.cumsum(counts[order])]).astype(np.int64)
        self.stats.reads += 1
        self.stats.buckets_read += len(b)
        return RollupData(labels, offs, b)
