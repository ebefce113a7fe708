"""The embedded log store: ``logs.duckdb`` in the data directory, per UTC day a head table of rows
and sealed block tables.

Write path: ``append`` queues ``(tenant, batch, future)`` on the storage kernel's
``GroupCommitWriter``; the writer thread drains everything queued, resolves stream ids (a dict
lookup per stream; new streams get the next id), enforces the per-tenant stream limit, turns all
drained batches into one Arrow table, inserts each UTC day's rows into its head ``logs_YYYYMMDD``,
commits once and only then resolves the futures (acknowledged = durable across ``kill -9``).

Sealing: once a day's head holds ``seal_rows`` rows, the writer moves them, in one transaction,
into a new table ``logblk_YYYYMMDD_NNNNNN`` of per-stream blocks (``log_blocks``: lines sorted by
time, bodies concatenated and zstd-compressed, the other columns in one compressed Arrow batch),
then checkpoints (so deleted head rows never occupy the file). Each line keeps a write sequence
number within its day, so equal timestamps keep their write order; head rows come after every
sealed line of their day. An in-memory directory lists every block (stream, time and sequence
range, line count).

Read path: stream matchers are resolved against the in-memory label index (``index.TenantIndex``,
as for metric series) and the per-stream min/max timestamps; only the day tables the time range
covers are queried, newest first for ``backward`` (oldest first for ``forward``), stopping once
``limit`` entries are found. Line filters and the ``BodyPrefilter`` are SQL predicates
(``contains``, ``regexp_matches``, DuckDB's JSON functions: vectorised, no Python per line) run on
the head table and on the decoded rows of the blocks the directory selects (stream, time range),
a batch at a time, in time order, stopping when no further block can rank; a block whose
decompressed body lacks a ``|=`` substring is skipped before decoding (``memmem`` on two threads).

Retention drops whole day tables inside a kernel ``Publication`` (reads that overlap it retry).

The file is created by the first write that adds something (a log entry, or a span through
``run_on_writer``): until then the store runs on the kernel's in-memory stand-in (``Database``,
``lazy``), so a server that never receives logs, events or spans leaves no ``logs.duckdb`` (an empty
one took ~140 KiB). Reads before that answer empty, as an empty file would.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt
import orjson

from clearsight.lazy_module import lazy_module
from clearsight.model.labels import Labels, make_labels
from clearsight.model.logs import SPAN_ID_BYTES, TRACE_ID_BYTES, LogBatch
from clearsight.model.matchers import Matcher
from clearsight.store.embedded.index import IdArray, TenantIndex, select_sets
from clearsight.store.embedded.logs_schema import (
    BLOCK_COLUMNS,
    BLOCKS_PREFIX,
    DAY_NS,
    DDL,
    LOG_DAYS,
    LOGS_DB_FILE,
    LOGS_SCHEMA_VERSION,
    PARTITION_COLUMNS,
    blocks_name,
    blocks_of,
    day_of,
    partition_name,
)
from clearsight.store.interface import InvalidBatch, LimitExceeded, StoreClosed, StoreError
from clearsight.store.kernel import retention
from clearsight.store.kernel.database import Database
from clearsight.store.kernel.publication import Publication, Retry
from clearsight.store.kernel.retention import Partition
from clearsight.store.kernel.writer import Command, GroupCommitWriter, retry_after_estimate, run_in_groups
from clearsight.store.logs_interface import (
    BodyPrefilter,
    Direction,
    LineFilter,
    LogAppendResult,
    LogSizes,
    LogStoreStats,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc

    from clearsight.store.embedded import log_blocks
else:  # imported on first use: a server that stores no log line never loads pyarrow (lazy_module.py)
    pa = lazy_module("pyarrow")
    pc = lazy_module("pyarrow.compute")
    log_blocks = lazy_module("clearsight.store.embedded.log_blocks")

log = logging.getLogger(__name__)
T = TypeVar("T")

_NO_MAX = -(2**62)
_NO_MIN = 2**62
_INLINE_IDS = 512  # stream id sets up to this size are written into the SQL; larger ones are joined
_COLUMNS = "ts, stream_id, severity, severity_text, body, attr_keys, attr_values, trace_id, span_id, resource_id"
_ZERO_TRACE = bytes(TRACE_ID_BYTES)
_ZERO_SPAN = bytes(SPAN_ID_BYTES)
_HEAD_SEQ = 2**62  # head rows order after every sealed line of their day: seq = _HEAD_SEQ + rowid
_BLOCK_LINES = 16_384  # at most this many lines per sealed block
_SEAL_CHECKPOINT_WAL = 16 << 20  # a seal checkpoints when the WAL is larger than this
_SCAN_THREADS = 2  # threads decompressing and searching block bodies for one read
_DECODE_LINES = 262_144  # a read decodes blocks in batches of about this many lines (at most)
_REF_COLUMNS = "rowid, stream_id, min_ts, max_ts, first_seq, last_seq, n, body_bytes"


class _BlockRef(NamedTuple):
    """Where a sealed block is (its day's ``k``-th block table, ``rowid``) and what it holds."""

    k: int
    rowid: int
    info: log_blocks.BlockInfo


def _refs(k: int, rows: list[Any]) -> list[_BlockRef]:
    """``_BlockRef``s of rows of ``SELECT {_REF_COLUMNS}`` from block table ``k``."""
    return [_BlockRef(k, int(r[0]), log_blocks.BlockInfo(*(int(x) for x in r[1:]))) for r in rows]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return tuple(rows[0]) if rows else ()


@dataclass
class _Append:
    tenant: str
    batch: LogBatch
    future: concurrent.futures.Future[LogAppendResult]


class EmbeddedLogStore:
    """``store.logs_interface.LogStore`` on ``data_dir/logs.duckdb``.

    - ``retention_ns``: ``apply_retention(now)`` drops the day tables whose every entry is older
      than ``now - retention_ns`` (so up to one extra day is kept).
    - ``tenant_retention_ns``: tenants with their own retention; days then go past the longest
      retention and each tenant's older rows are deleted from the days kept (``apply_retention``).
    - ``max_streams_per_tenant``: a batch that would create more streams than this for its tenant
      is rejected whole (``LimitExceeded``); 0 disables the limit.
    - ``queue_max_batches``: ``append`` raises ``Overloaded`` when this many batches wait.
    - ``duckdb_threads`` / ``duckdb_memory_limit``: DuckDB settings (None keeps its defaults).
    - ``seal_rows``: once a day's head table holds this many rows the writer seals them into
      compressed per-stream blocks (``log_blocks``); closing the store seals heads of at least a
      tenth of it.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        retention_ns: int = 7 * DAY_NS,
        max_streams_per_tenant: int = 0,
        queue_max_batches: int = 256,
        duckdb_threads: int | None = None,
        duckdb_memory_limit: str | None = None,
        wal_checkpoint_threshold: str = "64MB",
        tenant_retention_ns: dict[str, int] | None = None,
        seal_rows: int = 100_000,
    ) -> None:
        if retention_ns <= 0 or any(r <= 0 for r in (tenant_retention_ns or {}).values()):
            raise ValueError("retention_ns must be positive")
        if queue_max_batches <= 0:
            raise ValueError("queue_max_batches must be positive")
        if seal_rows <= 0:
            raise ValueError("seal_rows must be positive")
        self.seal_rows = seal_rows
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / LOGS_DB_FILE
        self.retention_ns = retention_ns
        self.tenant_retention_ns = dict(tenant_retention_ns or {})
        self.max_streams_per_tenant = max_streams_per_tenant
        self._db = Database(self.path, checkpoint_threshold=wal_checkpoint_threshold, threads=duckdb_threads,
                            memory_limit=duckdb_memory_limit, what="log store", lazy=True)
        self._wcon = self._db.writer
        self._pub = Publication()

        # Stream and partition state: written by the writer thread after commit, read under _lock.
        self._lock = threading.RLock()
        self._index: dict[str, TenantIndex] = {}
        self._labels: list[Labels] = [()]  # by stream id; id 0 is never used
        self._canon: dict[str, dict[Labels, int]] = {}
        self._min_ts = np.full(1024, _NO_MIN, dtype=np.int64)
        self._max_ts = np.full(1024, _NO_MAX, dtype=np.int64)
        self._days: dict[int, int] = {}  # day number -> entries of the day (head rows and sealed lines)
        self._head: dict[int, int] = {}  # day number -> rows in its head table (writer only)
        self._dir: dict[int, list[_BlockRef]] = {}  # day number -> its sealed blocks
        self._resources: dict[Labels, int] = {(): 0}  # writer only
        self._res_labels: list[Labels] = [()]
        self._next_stream = 1

        self._scan_pool = concurrent.futures.ThreadPoolExecutor(_SCAN_THREADS, thread_name_prefix="clearsight-logscan")
        self._stats = LogStoreStats()
        self._writer: GroupCommitWriter[_Append] = GroupCommitWriter(
            "clearsight-logs-writer", self._run, queue_max=queue_max_batches,
            retry_after=self._retry_after, on_close=self._writer_done, recover=self._reopen, what="log store")
        self._closed = False
        self._close_lock = threading.Lock()
        try:
            self._init_schema(self._wcon)
            self._load_state()
        except BaseException:
            self._db.close()
            raise
        self._writer.start()

    # --- setup -----------------------------------------------------------------------------------

    def _init_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("BEGIN TRANSACTION")
        for stmt in DDL:
            con.execute(stmt)
        row = _one(con, "SELECT value FROM logs_meta WHERE key = 'schema_version'")
        if not row:
            con.execute("INSERT INTO logs_meta VALUES ('schema_version', ?)", [str(LOGS_SCHEMA_VERSION)])
        elif int(row[0]) == 1:  # version 1 had no block tables: _load_state creates them
            con.execute("UPDATE logs_meta SET value = ? WHERE key = 'schema_version'", [str(LOGS_SCHEMA_VERSION)])
        con.execute("COMMIT")
        if row and int(row[0]) not in (1, LOGS_SCHEMA_VERSION):
            raise StoreError(f"{self.path}: log schema version {row[0]}, this build reads {LOGS_SCHEMA_VERSION}")

    def _ensure_file(self) -> None:
        """Writer thread, before a write that adds something: when the store still runs on the
        in-memory stand-in, creates ``logs.duckdb`` with the schema and switches to it (the stand-in
        holds the schema only, so there is no state to reload)."""
        if self._db.materialize(self._init_schema):
            self._wcon = self._db.writer

    def _reopen(self) -> None:
        """The writer's recovery after the database failed: reopen it, rebuild memory from it."""
        self._db.reopen()
        self._wcon = self._db.writer
        self._load_state()

    def _partition_days(self) -> list[int]:
        return [p.start // DAY_NS for p in LOG_DAYS.list(self._wcon)]

    def _load_state(self) -> None:
        """(Re)builds every in-memory structure from the database."""
        con = self._wcon
        with self._lock:
            self._index, self._canon = {}, {}
            top_row = _one(con, "SELECT coalesce(max(stream_id), 0) FROM log_streams")
            top = int(top_row[0]) if top_row else 0
            self._labels = [()] * (top + 1)
            self._next_stream = top + 1
            for sid, tenant, text in con.execute(
                    "SELECT stream_id, tenant, labels FROM log_streams ORDER BY stream_id").fetchall():
                labels = make_labels(orjson.loads(text))
                self._labels[sid] = labels
                self._canon.setdefault(tenant, {})[labels] = sid
                self._index.setdefault(tenant, TenantIndex()).add(sid, labels)
            self._resources, self._res_labels = {(): 0}, [()]
            rows = con.execute("SELECT resource_id, attrs FROM log_resources ORDER BY resource_id").fetchall()
            self._res_labels = [()] * ((rows[-1][0] if rows else 0) + 1)
            for rid, text in rows:
                labels = make_labels(orjson.loads(text))
                self._resources[labels] = rid
                self._res_labels[rid] = labels
            self._days, self._head, self._dir = {}, {}, {}
            for day in self._partition_days():
                n = _one(con, f"SELECT count(*) FROM {partition_name(day)}")
                self._head[day] = int(n[0])
                self._dir[day] = self._load_dir(day)
                self._days[day] = int(n[0]) + sum(b.info.n for b in self._dir[day])
            self._min_ts, self._max_ts = self._stream_bounds(max(1024, top + 1))

    def _load_dir(self, day: int) -> list[_BlockRef]:
        """The day's sealed blocks, read from its block tables."""
        names = self._wcon.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND starts_with(table_name, ?)",
            [BLOCKS_PREFIX]).fetchall()
        out: list[_BlockRef] = []
        for (name,) in names:
            dk = blocks_of(name)
            if dk is None or dk[0] != day:
                continue
            out += _refs(dk[1], self._wcon.execute(f"SELECT {_REF_COLUMNS} FROM {name}").fetchall())
        return out

    def _stream_bounds(self, cap: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        lo = np.full(cap, _NO_MIN, dtype=np.int64)
        hi = np.full(cap, _NO_MAX, dtype=np.int64)
        for day in self._days:
            mm = self._wcon.execute(
                f"SELECT stream_id, min(ts) AS lo, max(ts) AS hi FROM {partition_name(day)} GROUP BY stream_id"
            ).fetchnumpy()
            ids = np.asarray(mm["stream_id"], dtype=np.int64)
            np.minimum.at(lo, ids, np.asarray(mm["lo"], dtype=np.int64))
            np.maximum.at(hi, ids, np.asarray(mm["hi"], dtype=np.int64))
            refs = self._dir.get(day, [])
            if refs:
                ids = np.array([b.info.stream_id for b in refs], dtype=np.int64)
                np.minimum.at(lo, ids, np.array([b.info.min_ts for b in refs], dtype=np.int64))
                np.maximum.at(hi, ids, np.array([b.info.max_ts for b in refs], dtype=np.int64))
        return lo, hi

    # --- writes ----------------------------------------------------------------------------------

    def append(self, tenant: str, batch: LogBatch) -> concurrent.futures.Future[LogAppendResult]:
        fut: concurrent.futures.Future[LogAppendResult] = concurrent.futures.Future()
        if not isinstance(tenant, str) or not tenant:
            self._writer.command("barrier")  # raises StoreClosed like an append would
            fut.set_exception(InvalidBatch("tenant must be a non-empty string"))
            return fut
        self._writer.submit(_Append(tenant, batch, fut))
        return fut

    def _retry_after(self, queued: int) -> float:
        return retry_after_estimate(self._stats.commit_seconds_sum, self._stats.commits_total, queued)

    def flush(self) -> None:
        self._writer.command("flush").result()

    def sync(self) -> None:
        """Waits until everything queued before the call is committed (tests, benchmarks)."""
        self._writer.command("barrier").result()

    def apply_retention(self, now_ns: int) -> int:
        """Drops the days older than the longest retention (``retention_ns`` or a tenant's); when
        tenants' retentions differ, also deletes the rows of each tenant older than its own."""
        longest = max([self.retention_ns, *self.tenant_retention_ns.values()])
        removed: int = self._writer.command("retention", now_ns - longest).result()
        if longest > self.retention_ns:  # tenants on the default retention keep less than the days hold
            removed += self._writer.command("tenant_retention", (None, now_ns - self.retention_ns)).result()
        for tenant, r in sorted(self.tenant_retention_ns.items()):
            if r < longest:
                removed += self._writer.command("tenant_retention", (tenant, now_ns - r)).result()
        return removed

    def run_on_writer(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *,
                      adds: bool = True) -> concurrent.futures.Future[T]:
        """Runs ``fn(writer connection)`` on the writer thread, ordered with the log writes, for a store
        keeping its own tables in this file (the span store, ``span_store.py``); ``fn`` runs its own
        transaction. The future holds what ``fn`` returned or raised. ``StoreClosed`` when closed.
        ``adds``: ``fn`` may add data, so the file is created first if it does not exist yet (False for
        ``fn`` that only drop or delete: it runs on the empty in-memory stand-in then)."""
        return self._writer.command("call", (fn, adds))

    def reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A reader cursor of this file (for the span store)."""
        return self._reader()

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._writer.close()
            # Day partitions dropped by retention leave their blocks free in the file: a clean
            # close gives them back (kernel/reclaim.py; skipped for files over its size bound).
            self._db.close(reclaim_free_blocks=True)
            self._scan_pool.shutdown()
            self._closed = True

    def __enter__(self) -> EmbeddedLogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the writer thread -----------------------------------------------------------------------

    def _writer_done(self) -> None:
        self._seal_heads(max(1, self.seal_rows // 10))
        self._wcon.execute("CHECKPOINT")

    def _command(self, cmd: Command) -> Any:
        if cmd.kind == "flush":
            self._wcon.execute("CHECKPOINT")
            return None
        if cmd.kind == "retention":
            return self._retention(int(cmd.arg))
        if cmd.kind == "tenant_retention":
            return self._tenant_retention(*cmd.arg)
        if cmd.kind == "call":  # run_on_writer
            fn, adds = cmd.arg
            if adds:
                self._ensure_file()
            return fn(self._wcon)
        return None  # barrier

    def _run(self, items: list[_Append | Command]) -> None:
        run_in_groups(items, self._commit_group, self._command)

    def _check_batch(self, batch: LogBatch) -> None:
        try:
            batch.check()
        except (ValueError, AttributeError, TypeError, IndexError) as e:
            raise InvalidBatch(str(e)) from None
        if len(batch) and int(batch.timestamps.min()) < 0:
            raise InvalidBatch("log entry timestamps before 1970-01-01 cannot be stored")

    def _commit_group(self, group: list[_Append]) -> None:
        t0 = time.perf_counter()
        errors: dict[int, BaseException] = {}
        new_streams: list[tuple[int, str, Labels]] = []
        pending: dict[tuple[str, Labels], int] = {}
        new_res: list[tuple[int, Labels]] = []
        pending_res: dict[Labels, int] = {}
        parts: list[tuple[int, LogBatch, npt.NDArray[np.uint32], npt.NDArray[np.uint32]]] = []
        next_stream = self._next_stream
        created_by: dict[int, int] = {}
        for k, req in enumerate(group):
            try:
                self._check_batch(req.batch)
                canon = self._canon.get(req.tenant, {})
                sids = np.empty(len(req.batch.streams), dtype=np.uint32)
                fresh: list[tuple[int, Labels]] = []
                for i, labels in enumerate(req.batch.streams):
                    sid = canon.get(labels) or pending.get((req.tenant, labels))
                    if sid is None:
                        fresh.append((i, labels))
                    else:
                        sids[i] = sid
                if fresh and self.max_streams_per_tenant:
                    have = len(canon) + sum(1 for t, _ in pending if t == req.tenant)
                    if have + len(fresh) > self.max_streams_per_tenant:
                        raise LimitExceeded(
                            "max_streams_per_tenant",
                            f"tenant {req.tenant!r} would have {have + len(fresh)} log streams, over the limit "
                            f"of {self.max_streams_per_tenant} (logs.max_streams_per_tenant)")
                for i, labels in fresh:
                    sids[i] = next_stream
                    pending[(req.tenant, labels)] = next_stream
                    new_streams.append((next_stream, req.tenant, labels))
                    next_stream += 1
                created_by[k] = len(fresh)
                rids = np.empty(len(req.batch.resources), dtype=np.uint32)
                for i, labels in enumerate(req.batch.resources):
                    rid = self._resources.get(labels)
                    if rid is None:
                        rid = pending_res.get(labels)
                    if rid is None:
                        rid = pending_res[labels] = len(self._res_labels) + len(new_res)
                        new_res.append((rid, labels))
                    rids[i] = rid
                parts.append((k, req.batch, sids, rids))
            except StoreError as e:
                errors[k] = e
        written = 0
        try:
            if new_streams or new_res or any(len(p[1]) for p in parts):
                self._ensure_file()
            table = _arrow_of(parts) if parts else None
            days: dict[int, int] = {}
            self._wcon.execute("BEGIN TRANSACTION")
            if new_streams:
                self._wcon.executemany("INSERT INTO log_streams VALUES (?, ?, ?)",
                                       [[sid, t, orjson.dumps(list(lbl)).decode()] for sid, t, lbl in new_streams])
            if new_res:
                self._wcon.executemany("INSERT INTO log_resources VALUES (?, ?)",
                                       [[rid, orjson.dumps(list(lbl)).decode()] for rid, lbl in new_res])
            if table is not None and table.num_rows:
                day_col = np.asarray(table.column("ts").to_numpy()) // DAY_NS
                for day in np.unique(day_col).tolist():
                    sel = np.flatnonzero(day_col == day)
                    part = table.take(pa.array(sel)) if sel.size != table.num_rows else table
                    name = partition_name(int(day))
                    if int(day) not in self._days:
                        self._wcon.execute(f"CREATE TABLE IF NOT EXISTS {name} {PARTITION_COLUMNS}")
                    _insert(self._wcon, name, part, _COLUMNS)
                    days[int(day)] = int(sel.size)
                written = table.num_rows
            self._wcon.execute("COMMIT")
        except Exception as e:
            log.exception("log group commit failed; rolling back")
            with contextlib.suppress(duckdb.Error):
                self._wcon.execute("ROLLBACK")
            self._load_state()
            err = StoreError(f"commit failed: {e}")
            for k in range(len(group)):
                errors.setdefault(k, err)
            parts = []
            written = 0
        else:
            self._publish(new_streams, new_res, days, parts, next_stream)
            for day, n in days.items():
                self._head[day] = self._head.get(day, 0) + n
        st = self._stats
        st.commits_total += 1
        st.commit_seconds_sum += time.perf_counter() - t0
        st.entries_written_total += written
        results: dict[int, LogAppendResult] = {}
        for k, batch, _sids, _rids in parts:
            nbytes = batch.body_bytes
            st.bytes_written_total += nbytes
            results[k] = LogAppendResult(entries_written=len(batch), streams_created=created_by.get(k, 0),
                                         bytes_written=nbytes)
        for k, req in enumerate(group):
            if k in errors:
                req.future.set_exception(errors[k])
            else:
                req.future.set_result(results[k])
        if written:  # after the acknowledgements: a seal does not delay the group's answers
            self._seal_heads(self.seal_rows)

    def _publish(self, new_streams: list[tuple[int, str, Labels]], new_res: list[tuple[int, Labels]],
                 days: dict[int, int], parts: list[tuple[int, LogBatch, npt.NDArray[np.uint32],
                                                          npt.NDArray[np.uint32]]], next_stream: int) -> None:
        """The committed group's effect on the in-memory state (after COMMIT)."""
        for rid, labels in new_res:
            self._resources[labels] = rid
            self._res_labels.append(labels)
        with self._lock:
            if next_stream > self._min_ts.shape[0]:
                cap = max(next_stream, 2 * self._min_ts.shape[0])
                lo = np.full(cap, _NO_MIN, dtype=np.int64)
                hi = np.full(cap, _NO_MAX, dtype=np.int64)
                lo[: self._min_ts.shape[0]] = self._min_ts
                hi[: self._max_ts.shape[0]] = self._max_ts
                self._min_ts, self._max_ts = lo, hi
            for sid, tenant, labels in new_streams:
                self._labels.append(labels)
                self._canon.setdefault(tenant, {})[labels] = sid
                self._index.setdefault(tenant, TenantIndex()).add(sid, labels)
            self._next_stream = next_stream
            for _k, batch, sids, _rids in parts:
                if not len(batch):
                    continue
                ids = sids[batch.stream_idx].astype(np.int64)
                np.minimum.at(self._min_ts, ids, batch.timestamps)
                np.maximum.at(self._max_ts, ids, batch.timestamps)
            for day, n in days.items():
                self._days[day] = self._days.get(day, 0) + n

    def _seal_heads(self, min_rows: int) -> None:
        """Seals every day whose head holds at least ``min_rows`` rows (a failed seal is logged and
        leaves the rows in the head, where reads find them)."""
        sealed = False
        for day in sorted(d for d, n in self._head.items() if n >= min_rows):
            try:
                self._seal(day)
                sealed = True
            except Exception:
                log.exception("sealing the log head of %s failed; its rows stay in the head", partition_name(day))
                with contextlib.suppress(duckdb.Error):
                    self._wcon.execute("ROLLBACK")
                with contextlib.suppress(Exception):
                    self._load_state()  # memory follows the database, whatever the seal got to
                self._head[day] = 0  # retried once another seal_rows rows arrived, not after every commit
        # Checkpoint right after a seal, heads empty: head rows written into the file only to be
        # deleted at the next seal would leave free blocks behind (the file never shrinks).
        with contextlib.suppress(OSError, duckdb.Error):
            if sealed and os.path.getsize(str(self.path) + ".wal") > _SEAL_CHECKPOINT_WAL:
                self._wcon.execute("CHECKPOINT")

    def _seal(self, day: int) -> None:
        """Moves a day's head rows into blocks (one transaction): the rows in write order get the
        day's next sequence numbers, are grouped by stream, sorted by (ts, seq) and encoded in
        blocks of at most ``_BLOCK_LINES`` lines."""
        refs = self._dir.get(day, [])
        k = max((b.k for b in refs), default=-1) + 1
        head, blk = partition_name(day), blocks_name(day, k)
        with self._pub.publishing():
            self._wcon.execute("BEGIN TRANSACTION")
            base_row = (max((b.info.last_seq for b in refs), default=-1) + 1,)
            rows = self._wcon.sql(f"SELECT {_COLUMNS} FROM {head} ORDER BY rowid").to_arrow_table()
            n = rows.num_rows
            if n == 0:
                self._wcon.execute("COMMIT")
                self._head[day] = 0
                return
            seq = np.arange(n, dtype=np.int64) + int(base_row[0])
            rows = rows.append_column("seq", pa.array(seq)).cast(log_blocks.ROW_SCHEMA)
            sid = np.asarray(rows.column("stream_id").to_numpy(), dtype=np.int64)
            ts = np.asarray(rows.column("ts").to_numpy(), dtype=np.int64)
            order = np.lexsort((seq, ts, sid))
            rows = rows.take(pa.array(order))
            sid = sid[order]
            cuts = np.flatnonzero(np.diff(sid)) + 1
            bounds = np.concatenate([[0], cuts, [n]]).tolist()
            blocks: list[log_blocks.Block] = []
            for a, b in itertools.pairwise(bounds):
                for lo in range(a, b, _BLOCK_LINES):
                    blocks.append(log_blocks.encode(int(sid[a]), rows.slice(lo, min(b, lo + _BLOCK_LINES) - lo)))
            table = log_blocks.table_of(blocks)
            self._wcon.execute(f"CREATE TABLE {blk} {BLOCK_COLUMNS}")
            _insert(self._wcon, blk, table, "*")
            self._wcon.execute(f"DELETE FROM {head}")
            self._wcon.execute("COMMIT")
            self._head[day] = 0
            # rowids are final only once committed (uncommitted rows have transaction-local ones)
            added = _refs(k, self._wcon.execute(f"SELECT {_REF_COLUMNS} FROM {blk}").fetchall())
            with self._lock:
                self._dir[day] = refs + added

    def _trim_blocks(self, day: int, cutoff_ns: int, ids: set[int]) -> int:
        """Removes the lines older than ``cutoff_ns`` of the streams ``ids`` from the day's blocks
        (inside the caller's transaction; the caller reloads the day's block directory): blocks
        wholly older are deleted, blocks straddling the cutoff are re-encoded with their newer
        lines (sequence numbers kept)."""
        removed = 0
        for ref in self._dir.get(day, []):
            if ref.info.min_ts >= cutoff_ns or ref.info.stream_id not in ids:
                continue
            blk = blocks_name(day, ref.k)
            meta, body = self._wcon.execute(f"SELECT meta, body FROM {blk} WHERE rowid = ?", [ref.rowid]).fetchall()[0]
            self._wcon.execute(f"DELETE FROM {blk} WHERE rowid = ?", [ref.rowid])
            if ref.info.max_ts < cutoff_ns:
                removed += ref.info.n
                continue
            rows = log_blocks.decode(ref.info.stream_id, ref.info.min_ts, ref.info.first_seq, meta,
                                     log_blocks.body_data(body, ref.info.body_bytes))
            keep = rows.filter(pc.greater_equal(rows.column("ts"), pa.scalar(cutoff_ns, pa.int64())))
            removed += ref.info.n - keep.num_rows
            b = log_blocks.encode(ref.info.stream_id, keep)
            self._wcon.execute(f"INSERT INTO {blk} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [*b.info, b.meta, b.body])
        return removed

    def _retention(self, cutoff_ns: int) -> int:
        """Drops the day tables whose every entry is older than ``cutoff_ns``."""
        parts = retention.expired((LOG_DAYS.of(d * DAY_NS) for d in self._days), cutoff_ns)
        if not parts:
            return 0
        doomed = [p.start // DAY_NS for p in parts]
        removed = sum(self._days[d] for d in doomed)

        def blocks(p: Partition) -> list[str]:  # the day's sealed block tables go with its head
            day = p.start // DAY_NS
            return [blocks_name(day, k) for k in sorted({b.k for b in self._dir.get(day, [])})]

        with self._pub.publishing():
            self._wcon.execute("BEGIN TRANSACTION")
            try:
                retention.drop(self._wcon, parts, also=blocks)
                self._wcon.execute("COMMIT")
            except Exception:
                with contextlib.suppress(duckdb.Error):
                    self._wcon.execute("ROLLBACK")
                raise
            with self._lock:
                for d in doomed:
                    del self._days[d]
                    self._head.pop(d, None)
                    self._dir.pop(d, None)
                self._min_ts, self._max_ts = self._stream_bounds(self._min_ts.shape[0])
        self._stats.entries_removed_total += removed
        return removed

    def _tenant_retention(self, tenant: str | None, cutoff_ns: int) -> int:
        """Deletes the rows older than ``cutoff_ns`` of ``tenant``'s streams (``None``: of every
        tenant without its own retention) from the days that hold such rows."""
        with self._lock:
            tenants = [tenant] if tenant is not None else [t for t in self._canon if t not in self.tenant_retention_ns]
            ids = sorted(sid for t in tenants for sid in self._canon.get(t, {}).values())
        days = sorted(d for d in self._days if d * DAY_NS < cutoff_ns)
        if not ids or not days:
            return 0
        self._wcon.execute("CREATE TEMP TABLE IF NOT EXISTS retention_ids (stream_id UINTEGER)")
        removed: dict[int, int] = {}
        with self._pub.publishing():
            self._wcon.execute("BEGIN TRANSACTION")
            try:
                self._wcon.execute("DELETE FROM retention_ids")
                self._wcon.executemany("INSERT INTO retention_ids VALUES (?)", [(i,) for i in ids])
                for d in days:
                    row = self._wcon.execute(
                        f"DELETE FROM {partition_name(d)} WHERE ts < ? AND stream_id IN "
                        f"(SELECT stream_id FROM retention_ids)", [cutoff_ns]).fetchone()
                    removed[d] = int(row[0]) if row else 0
                    self._head[d] = self._head.get(d, 0) - removed[d]
                    removed[d] += self._trim_blocks(d, cutoff_ns, set(ids))
                self._wcon.execute("COMMIT")
            except Exception:
                with contextlib.suppress(duckdb.Error):
                    self._wcon.execute("ROLLBACK")
                raise
            total = sum(removed.values())
            if total:
                dirs = {d: self._load_dir(d) for d in removed}
                with self._lock:
                    for d, n in removed.items():
                        self._days[d] -= n
                        self._dir[d] = dirs[d]
                    self._min_ts, self._max_ts = self._stream_bounds(self._min_ts.shape[0])
        self._stats.entries_removed_total += total
        return total

    # --- reads -----------------------------------------------------------------------------------

    def _reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._db.reader(lambda: self._writer.open)

    def _ids(self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ns: int, end_ns: int) -> IdArray:
        """Sorted ids of the tenant's streams matching any matcher set, with entries in range."""
        with self._lock:
            idx = self._index.get(tenant)
            if idx is None:
                return np.zeros(0, dtype=np.uint32)
            ids = select_sets(idx, matcher_sets)
            keep = (self._min_ts[ids] <= end_ns) & (self._max_ts[ids] >= start_ns)
        out: IdArray = ids[keep]
        return out

    def check_regex(self, pattern: str) -> None:
        """Raises ValueError when DuckDB's RE2 cannot compile ``pattern``."""
        with self._reader() as cur:
            try:
                cur.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
            except duckdb.Error as e:
                raise ValueError(f"invalid regular expression {pattern!r}: {e}") from None

    def select(self, tenant: str, matchers: Sequence[Matcher], start_ns: int, end_ns: int,
               line_filters: Sequence[LineFilter] = (), limit: int = 100,
               direction: Direction = "backward", prefilter: BodyPrefilter | None = None) -> LogBatch:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if direction not in ("forward", "backward"):
            raise ValueError(f"direction must be forward or backward, not {direction!r}")
        if self._closed or not self._writer.open:
            raise StoreClosed("log store is closed")
        for f in line_filters:
            if f.op in ("|~", "!~"):
                self.check_regex(f.pattern)
        if end_ns < start_ns:
            return LogBatch.empty()
        ids = self._ids(tenant, [matchers], start_ns, end_ns)
        if ids.size == 0:
            return LogBatch.empty()
        where, params = self._where(start_ns, end_ns, line_filters)
        if prefilter is not None:
            _prefilter_sql(prefilter, where, params)
        needles = _needles(line_filters)
        return self._pub.read(lambda: self._read_days(ids, start_ns, end_ns, where, params, needles, limit,
                                                      direction))

    @staticmethod
    def _where(start_ns: int, end_ns: int, line_filters: Sequence[LineFilter]) -> tuple[list[str], list[Any]]:
        where = ["ts >= ?", "ts <= ?"]
        params: list[Any] = [start_ns, end_ns]
        for f in line_filters:
            if f.op == "|=":
                where.append("contains(body, ?)")
            elif f.op == "!=":
                where.append("NOT contains(body, ?)")
            elif f.op == "|~":
                where.append("regexp_matches(body, ?)")
            elif f.op == "!~":
                where.append("NOT regexp_matches(body, ?)")
            else:
                raise ValueError(f"unknown line filter operator {f.op!r}")
            params.append(f.pattern)
        return where, params

    def select_sizes(self, tenant: str, matchers: Sequence[Matcher], start_ns: int, end_ns: int,
                     line_filters: Sequence[LineFilter] = (), limit: int = 1_000_000) -> LogSizes:
        """Stream, timestamp and body size of every matching entry (no bodies leave DuckDB)."""
        if self._closed or not self._writer.open:
            raise StoreClosed("log store is closed")
        for f in line_filters:
            if f.op in ("|~", "!~"):
                self.check_regex(f.pattern)
        empty = LogSizes([], np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64))
        ids = self._ids(tenant, [matchers], start_ns, end_ns) if end_ns >= start_ns else np.zeros(0, np.uint32)
        if ids.size == 0:
            return empty
        where, params = self._where(start_ns, end_ns, line_filters)
        needles = _needles(line_filters)
        plain = not line_filters
        return self._pub.read(lambda: self._read_sizes(ids, start_ns, end_ns, where, params, needles, plain, limit,
                                                       empty))

    @contextlib.contextmanager
    def _scope(self, ids: IdArray) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A reader cursor and the SQL predicate selecting ``ids`` (inline or a joined Arrow table)."""
        with self._reader() as cur:
            joined = ids.size > _INLINE_IDS
            if joined:
                cur.register("_clearsight_ids", pa.table({"sid": ids}))
                yield cur, "stream_id IN (SELECT sid FROM _clearsight_ids)"
            else:
                yield cur, f"stream_id IN ({','.join(map(str, ids.tolist()))})"
            if joined:
                cur.unregister("_clearsight_ids")

    def _blocks(self, day: int, ids: IdArray, start_ns: int, end_ns: int) -> list[_BlockRef]:
        """The day's blocks of the streams ``ids`` overlapping the range."""
        with self._lock:
            refs = self._dir.get(day, [])
        if not refs:
            return []
        want = set(ids.tolist())
        return [b for b in refs if b.info.stream_id in want and b.info.max_ts >= start_ns and b.info.min_ts <= end_ns]

    @staticmethod
    def _fetch(cur: duckdb.DuckDBPyConnection, day: int, refs: list[_BlockRef],
               body: bool) -> dict[tuple[int, int], tuple[Any, Any]]:
        """(k, rowid) -> (meta, body or None) of some of a day's blocks."""
        cols = "rowid, meta, body" if body else "rowid, meta, NULL"
        out: dict[tuple[int, int], tuple[Any, Any]] = {}
        for k in sorted({b.k for b in refs}):
            rowids = ",".join(str(b.rowid) for b in refs if b.k == k)
            try:
                rows = cur.execute(f"SELECT {cols} FROM {blocks_name(day, k)} WHERE rowid IN ({rowids})").fetchall()
            except duckdb.CatalogException:
                raise Retry() from None
            out.update(((k, int(r[0])), (r[1], r[2])) for r in rows)
        if len(out) != len(refs):
            raise Retry()  # a seal or a retention changed the blocks meanwhile
        return out

    def _decoded(self, cur: duckdb.DuckDBPyConnection, day: int, batch: list[_BlockRef],
                 needles: tuple[bytes, ...]) -> pa.Table | None:
        """The rows of a batch of blocks (``log_blocks.ROW_SCHEMA``), without the blocks whose
        body lacks a ``|=`` needle; None when none is left. Bodies are decompressed and searched
        on ``_SCAN_THREADS`` threads."""
        got = EmbeddedLogStore._fetch(cur, day, batch, True)
        bodies = self._scan_pool.map(lambda b: log_blocks.scan(got[(b.k, b.rowid)][1], b.info.body_bytes, needles), batch)
        tables = [log_blocks.decode(b.info.stream_id, b.info.min_ts, b.info.first_seq, got[(b.k, b.rowid)][0], data)
                  for b, data in zip(batch, bodies, strict=True) if data is not None]
        return pa.concat_tables(tables) if tables else None

    def _filtered(self, cur: duckdb.DuckDBPyConnection, day: int, batch: list[_BlockRef], needles: tuple[bytes, ...],
                  sql: str, params: list[Any]) -> pa.Table | None:
        """``sql`` (reading ``_clearsight_blk``) over the decoded rows of a batch of blocks; None
        when no block holds the needles."""
        t = self._decoded(cur, day, batch, needles)
        if t is None:
            return None
        cur.register("_clearsight_blk", t)
        try:
            return cur.sql(sql, params=params).to_arrow_table()
        finally:
            cur.unregister("_clearsight_blk")

    @staticmethod
    def _batches(blocks: list[_BlockRef], target: int = _DECODE_LINES) -> Iterator[list[_BlockRef]]:
        """``blocks`` in batches of about ``target`` lines."""
        batch: list[_BlockRef] = []
        lines = 0
        for b in blocks:
            batch.append(b)
            lines += b.info.n
            if lines >= target:
                yield batch
                batch, lines = [], 0
        if batch:
            yield batch

    def _read_sizes(self, ids: IdArray, start_ns: int, end_ns: int, where: list[str], params: list[Any],
                    needles: tuple[bytes, ...], plain: bool, limit: int, empty: LogSizes) -> LogSizes:
        with self._lock:
            days = sorted(d for d in self._days if day_of(start_ns) <= d <= day_of(end_ns))
        sid_parts: list[npt.NDArray[np.int64]] = []
        ts_parts: list[npt.NDArray[np.int64]] = []
        seq_parts: list[npt.NDArray[np.int64]] = []
        size_parts: list[npt.NDArray[np.int64]] = []
        total = 0

        def add(sid: Any, ts: Any, seq: Any, size: Any) -> None:
            nonlocal total
            total += len(ts)
            if total > limit:
                raise LimitExceeded("max_query_lines", f"the query would read more than {limit:,} log lines")
            if len(ts):
                sid_parts.append(np.asarray(sid, dtype=np.int64))
                ts_parts.append(np.asarray(ts, dtype=np.int64))
                seq_parts.append(np.asarray(seq, dtype=np.int64))
                size_parts.append(np.asarray(size, dtype=np.int64))

        with self._scope(ids) as (cur, stream_pred):
            for day in days:
                for batch in self._batches(self._blocks(day, ids, start_ns, end_ns)):
                    if plain:  # sizes from the blocks' meta alone, no body decompressed
                        got = self._fetch(cur, day, batch, False)
                        for b in batch:
                            ts, size, seq = log_blocks.sizes(b.info.min_ts, b.info.first_seq, got[(b.k, b.rowid)][0])
                            keep = (ts >= start_ns) & (ts <= end_ns)
                            add(np.full(int(keep.sum()), b.info.stream_id), ts[keep], seq[keep], size[keep])
                        continue
                    t = self._filtered(cur, day, batch, needles, "SELECT stream_id, ts, seq, strlen(body) AS size "
                                       f"FROM _clearsight_blk WHERE {' AND '.join(where)}", params)
                    if t is None:
                        continue
                    cols = {c: t.column(c).to_numpy() for c in ("stream_id", "ts", "seq", "size")}
                    add(cols["stream_id"], cols["ts"], cols["seq"], cols["size"])
                sql = (f"SELECT stream_id, ts, rowid + {_HEAD_SEQ} AS seq, strlen(body) AS size FROM "
                       f"{partition_name(day)} WHERE {stream_pred} AND {' AND '.join(where)} LIMIT {limit - total + 1}")
                try:
                    cols = cur.execute(sql, params).fetchnumpy()
                except duckdb.CatalogException:
                    raise Retry() from None
                add(cols["stream_id"], cols["ts"], cols["seq"], cols["size"])
        if not ts_parts:
            return empty
        ts_all, seq_all = np.concatenate(ts_parts), np.concatenate(seq_parts)
        order = np.lexsort((seq_all, ts_all))  # days are disjoint in ts: (ts, seq) orders across them
        uniq, idx = np.unique(np.concatenate(sid_parts)[order], return_inverse=True)
        with self._lock:
            streams = [self._labels[int(s)] for s in uniq.tolist()]
        return LogSizes(streams, idx.astype(np.int32), ts_all[order], np.concatenate(size_parts)[order])

    def _read_days(self, ids: IdArray, start_ns: int, end_ns: int, where: list[str], params: list[Any],
                   needles: tuple[bytes, ...], limit: int, direction: Direction) -> LogBatch:
        forward = direction == "forward"
        order = "ts, seq" if forward else "ts DESC, seq DESC"
        sort_keys = [("ts", "ascending" if forward else "descending"), ("seq", "ascending" if forward else "descending")]
        with self._lock:
            days = [d for d in self._days if day_of(start_ns) <= d <= day_of(end_ns)]
        days.sort(reverse=not forward)
        tables: list[pa.Table] = []
        remaining = limit
        with self._scope(ids) as (cur, stream_pred):
            for day in days:
                sql = (f"SELECT {_COLUMNS}, rowid + {_HEAD_SEQ} AS seq FROM {partition_name(day)} WHERE {stream_pred} "
                       f"AND {' AND '.join(where)} ORDER BY {order} LIMIT {remaining}")
                try:
                    found = [cur.sql(sql, params=params).to_arrow_table().cast(log_blocks.ROW_SCHEMA)]
                except duckdb.CatalogException:
                    raise Retry() from None  # retention dropped the day meanwhile
                blocks = self._blocks(day, ids, start_ns, end_ns)
                # blocks in the order they can contribute: a batch whose lines all lie beyond the
                # remaining-th line found so far is not read
                blocks.sort(key=(lambda b: b.info.min_ts) if forward else (lambda b: -b.info.max_ts))
                target = _DECODE_LINES if needles else min(_DECODE_LINES, max(4096, 2 * remaining))
                for batch in self._batches(blocks, target):
                    have = pa.concat_tables(found).sort_by(sort_keys).slice(0, remaining)
                    found = [have]
                    if have.num_rows >= remaining:
                        edge = int(have.column("ts")[remaining - 1].as_py())
                        if (forward and batch[0].info.min_ts > edge) or (not forward and batch[0].info.max_ts < edge):
                            break
                    t = self._filtered(cur, day, batch, needles, f"SELECT {_COLUMNS}, seq FROM _clearsight_blk WHERE "
                                       f"{' AND '.join(where)} ORDER BY {order} LIMIT {remaining}", params)
                    if t is not None:
                        found.append(t.cast(log_blocks.ROW_SCHEMA))
                t = pa.concat_tables(found).sort_by(sort_keys).slice(0, remaining)
                if t.num_rows:
                    tables.append(t)
                    remaining -= t.num_rows
                    if remaining <= 0:
                        break
        if not tables:
            return LogBatch.empty()
        return self._batch_of(pa.concat_tables(tables))

    def _batch_of(self, t: pa.Table) -> LogBatch:
        """A ``LogBatch`` from rows read back (at most ``limit``: small)."""
        n = t.num_rows
        sid = np.asarray(t.column("stream_id").to_numpy(), dtype=np.int64)
        uniq, stream_idx = np.unique(sid, return_inverse=True)
        rid = np.asarray(t.column("resource_id").to_numpy(), dtype=np.int64)
        ruq, resource_idx = np.unique(rid, return_inverse=True)
        if ruq.size == 0 or ruq[0] != 0:  # index 0 must be the empty resource
            ruq = np.concatenate([[0], ruq])
            resource_idx = resource_idx + 1
        sev_text = t.column("severity_text").to_pylist()
        texts = ["", *sorted({s for s in sev_text if s})]
        pos = {s: i for i, s in enumerate(texts)}
        keys = t.column("attr_keys").combine_chunks()
        values = t.column("attr_values").combine_chunks()
        lengths = np.asarray(pc.list_value_length(keys).to_numpy(zero_copy_only=False), dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        trace = b"".join(v or _ZERO_TRACE for v in t.column("trace_id").to_pylist())
        span = b"".join(v or _ZERO_SPAN for v in t.column("span_id").to_pylist())
        with self._lock:
            streams = [self._labels[int(s)] for s in uniq.tolist()]
        res = [self._res_labels[int(r)] if int(r) < len(self._res_labels) else () for r in ruq.tolist()]
        return LogBatch(
            streams=streams,
            stream_idx=stream_idx.astype(np.int32),
            timestamps=np.asarray(t.column("ts").to_numpy(), dtype=np.int64),
            severity_number=np.asarray(t.column("severity").to_numpy(), dtype=np.uint8),
            severity_texts=texts,
            severity_text_idx=np.array([pos[s] for s in sev_text], dtype=np.int32),
            body=t.column("body").to_pylist(),
            attr_offsets=offsets,
            attr_keys=[str(x) for x in keys.flatten().to_pylist()],
            attr_values=[str(x) for x in values.flatten().to_pylist()],
            trace_ids=np.frombuffer(trace, dtype=np.uint8).reshape(n, TRACE_ID_BYTES),
            span_ids=np.frombuffer(span, dtype=np.uint8).reshape(n, SPAN_ID_BYTES),
            resources=res,
            resource_idx=resource_idx.astype(np.int32),
        )

    def series(self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ns: int, end_ns: int,
               limit: int | None = None) -> list[Labels]:
        ids = self._ids(tenant, matcher_sets, start_ns, end_ns)
        with self._lock:
            out = sorted(self._labels[int(i)] for i in ids.tolist())
        return out[:limit] if limit else out

    def label_names(self, tenant: str, start_ns: int, end_ns: int, matchers: Sequence[Matcher] = ()) -> list[str]:
        ids = self._ids(tenant, [matchers] if matchers else [], start_ns, end_ns)
        with self._lock:
            idx = self._index.get(tenant)
            return idx.label_names(ids) if idx is not None else []

    def label_values(self, tenant: str, name: str, start_ns: int, end_ns: int,
                     matchers: Sequence[Matcher] = ()) -> list[str]:
        ids = self._ids(tenant, [matchers] if matchers else [], start_ns, end_ns)
        with self._lock:
            idx = self._index.get(tenant)
            return idx.label_values(name, ids) if idx is not None else []

    def stats(self) -> LogStoreStats:
        st = self._stats
        with self._lock:
            streams = {t: len(c) for t, c in self._canon.items()}
            partitions = len(self._days)
        size = 0
        for p in (self.path, Path(str(self.path) + ".wal")):
            with contextlib.suppress(OSError):
                size += os.path.getsize(p)
        return LogStoreStats(
            streams=streams, entries_written_total=st.entries_written_total,
            bytes_written_total=st.bytes_written_total, partitions=partitions, bytes_on_disk=size,
            queue_depth=self._writer.queued, commits_total=st.commits_total,
            commit_seconds_sum=st.commit_seconds_sum, entries_removed_total=st.entries_removed_total,
            writer_alive=self._writer.alive)


_JSON_OBJECT = "coalesce(CASE WHEN json_valid(body) THEN json_type(body) END = 'OBJECT', FALSE)"
_NUM_OPS = {"==": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, columns: str) -> None:
    """``INSERT INTO name SELECT columns`` from an Arrow table."""
    con.register("_clearsight_insert", table)
    try:
        con.execute(f"INSERT INTO {name} SELECT {columns} FROM _clearsight_insert")
    finally:
        con.unregister("_clearsight_insert")


def _needles(line_filters: Sequence[LineFilter]) -> tuple[bytes, ...]:
    """The substrings every matching line holds (``|=`` patterns): a block without one is skipped."""
    return tuple(f.pattern.encode() for f in line_filters if f.op == "|=" and f.pattern)


def _prefilter_sql(pf: BodyPrefilter, where: list[str], params: list[Any]) -> None:
    """``BodyPrefilter`` as one SQL predicate (DuckDB's JSON functions, vectorised)."""
    terms: list[str] = []
    for conj in pf.any_of:
        parts: list[str] = []
        for t in conj:
            if not t.field.isidentifier():
                raise ValueError(f"invalid JSON field name {t.field!r}")
            path = f"'$.\"{t.field}\"'"
            typ = f"json_type(body, {path})"
            val = f"json_extract_string(body, {path})"
            if t.numeric:
                num = f"TRY_CAST({val} AS DOUBLE)"
                cond = f"({val} IS NOT NULL AND {typ} <> 'NULL' AND ({num} IS NULL OR {num} {_NUM_OPS[t.op]} ?))"
                params.append(float(t.value))
            else:
                fn = {"=": "{v} = ?", "!=": "{v} <> ?", "=~": "regexp_full_match({v}, ?)",
                      "!~": "NOT regexp_full_match({v}, ?)"}[t.op]
                absent = "1" if Matcher.of("=" if t.op == "=" else t.op, "x", t.value).matches("") else "0"
                cond = (f"(CASE WHEN {typ} IS NULL OR {typ} = 'NULL' THEN {absent} = 1 "
                        f"WHEN {typ} <> 'VARCHAR' THEN TRUE ELSE {fn.format(v=val)} END)")
                params.append(f"(?s:{t.value})" if t.op in ("=~", "!~") else t.value)
            parts.append(f"(list_contains(attr_keys, ?) OR {cond})")
            params.insert(len(params) - 1, t.field)
        terms.append("(" + " AND ".join(parts) + ")")
    fields = " OR ".join(terms) if terms else "TRUE"
    inner = f"(CASE WHEN {_JSON_OBJECT} THEN {fields} ELSE FALSE END)" if terms else _JSON_OBJECT
    where.append(inner if pf.require_object else f"(NOT {_JSON_OBJECT} OR {inner})")


def _ids_bytes(ids: npt.NDArray[np.uint8], width: int) -> pa.Array:
    """A nullable BLOB column from an ``(n, width)`` id array (all-zero rows are NULL)."""
    n = ids.shape[0]
    valid = ids.any(axis=1) if n else np.zeros(0, dtype=np.bool_)
    return pa.Array.from_buffers(pa.binary(width), n, [pa.array(valid).buffers()[1],
                                                       pa.py_buffer(np.ascontiguousarray(ids).tobytes())])


def _arrow_of(parts: list[tuple[int, LogBatch, npt.NDArray[np.uint32], npt.NDArray[np.uint32]]]) -> pa.Table:
    """All parts' entries as one Arrow table in the partition tables' column order."""
    ts, sid, sev, body, keys, vals, trace, span, rid, sevtxt = [], [], [], [], [], [], [], [], [], []
    offsets: list[npt.NDArray[np.int64]] = []
    base = 0
    for _k, b, sids, rids in parts:
        if not len(b):
            continue
        ts.append(b.timestamps)
        sid.append(sids[b.stream_idx])
        sev.append(b.severity_number)
        sevtxt.append(np.asarray(b.severity_texts, dtype=object)[b.severity_text_idx])
        body.extend(b.body)
        keys.extend(b.attr_keys)
        vals.extend(b.attr_values)
        offsets.append(b.attr_offsets[1:] + base)
        base += int(b.attr_offsets[-1])
        trace.append(b.trace_ids)
        span.append(b.span_ids)
        rid.append(rids[b.resource_idx])
    if not ts:
        return pa.table({"ts": pa.array([], pa.int64())})
    off = pa.array(np.concatenate([np.zeros(1, np.int64), *offsets]).astype(np.int32))
    return pa.table({
        "ts": pa.array(np.concatenate(ts)),
        "stream_id": pa.array(np.concatenate(sid)),
        "severity": pa.array(np.concatenate(sev)),
        "severity_text": pa.array(np.concatenate(sevtxt), pa.string()),
        "body": pa.array(body, pa.string()),
        "attr_keys": pa.ListArray.from_arrays(off, pa.array(keys, pa.string())),
        "attr_values": pa.ListArray.from_arrays(off, pa.array(vals, pa.string())),
        "trace_id": _ids_bytes(np.concatenate(trace), TRACE_ID_BYTES),
        "span_id": _ids_bytes(np.concatenate(span), SPAN_ID_BYTES),
        "resource_id": pa.array(np.concatenate(rid)),
    })
