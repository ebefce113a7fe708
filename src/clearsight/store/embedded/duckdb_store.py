"""The embedded metrics store: one DuckDB file, one writer thread with group commit, an in-memory
series cache and label index.

Write path (no Python per sample): ``append`` queues ``(tenant, batch, future)``; the writer thread
drains everything queued, resolves series ids (a dict lookup per series key; labels are decoded
only for keys never seen by this process), enforces the per-tenant series limit, drops samples
outside the out-of-order window, deduplicates, appends all drained batches' samples in one
transaction from Arrow arrays, commits once and only then resolves the futures.

Read path: matchers are resolved against the in-memory inverted index, the per-series min/max
timestamps discard series without samples in the range, and the samples of the remaining series
come back from one SQL query (the ids are joined as an Arrow table) into numpy arrays.

Storage: new samples land in the head: in memory (``head.py``, which reads use) and, durably, as
one compressed record per group commit appended to the head log, segment files of its own in
``metrics.headlog/`` (``head_log.py``, read back only at open). When the head holds enough samples, the
writer compacts it into chunk partitions (one compressed row per series, see chunks.py) in one
transaction that also records the last head log record compacted; the log's segments are deleted
after that commit.

Invariant: a ``(series_id, ts)`` is stored at most once across head and chunks: a write to a
timestamp a series already has replaces the old sample in the same transaction (the newest write
wins), in the head by a newer head log record (the mirror drops the old row), in a chunk by
rewriting the chunk.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import orjson

from clearsight.heap import release_free_memory
from clearsight.model.fingerprint_table import FingerprintTable, U64Array
from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import METRIC_NAME, Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import F64Array, I64Array, MetricMetadata, SampleBatch, SeriesData
from clearsight.store.embedded import chunks as chunk_codec
from clearsight.store.embedded import deletion, head_log, label_listing, select_stream
from clearsight.store.embedded.canonical_ids import CanonicalIds
from clearsight.store.embedded.catalog import CatalogDelta, ChunkCatalog, ChunkRows
from clearsight.store.embedded.chunk_parts import ChunkPartitions
from clearsight.store.embedded.columns import objects
from clearsight.store.embedded.head import Assembled, HeadMirror, HeadPick, HeadView, make_merger
from clearsight.store.embedded.head_log import HeadLog
from clearsight.store.embedded.histogram_table import MIN_MAX_PART, HistogramTable, merge_into
from clearsight.store.embedded.index import IdArray, TenantIndex, select_sets, sorted_unique
from clearsight.store.embedded.label_order import DEFAULT_MAX_IDS as LABEL_ORDER_IDS
from clearsight.store.embedded.label_order import LabelOrder, Order
from clearsight.store.embedded.label_pool import LabelPool
from clearsight.store.embedded.pairs import find_pairs
from clearsight.store.embedded.rollups import DDL as ROLLUP_DDL
from clearsight.store.embedded.rollups import FIVE_MINUTES_MS, ONE_HOUR_MS, Rollups
from clearsight.store.embedded.schema import DB_FILE, DDL, HEAD_LOG_DIR, SCHEMA_VERSION, UPGRADES_FROM
from clearsight.store.embedded.selection_cache import MAX_IDS as SELECTION_IDS
from clearsight.store.embedded.selection_cache import SelectionCache
from clearsight.store.embedded.window import DecodedWindow
from clearsight.store.interface import (
    AppendResult,
    InvalidBatch,
    LatestSamples,
    LimitExceeded,
    RollupCoverage,
    RollupData,
    SampleLimitExceeded,
    SeriesSelector,
    StoreClosed,
    StoreError,
    StoreStats,
    current_read_limits,
)
from clearsight.store.kernel import retention
from clearsight.store.kernel.database import Database, is_fatal
from clearsight.store.kernel.publication import Publication, Retry
from clearsight.store.kernel.record_log import DEFAULT_SEGMENT_BYTES, LogWriteError
from clearsight.store.kernel.writer import Command, GroupCommitWriter, retry_after_estimate, run_in_groups

try:  # the Cython range filters (setup.py builds them); _in_range's numpy lines are their reference
    from clearsight.store.embedded import _inrange  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _inrange = None

log = logging.getLogger(__name__)

# "No sample yet" sentinels for the per-series min/max timestamp arrays. They leave room for
# subtracting an out-of-order window without overflow.
_NO_MAX = -(2**62)
_NO_MIN = 2**62
_MAX_METADATA_PER_METRIC = 10
# A tenant's table of series keys (per key kind) holds at most this many keys per live series plus
# the slack; past that (the same series sent under many encodings) it starts over, empty.
_KEYS_PER_SERIES = 2
_KEYS_SLACK = 65_536
_SMALL_ID_SET = 4096
_LISTING_SCAN_IDS = 256  # label listings over at most this many series in range: one pass over them (~25 us)
_COMPACT_SLICE_ROWS = 250_000
# A read's parts before assembly: decoded chunk samples (their chunks' series, samples kept per
# chunk, timestamps, values) and the head rows located (EmbeddedMetricsStore._locate).
_Parts = tuple[npt.NDArray[np.uint32], I64Array, I64Array, F64Array, HeadPick]
# _assemble copies series by series (slices) when they average at least this many samples; below,
# one vectorized gather beats a Python step per series.
_SLICE_COPY_MIN_AVG = 64
# ... and always for at most this many series (a small select: the gather's fixed cost dominates).
_SLICE_COPY_MAX_SERIES = 16
# The writer's decoded window (window.py) holds at most this many chunk samples by default (16
# bytes each, 24 while it is built; the constructor's ``window_max_samples``, config
# storage.overwrite_window_samples).
WINDOW_MAX_SAMPLES = 2_000_000
# delete_series decodes at most about this many chunk samples per transaction (deletion.py).
_DELETE_RUN_SAMPLES = 1_000_000
# New series rows DuckDB may hold uncheckpointed (~100 bytes each in its in-memory row groups; ~20
# once checkpointed) before the writer checkpoints on idle, when no compaction is due to do it.
_SERIES_CHECKPOINT = 20_000
# A read under ReadLimits decodes its chunks in batches of this many (checks between batches).
_READ_BATCH_CHUNKS = 2048
# querier(): the tenants whose querier is kept (past it, all are dropped and made again as asked)
_MAX_QUERIERS = 4096
# Per-series min/max timestamps over chunks and histogram rows (the head's come from its mirror:
# _with_head); {filter} restricts the series.
_MIN_MAX_SQL = (
    "SELECT series_id, min(lo) AS lo, max(hi) AS hi FROM ("
    "SELECT series_id, min(min_ts) AS lo, max(max_ts) AS hi FROM {chunks} {filter} GROUP BY series_id "
    "UNION ALL " + MIN_MAX_PART + ") GROUP BY series_id"
)


def _with_head(mm: dict[str, Any], sid: npt.NDArray[np.uint32], ts: I64Array) -> tuple[I64Array, I64Array, I64Array]:
    """Per-series (ids, min, max) of ``mm`` (``_MIN_MAX_SQL``'s columns) together with head rows."""
    ids = np.concatenate([np.asarray(mm["series_id"], dtype=np.int64), sid.astype(np.int64)])
    lo = np.concatenate([np.asarray(mm["lo"], dtype=np.int64), ts])
    hi = np.concatenate([np.asarray(mm["hi"], dtype=np.int64), ts])
    if ids.shape[0] == 0:
        return ids, lo, hi
    order = np.argsort(ids, kind="stable")
    ids, lo, hi = ids[order], lo[order], hi[order]
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    return ids[starts], np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts)


def _floats(bits: Any) -> F64Array:
    """float64 values from the IEEE-754 bit patterns stored in ``samples.bits``."""
    out: F64Array = np.ascontiguousarray(bits, dtype=np.int64).view(np.float64)
    return out


def _series(labels: list[Labels], done: Assembled) -> SeriesData:
    """A compiled read's series (``Assembled``, in the order of ``labels``), those without a
    sample in the range left out."""
    offsets, ts, vals, empty = done
    if empty:
        if empty == len(labels):
            return SeriesData.empty()
        keep = offsets[1:] > offsets[:-1]
        labels = [lbl for lbl, k in zip(labels, keep.tolist(), strict=True) if k]
        offsets = np.concatenate((offsets[:1], offsets[1:][keep]))
    return SeriesData(labels, offsets, ts, vals)


class _NothingChanged(Exception):
    """A steady-state group (head rows of known series only) whose head log append failed: no
    transaction was open and nothing but the writer's max timestamps had changed."""

    def __init__(self, error: LogWriteError) -> None:
        super().__init__(str(error))
        self.error = error


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(_one(con, "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() "
                          "AND schema_name = 'main' AND table_name = ?", [name]))


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    """The first row of a query, consuming the whole result (DuckDB wants results finished
    before the connection does anything else)."""
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return tuple(rows[0]) if rows else ()


@dataclass
class _Append:
    tenant: str
    batch: SampleBatch
    future: concurrent.futures.Future[AppendResult]
    result: AppendResult = field(default_factory=AppendResult)
    error: BaseException | None = None
    # Native histogram samples that passed the out-of-order window: (series ids, ts, histograms).
    hist: tuple[npt.NDArray[np.uint32], I64Array, list[FloatHistogram]] | None = None


@dataclass
class _NewSeries:
    series_id: int
    tenant: str
    labels: Labels


class _Querier:
    """A tenant's reads (``EmbeddedMetricsStore.querier``: one per tenant, kept)."""

    def __init__(self, store: EmbeddedMetricsStore, tenant: str) -> None:
        self._store = store
        self._tenant = tenant
        # the store's select for the tenant, without a Python frame of its own (every query reads)
        self.select: Callable[[Sequence[Matcher], int, int], SeriesData] = functools.partial(store.select, tenant)
        # store.interface.LatestSelector (an instant selector's read), likewise
        self.select_latest: Callable[[Sequence[Matcher], int, int, int | None], LatestSamples | None] = \
            functools.partial(store.select_latest, tenant)

    def rollup_coverage(self) -> Sequence[RollupCoverage]:  # store.interface.RollupReader
        r = self._store.rollups
        return r.coverage() if r.enabled else []

    def select_rollups(self, matchers: Sequence[Matcher], res_ms: int, start_ms: int, end_ms: int) -> RollupData | None:
        self._store._check_open()
        return self._store.rollups.select(self._store, self._tenant, matchers, res_ms, start_ms, end_ms)

    def select_batches(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                       max_batch_samples: int) -> list[Callable[[], SeriesData]]:
        return self._store.select_batches(self._tenant, matchers, start_ms, end_ms, max_batch_samples)


# Salvaging a damaged file (kernel repair): the tables copied row range by row range, then the
# rows whose series was lost, and series left without samples, are removed (the store's invariants).
# ``chunks*``: every chunk partition (and a schema-3 file's single chunks table); the fixups over the
# partitions run after they are loaded (``ChunkPartitions.drop_orphans``).
# The head log is not in the file (schema 6: its own segment files); records of lost series: their
# samples are dropped when the log is replayed (_load_state).
SALVAGE_TABLES = ["series", "chunks*", "metadata", "histogram_chunks"]
SALVAGE_FIXUPS = [
    "DELETE FROM histogram_chunks WHERE series_id NOT IN (SELECT series_id FROM series)",
]


class EmbeddedMetricsStore:
    """``store.interface.MetricsStore`` on one DuckDB file in ``data_dir``.

    - ``retention_ms``: ``apply_retention(now)`` removes samples older than ``now - retention_ms``
      (whole chunk partitions, ``chunk_parts.py``; reads hide the rest at once).
    - ``retention_size_bytes``: the same pass then drops the oldest chunk partitions while the
      partitions' chunk payload exceeds this (never the newest partition); 0 = unbounded.
    - ``partition_ms``: the period of a chunk partition (one UTC day); a data directory keeps the
      period it was created with.
    - ``out_of_order_window_ms``: samples older than the series' newest timestamp minus this are
      dropped (counted as out_of_bounds).
    - ``max_active_series_per_tenant``: a batch that would create more series than this for its
      tenant is rejected whole (LimitExceeded). 0 disables the limit.
    - ``max_series_total``: the same for all tenants together (rotating tenant ids cannot grow the
      series past it). 0 disables it.
    - ``queue_max_batches``: ``append`` raises Overloaded when this many batches wait.
    - ``compact_min_rows`` / ``compact_samples_per_series``: the head is compacted into chunks
      once it holds at least ``max(compact_min_rows, compact_samples_per_series * series)`` rows.
    - ``compact_idle_seconds``: a due compaction waits until no write arrived for this long (so it
      does not delay acks), unless the head reaches twice its bound.
    - ``chunk_target_samples``: after a compaction, a series' chunks smaller than this are merged
      into one once they hold this many samples together (longer chunks compress better).
    - ``duckdb_threads`` / ``duckdb_memory_limit``: DuckDB settings (None keeps its defaults).
    - ``wal_checkpoint_threshold``: DuckDB checkpoints by itself when its WAL grows past this. The
      writer also checkpoints after every compaction, so the head normally lives in the WAL only
      and never takes blocks in the database file.
    - ``chunk_cache_samples``: decoded chunks kept in memory for reads (``chunks.DecodedChunkCache``,
      about 17 bytes per sample); 0 disables it.
    - ``chunk_blob_cache_bytes``: compressed chunk bytes kept in memory (``catalog.ChunkCatalog``),
      so reads of hot chunks never run SQL; 0 disables it (every read then fetches its chunks).
    - ``selection_cache_ids``: series ids of resolved matcher sets kept (``selection_cache.py``, 4
      bytes each); 0 disables it.
    - ``label_order_ids``: series ids whose label order is remembered (``label_order.py``, ~16
      bytes each); 0 disables it.
    - ``window_max_samples``: chunk samples the writer decodes and keeps to check re-sent and late
      samples against (``window.py``, 16 bytes each); beyond it each check decodes what it needs.
    - ``head_log_segment_bytes``: the size of the head log's preallocated segment files
      (``metrics.headlog/``, kernel ``record_log.py``).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        retention_ms: int = 15 * 24 * 3600 * 1000,
        retention_size_bytes: int = 0,
        partition_ms: int = retention.DAY_MS,
        out_of_order_window_ms: int = 10 * 60 * 1000,
        max_active_series_per_tenant: int = 0,
        max_series_total: int = 0,
        queue_max_batches: int = 256,
        compact_min_rows: int = 1_000_000,
        compact_samples_per_series: int = 120,
        chunk_target_samples: int = 720,
        compact_idle_seconds: float = 0.2,
        duckdb_threads: int | None = None,
        duckdb_memory_limit: str | None = None,
        wal_checkpoint_threshold: str = "256MB",
        chunk_cache_samples: int = 4_000_000,
        chunk_blob_cache_bytes: int = 64 << 20,
        rollups: bool = True,
        rollup_retention_ms: dict[int, int] | None = None,
        selection_cache_ids: int = SELECTION_IDS,
        label_order_ids: int = LABEL_ORDER_IDS,
        window_max_samples: int = WINDOW_MAX_SAMPLES,
        head_log_segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if retention_ms <= 0:
            raise ValueError("retention_ms must be positive")
        if not 0 <= out_of_order_window_ms <= 2**60:
            raise ValueError("out_of_order_window_ms must be in [0, 2**60]")
        if queue_max_batches <= 0:
            raise ValueError("queue_max_batches must be positive")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_FILE
        self.retention_ms = retention_ms
        self.retention_size_bytes = max(0, retention_size_bytes)
        self.out_of_order_window_ms = out_of_order_window_ms
        self.max_active_series_per_tenant = max_active_series_per_tenant
        self.max_series_total = max_series_total
        self.queue_max_batches = queue_max_batches
        self.compact_min_rows = compact_min_rows
        self.compact_samples_per_series = compact_samples_per_series
        self.chunk_target_samples = chunk_target_samples
        self.compact_idle_seconds = compact_idle_seconds
        self.window_max_samples = max(0, window_max_samples)
        self._fresh_series = 0  # series rows written since the last checkpoint (writer only)
        # The head's rows in memory (reads never read the head log). A commit that moves
        # samples between head and chunks and the mirror update after it form a *publication*:
        # _gen is odd while one runs, and a read that overlapped one is retried (a seqlock).
        # Its larger merges run on a merger thread (started at the first), installed by the writer.
        self._head = HeadMirror(merger=make_merger())
        self._pub = Publication()
        self._chunk_cache = chunk_codec.DecodedChunkCache(chunk_cache_samples)
        self._label_order = LabelOrder(label_order_ids)  # reads return series in label order: remembered per id set
        # Every chunk row located in memory (reads and overwrite checks run no SQL for hot chunks);
        # _cat_delta collects what the open transaction did to the chunks table.
        self._catalog = ChunkCatalog(chunk_blob_cache_bytes)
        self._cat_delta = CatalogDelta.new()
        self._parts = ChunkPartitions(partition_ms)  # the chunks' time partitions (chunk_parts.py)
        self._retained = retention.RetentionCounters()
        self._window: DecodedWindow | None = None  # writer only: chunk samples for overwrite checks
        self._hist = HistogramTable()  # native histogram samples (histogram_table.py)
        self._floor = _NO_MAX  # samples older than this were removed by retention (maybe not yet on disk)
        self.rollups = Rollups(rollup_retention_ms or {FIVE_MINUTES_MS: 90 * 86_400_000, ONE_HOUR_MS: 365 * 86_400_000},
                               out_of_order_window_ms, enabled=rollups)  # rollups.py

        self._db = Database(self.path, checkpoint_threshold=wal_checkpoint_threshold, threads=duckdb_threads,
                            memory_limit=duckdb_memory_limit, what="metrics store")
        self._wcon = self._db.writer
        # The head's durable copy (head_log.py). Opening it scans (and repairs) its segments, so only
        # once DuckDB holds the directory's lock: a second process on the same directory fails above.
        try:
            self._head_log = HeadLog(self.data_dir / HEAD_LOG_DIR, segment_bytes=head_log_segment_bytes)
        except BaseException:
            self._db.close()
            raise

        # Series state. Written by the writer thread; readers use the index under _index_lock.
        self._index_lock = threading.RLock()
        self._index: dict[str, TenantIndex] = {}
        # matcher sets -> ids, per tenant (selection_cache.py)
        self._selections = SelectionCache(max_ids=max(0, selection_cache_ids))
        self._queriers: dict[str, _Querier] = {}  # querier(): one per tenant
        # (label name or None, matcher sets) -> the selection's full listing, per tenant (label_listing.py)
        self._listings = label_listing.ListingCache()
        self._labels: list[Labels] = [()]  # by series id; id 0 is never used
        self._min_ts: I64Array = np.full(1024, _NO_MIN, dtype=np.int64)  # committed
        self._max_ts: I64Array = np.full(1024, _NO_MAX, dtype=np.int64)  # committed
        self._wmax: I64Array = np.full(1024, _NO_MAX, dtype=np.int64)  # writer's view, incl. pending
        self._series_tenant: list[str] = [""]
        self._next_id = 1
        # Writer-only caches: (tenant, key kind) -> key fingerprint -> id (fingerprint_table.py;
        # also read by the validator, known_keys); tenant -> label set -> id (canonical_ids.py). Label
        # sets are made of the pool's shared pairs (label_pool.py).
        self._key_cache: dict[tuple[str, str], FingerprintTable] = {}
        self._canon: dict[str, CanonicalIds] = {}
        self._pool = LabelPool()
        self._meta: dict[str, dict[str, list[MetricMetadata]]] = {}

        # The writer (group commit, storage kernel) and stats.
        self._writer: GroupCommitWriter[_Append] = GroupCommitWriter(
            "clearsight-metrics-writer",
            self._run,
            queue_max=queue_max_batches,
            retry_after=self._retry_after,
            idle_seconds=compact_idle_seconds,
            on_idle=self._idle,
            on_close=self._writer_done,
            recover=self._reopen,
            what="metrics store",
        )
        self._closed = False
        self._close_lock = threading.Lock()
        self._stats = StoreStats()

        try:
            try:
                self._init_schema()
                damaged = self._db.quarantined is not None
                self._db.salvage(SALVAGE_TABLES, SALVAGE_FIXUPS)  # when the file was damaged
                self._open_partitions(damaged)
                self._load_state()
            except Exception as e:  # a damaged file: moved aside, salvaged (kernel repair)
                if not self._db.reset_if_damaged(e):
                    raise
                self._wcon = self._db.writer
                self._init_schema()
                self._db.salvage(SALVAGE_TABLES, SALVAGE_FIXUPS)
                self._open_partitions(True)
                self._load_state()
        except BaseException:
            self._db.close()
            self._head_log.close()
            raise
        self._writer.start()

    # --- setup -----------------------------------------------------------------------------------

    def _init_schema(self) -> None:
        con = self._wcon
        con.execute("BEGIN TRANSACTION")
        for stmt in DDL + ROLLUP_DDL:
            con.execute(stmt)
        row = _one(con, "SELECT value FROM clearsight_meta WHERE key = 'schema_version'")
        opened = int(row[0]) if row else SCHEMA_VERSION  # the version the file had
        if not row:
            con.execute("INSERT INTO clearsight_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        elif int(row[0]) in UPGRADES_FROM:  # fewer chunk codecs, series.fingerprint (schema.py)
            con.execute("UPDATE clearsight_meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
            row = (str(SCHEMA_VERSION),)
        if "fingerprint" in con.table("series").columns:  # also in files upgraded by c0ff9a1's build
            con.execute("ALTER TABLE series DROP COLUMN fingerprint")
        if not row or int(row[0]) == SCHEMA_VERSION:
            self._migrate_samples_table(opened)
            self._migrate_head_log_table(opened)
        period = _one(con, "SELECT value FROM clearsight_meta WHERE key = 'chunk_partition_ms'")
        if not period:
            con.execute("INSERT INTO clearsight_meta VALUES ('chunk_partition_ms', ?)", [str(self._parts.scheme.period_ms)])
        elif int(period[0]) != self._parts.scheme.period_ms:  # the directory keeps its period
            log.warning("%s: chunk partitions of %s ms, not %s", self.path, period[0], self._parts.scheme.period_ms)
            self._parts = ChunkPartitions(int(period[0]))
        con.execute("COMMIT")
        if row and int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {row[0]}, this build reads {SCHEMA_VERSION}")

    def _legacy_table(self, name: str, opened: int) -> bool:
        """Whether ``name``, a table of an older schema, is there to migrate. In a file of this
        schema it can only be an empty table an older build created before refusing the file: it is
        dropped (or, not empty, left alone with a warning)."""
        con = self._wcon
        if not _has_table(con, name):
            return False
        if opened < SCHEMA_VERSION:
            return True
        if _one(con, f"SELECT count(*) FROM {name}")[0]:
            log.warning("%s: a %s table with rows in a schema-%d file; left alone", self.path, name, SCHEMA_VERSION)
        else:
            con.execute(f"DROP TABLE {name}")
        return False

    def _migrate_samples_table(self, opened: int) -> None:
        """A schema-4 head (the ``samples`` table, one row per sample) becomes one head log record
        (in ``_init_schema``'s transaction)."""
        con = self._wcon
        if not self._legacy_table("samples", opened):
            return
        head = con.execute("SELECT series_id, ts, bits FROM samples ORDER BY series_id, ts").fetchnumpy()
        ts = np.asarray(head["ts"], dtype=np.int64)
        self._head_log.log.reset()  # a migration cut short by a crash may have left a record
        if ts.shape[0]:
            self._head_log.append(np.asarray(head["series_id"], dtype=np.uint32), ts, _floats(head["bits"]))
            self._head_log.settle()
            log.info("%s: %d head rows moved into the head log", self.path, ts.shape[0])
        con.execute("DROP TABLE samples")
        con.execute("DELETE FROM clearsight_meta WHERE key = 'head_log_compacted'")

    def _migrate_head_log_table(self, opened: int) -> None:
        """A schema-5 head log (the ``head_log`` table) moves into the log's files (in
        ``_init_schema``'s transaction: a crash before its commit leaves the table, and the next open
        starts the move again from an empty log)."""
        con = self._wcon
        if not self._legacy_table(head_log.LEGACY_TABLE, opened):
            return
        rows = con.execute(f"SELECT seq, min_ts, max_ts, data FROM {head_log.LEGACY_TABLE}").fetchall()
        n = self._head_log.migrate([(int(a), int(b), int(c), bytes(d)) for a, b, c, d in rows])
        con.execute(f"DROP TABLE {head_log.LEGACY_TABLE}")
        con.execute("DELETE FROM clearsight_meta WHERE key = 'head_log_compacted'")
        log.info("%s: %d head log records moved into %s", self.path, n, self._head_log.log.directory)

    def _open_partitions(self, salvaged: bool) -> None:
        """Moves a schema-3 ``chunks`` table into partitions; after a salvage, removes the chunks
        and series the salvage left without their counterpart."""
        moved = self._parts.migrate(self._wcon)
        if moved:
            log.info("%s: %d chunks moved into time partitions", self.path, moved)
        self._parts.load(self._wcon)
        if salvaged:
            floor = _one(self._wcon, "SELECT value FROM clearsight_meta WHERE key = 'retention_floor'")
            sid = self._head_log.replay(int(floor[0]) if floor else _NO_MAX, self._compacted_seq())[0]
            self._parts.drop_orphans(self._wcon, sorted_unique(sid))

    def _compacted_seq(self) -> int:
        """The last head log record compaction moved into chunks (replay skips it and those before)."""
        row = _one(self._wcon, "SELECT value FROM clearsight_meta WHERE key = 'head_log_compacted'")
        return int(row[0]) if row else 0

    def _load_state(self) -> None:
        """(Re)builds every in-memory structure from the database."""
        con = self._wcon
        with self._index_lock:
            self._index = {}
            self._selections.clear()
            self._listings.clear()
            self._key_cache = {}
            self._canon = {}
            self._pool = LabelPool()
            self._meta = {}
            floor = _one(con, "SELECT value FROM clearsight_meta WHERE key = 'retention_floor'")
            self._floor = int(floor[0]) if floor else _NO_MAX
            compacted = self._compacted_seq()
            self._head_log.truncate(compacted)  # segments left by a crash after a compaction's commit
            h_sid, h_ts, h_vals, damaged, log_top = self._head_log.replay(self._floor, compacted)
            max_id = _one(con, "SELECT coalesce(max(series_id), 0) FROM series")
            # ids named by head log records of series whose rows were never committed (a crash
            # between the record and its transaction's commit) are not given out again
            top = max(int(max_id[0]) if max_id else 0, log_top)
            cap = max(1024, top + 1)
            self._labels = [()] * (top + 1)
            self._series_tenant = [""] * (top + 1)
            self._min_ts = np.full(cap, _NO_MIN, dtype=np.int64)
            self._max_ts = np.full(cap, _NO_MAX, dtype=np.int64)
            self._next_id = top + 1
            cols = con.execute("SELECT series_id, tenant, metric, labels FROM series ORDER BY series_id").fetchnumpy()
            by_tenant: dict[str, list[int]] = {}
            for sid, tenant, metric, text in zip(
                cols["series_id"].tolist(), cols["tenant"].tolist(), cols["metric"].tolist(), cols["labels"].tolist(),
                strict=True,
            ):
                pairs = orjson.loads(text)
                if metric:  # the JSON holds __name__ only in rows written before schema 3
                    pairs[METRIC_NAME] = metric
                labels = self._pool.intern(make_labels(pairs))
                self._labels[sid] = labels
                self._series_tenant[sid] = tenant
                by_tenant.setdefault(tenant, []).append(sid)
                idx = self._index.get(tenant)
                if idx is None:
                    idx = self._index[tenant] = TenantIndex()
                idx.add(sid, labels)
            for tenant, sids in by_tenant.items():
                self._canon[tenant] = CanonicalIds(self._label_set)
                self._canon[tenant].add([self._labels[s] for s in sids], sids)
            self._parts.load(con)
            if damaged:
                log.error("%s: %d head log records do not decode; their samples are lost", self.path, damaged)
            known = h_sid < len(self._labels)  # a salvage may have lost a series' row, not its records
            known[known] = np.asarray([bool(self._labels[s]) for s in h_sid[known].tolist()], dtype=np.bool_)
            if not bool(known.all()):
                h_sid, h_ts, h_vals = h_sid[known], h_ts[known], h_vals[known]
            mm = con.execute(_MIN_MAX_SQL.format(filter="", chunks=self._parts.sql(writer=True))).fetchnumpy()
            ids, lo, hi = _with_head(mm, h_sid, h_ts)
            self._min_ts[ids] = lo
            self._max_ts[ids] = hi
            self._wmax = self._max_ts.copy()
            for tenant, metric, typ, help_, unit in con.execute(
                "SELECT tenant, metric, type, help, unit FROM metadata"
            ).fetchall():
                self._meta.setdefault(tenant, {}).setdefault(metric, []).append(
                    MetricMetadata(metric, typ, help_, unit)
                )
        self._hist.load(con)
        self.rollups.load(con)
        cat = con.execute(f"SELECT series_id, min_ts, max_ts, n, codec, scale FROM {self._parts.sql(writer=True)}"
                          ).fetchnumpy()
        self._cat_delta = CatalogDelta.new()
        with self._publishing():
            self._head.replace_all(h_sid, h_ts, h_vals)
            self._catalog.replace_all(
                np.asarray(cat["series_id"], dtype=np.uint32),
                np.asarray(cat["min_ts"], dtype=np.int64),
                np.asarray(cat["max_ts"], dtype=np.int64),
                np.asarray(cat["n"], dtype=np.int64),
                np.asarray(cat["codec"], dtype=np.uint8),
                np.asarray(cat["scale"], dtype=np.uint8),
            )

    def _begin(self) -> None:
        """Opens the writer's transaction (the catalogue delta starts empty)."""
        self._cat_delta = CatalogDelta.new()
        self._parts.begin()
        self._wcon.execute("BEGIN TRANSACTION")

    def _publish_catalog(self) -> None:
        """Applies the committed transaction's chunk changes to the catalogue (inside a
        publication)."""
        if self._cat_delta:
            self._catalog.apply(self._cat_delta)
            self._window = None  # built from the old catalogue
        self._cat_delta = CatalogDelta.new()
        self._parts.commit()

    def _publishing(self) -> contextlib.AbstractContextManager[None]:
        """A commit that moves samples between head and chunks (or rebuilds the mirrors) and the
        in-memory update after it (kernel ``Publication``). Writer thread only; never nested."""
        return self._pub.publishing()

    # --- writes ----------------------------------------------------------------------------------

    def append(self, tenant: str, batch: SampleBatch) -> concurrent.futures.Future[AppendResult]:
        fut: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        if not isinstance(tenant, str) or not tenant:
            self._writer.command("barrier")  # raises StoreClosed like an append would
            fut.set_exception(InvalidBatch("tenant must be a non-empty string"))
            return fut
        self._writer.submit(_Append(tenant, batch, fut))
        return fut

    def _retry_after(self, queued: int) -> float:
        return retry_after_estimate(self._stats.commit_seconds_sum, self._stats.commits_total, queued)

    def _submit(self, kind: str, arg: Any = 0) -> concurrent.futures.Future[Any]:
        return self._writer.command(kind, arg)

    def flush(self) -> None:
        """Compacts the head when it is due, then checkpoints the WAL into the database file."""
        self._submit("flush").result()

    def compact(self) -> None:
        """Compacts the whole head into chunks now, then checkpoints."""
        self._submit("compact").result()

    def sync(self) -> None:
        """Waits until everything queued before the call is committed (tests, benchmarks)."""
        self._submit("barrier").result()

    def apply_retention(self, now_ms: int) -> int:
        """Removes what is older than ``now_ms - retention_ms`` (and, with ``retention_size_bytes``,
        the oldest partitions over the size); returns the samples removed from disk by this pass
        (expired samples of a partition that also holds newer chunks leave with it, later)."""
        deleted: int = self._submit("retention", now_ms - self.retention_ms).result()
        return deleted

    def delete_series(
        self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> int:
        """Removes the samples in [start_ms, end_ms] of the tenant's series matching any matcher
        set, at once (no tombstones: see deletion.py); returns how many."""
        if not matcher_sets or end_ms < start_ms:
            self._check_open()
            return 0
        arg = (tenant, [list(ms) for ms in matcher_sets], start_ms, end_ms)
        deleted: int = self._submit("delete", arg).result()
        return deleted

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._writer.close()
            self._head.close()  # the merger thread stops (a merge in flight is dropped)
            self._head_log.close()
            # the close's compaction rewrote chunks into fresh blocks: give the freed ones back
            self._db.close(reclaim_free_blocks=True)
            self._closed = True

    def __enter__(self) -> EmbeddedMetricsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the writer thread -----------------------------------------------------------------------

    def _writer_done(self) -> None:
        """The writer's last step at close: everything queued is committed, the head compacted
        (a clean stop leaves the data dir dense: checkpointed as head rows, it would take ~13 bytes
        per sample in the file, and the blocks freed by the next compaction stay in it) and
        checkpointed."""
        if self._head.rows:
            self._safe_compact()
        if self._head.rows == 0:  # what the log still holds replays to nothing (deleted, expired, compacted)
            self._head_log.truncate(self._head_log.last_seq)
        self._checkpoint()

    def _command(self, cmd: Command) -> Any:
        if cmd.kind in ("flush", "compact"):
            if cmd.kind == "compact" or self._compaction_due():
                self._compact()
            self._checkpoint()
            return None
        if cmd.kind == "retention":
            return self._retention(cmd.arg)
        if cmd.kind == "delete":
            return self._delete_range(*cmd.arg)
        if cmd.kind == "rollup":
            return self.rollups.run(self._wcon, self, *cmd.arg)
        return None  # barrier

    def _run(self, items: list[_Append | Command]) -> None:
        run_in_groups(items, self._commit_group, self._command)
        if self._compaction_due(factor=2):
            self._safe_compact()  # the head outgrew twice its bound under constant load
        elif self._compaction_due() or self._fresh_series >= _SERIES_CHECKPOINT or self._head.merging:
            self._writer.defer_idle()  # compact (or checkpoint, or install a merge) once the queue has been idle a moment

    def _idle(self) -> None:
        """The writer's idle work: the head's background merge installed (when done; else looked
        at again after the next idle moment), then a due compaction (which checkpoints), else a
        checkpoint when many series were created since the last one (DuckDB then holds their
        rows compressed)."""
        self._head.install_merged()
        if self._head.merging:
            self._writer.defer_idle()
        if self._compaction_due():
            self._safe_compact()
        elif self._fresh_series >= _SERIES_CHECKPOINT:
            try:
                self._checkpoint()
            except Exception as e:
                if is_fatal(e):
                    raise
                log.exception("checkpoint failed")

    def _safe_compact(self) -> None:
        try:
            self._compact()
        except Exception as e:
            if is_fatal(e):
                raise  # the writer reopens the database (kernel writer: recover)
            log.exception("compaction failed; the head keeps the samples")

    def _reopen(self) -> None:
        """The writer's recovery after the database failed: reopen it, rebuild memory from it."""
        self._db.reopen()
        self._wcon = self._db.writer
        self._window = None
        self._load_state()

    def _compaction_due(self, factor: int = 1) -> bool:
        with self._index_lock:
            n_series = sum(len(idx) for idx in self._index.values())
        need = max(self.compact_min_rows, self.compact_samples_per_series * n_series, 1)
        return self._head.rows >= factor * need or self._hist.due(factor)

    def _compact(self) -> None:
        """Moves every head row into chunks, in one transaction (histogram rows are merged first)."""
        self._compact_histograms()
        if self._head.rows == 0:
            return
        con = self._wcon
        # The rows come from the head mirror (already sorted by series and ts: no SQL sort), in
        # slices of the series id space that bound the transient memory to ~_COMPACT_SLICE_ROWS.
        n_slices = -(-self._head.rows // _COMPACT_SLICE_ROWS)
        edges = np.linspace(0, self._next_id + 1, n_slices + 1).astype(np.int64)
        self._begin()
        try:
            moved = 0
            for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
                sids, ts, vals = self._head.rows_between(lo, hi)
                moved += int(ts.shape[0])
                self._insert_chunks(sids, ts, vals)
            if moved != self._head.rows:
                raise StoreError(f"compaction moved {moved} of {self._head.rows} head rows")
            through = self._head_log.last_seq  # every record is in the head just moved
            con.execute("DELETE FROM clearsight_meta WHERE key = 'head_log_compacted'")
            con.execute("INSERT INTO clearsight_meta VALUES ('head_log_compacted', ?)", [str(through)])
            with self._publishing():
                con.execute("COMMIT")
                self._head.clear()
                self._publish_catalog()
        except Exception:
            con.execute("ROLLBACK")
            raise
        self._head_log.truncate(through, ready=self._writer.open)  # not at close: no segment is left then
        self._merge_small_chunks()
        self._checkpoint()
        release_free_memory()  # freed by the compaction

    def _compact_histograms(self) -> None:
        """Merges small histogram rows (histogram_table.py), in one transaction."""
        con = self._wcon
        self._begin()
        try:
            done = self._hist.compact(con, self._floor)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        if done is not None:
            done()

    def _merge_small_chunks(self) -> None:
        """Merges each series' chunks below ``chunk_target_samples`` once they add up to it."""
        target = self.chunk_target_samples
        con = self._wcon
        self._begin()
        try:
            old, sids, ts, vals, _ = self._load_chunks(
                f"n < ? AND series_id IN (SELECT series_id FROM {self._parts.sql(writer=True)} WHERE n < ? "
                "GROUP BY series_id HAVING count(*) >= 2 AND sum(n) >= ?)",
                [target, target, target],
            )
            if len(old):
                self._replace_chunks(old, sids, ts, vals)
                with self._publishing():
                    con.execute("COMMIT")
                    self._publish_catalog()
            else:
                con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise

    def _insert_chunks(self, sids: npt.NDArray[np.uint32], ts: I64Array, vals: F64Array) -> None:
        """Encodes samples sorted by (series, ts), unique, as one chunk per series."""
        if sids.shape[0] == 0:
            return
        enc = chunk_codec.encode(sids, ts, vals)
        tbl = {
            "series_id": enc.series_id,
            "min_ts": enc.min_ts,
            "max_ts": enc.max_ts,
            "n": enc.n,
            "codec": enc.codec,
            "scale": enc.scale,
            "data": objects(enc.data),
        }
        self._parts.insert(self._wcon, tbl, np.fromiter(map(len, enc.data), dtype=np.int64, count=len(enc.data)))
        rows = ChunkRows(
            enc.series_id, enc.min_ts, enc.max_ts, enc.n.astype(np.int64), enc.codec, enc.scale,
            np.zeros(enc.series_id.shape[0], dtype=np.int64),
        )
        self._cat_delta.added.append((rows, enc.data))

    def _load_chunks(
        self, where: str, params: list[Any]
    ) -> tuple[ChunkRows, npt.NDArray[np.uint32], I64Array, F64Array, npt.NDArray[np.int64]]:
        """Decodes the chunks matching ``where`` (writer connection): (the chunks, series ids, ts,
        values, chunk index of each sample)."""
        res = self._wcon.execute(
            f"SELECT series_id, min_ts, max_ts, n, codec, scale, data FROM {self._parts.sql(writer=True)} "
            f"WHERE {where}", params
        ).fetchnumpy()
        n = np.asarray(res["n"], dtype=np.int64)
        chunks = ChunkRows(
            np.asarray(res["series_id"], dtype=np.uint32), np.asarray(res["min_ts"], dtype=np.int64),
            np.asarray(res["max_ts"], dtype=np.int64), n, np.asarray(res["codec"], dtype=np.uint8),
            np.asarray(res["scale"], dtype=np.uint8), np.zeros(n.shape[0], dtype=np.int64),
        )
        ts, vals = chunk_codec.decode(n, res["codec"], res["scale"], list(res["data"]), min_ts=chunks.min_ts,
                                      max_ts=chunks.max_ts)
        which = np.repeat(np.arange(n.shape[0], dtype=np.int64), n)
        sids = np.repeat(chunks.series_id, n)
        return chunks, sids, ts, vals, which

    def _replace_chunks(
        self, old: ChunkRows, sids: npt.NDArray[np.uint32], ts: I64Array, vals: F64Array
    ) -> None:
        """Deletes the chunks ``old`` (by their (series id, min_ts) key) and stores the given
        samples (any order) in their place."""
        if len(old):
            self._parts.delete(self._wcon, old.series_id, old.min_ts, old.max_ts, old.n)
            self._cat_delta.removed_sid.append(old.series_id)
            self._cat_delta.removed_min_ts.append(old.min_ts)
        order = np.lexsort((ts, sids))
        self._insert_chunks(sids[order], ts[order], vals[order])

    def _chunk_bytes(self, sel: ChunkRows, *, writer: bool) -> list[bytes]:
        """The compressed bytes of the chunks ``sel`` (entries of a catalogue snapshot): from the
        blob cache, the missing ones fetched by their (series id, min_ts) key (through the
        writer's connection, or a reader cursor) and cached. Raises ``Retry`` when one no longer
        exists (a publication ran since the caller took its snapshot: the read runs again)."""
        data = self._catalog.blobs(sel.uid)
        miss = [i for i, b in enumerate(data) if b is None]
        if not miss:
            return data  # type: ignore[return-value]
        m = np.asarray(miss, dtype=np.intp)
        m_sid, m_min = sel.series_id[m], sel.min_ts[m]
        with contextlib.nullcontext(self._wcon) if writer else self._reader() as cur:
            res = self._parts.fetch(cur, m_sid, m_min, sel.max_ts[m])
        got = [bytes(b) for b in res["data"]]
        pos = find_pairs(
            np.asarray(res["series_id"], dtype=np.uint32), np.asarray(res["min_ts"], dtype=np.int64),
            m_sid, m_min, sorted_=False,
        )
        if bool((pos < 0).any()):
            raise Retry("a chunk of the catalogue snapshot is gone")
        fetched = [got[j] for j in pos.tolist()]
        for i, b in zip(miss, fetched, strict=True):
            data[i] = b
        self._catalog.remember(sel.uid[m], fetched)
        return data  # type: ignore[return-value]

    def _checkpoint(self) -> None:
        self._wcon.execute("CHECKPOINT")
        self._fresh_series = 0

    def _commit_group(self, group: list[_Append]) -> None:
        t0 = time.perf_counter()
        new_series: list[_NewSeries] = []
        parts: list[tuple[npt.NDArray[np.uint32], I64Array, F64Array, int]] = []
        new_meta: list[tuple[str, MetricMetadata]] = []
        try:
            for k, req in enumerate(group):
                try:
                    part = self._prepare(req, new_series)
                except StoreError as e:
                    req.error = e
                    continue
                parts.append((*part, k))
                new_meta.extend(self._new_metadata(req.tenant, req.batch.metadata, new_meta))
            written = self._write(group, parts, new_series, new_meta)
        except _NothingChanged as e:  # a full disk refused a steady-state group: nothing to undo
            log.error("metrics group commit failed: %s", e.error)
            self._wmax = self._max_ts.copy()  # the writer's view had the group's samples (_prepare)
            for req in group:
                if req.error is None:
                    req.error = e.error
            written = 0
        except Exception as e:
            if isinstance(e, LogWriteError):  # a full disk: expected, the next group tries again
                log.error("metrics group commit failed: %s; rolling back", e)
            else:
                log.exception("metrics group commit failed; rolling back")
            try:
                self._wcon.execute("ROLLBACK")
            except duckdb.Error:
                pass
            self._head_log.withdraw()  # a record appended before the failed commit
            self._load_state()
            err = e if isinstance(e, LogWriteError) else StoreError(f"commit failed: {e}")
            for req in group:
                if req.error is None:
                    req.error = err
            written = 0
        elapsed = time.perf_counter() - t0
        st = self._stats
        st.commits_total += 1
        st.last_commit_seconds = elapsed
        st.commit_seconds_sum += elapsed
        st.samples_written_total += written
        for req in group:
            if req.error is not None:
                req.future.set_exception(req.error)
            else:
                st.out_of_bounds_total += req.result.out_of_bounds
                st.duplicates_total += req.result.duplicates
                req.future.set_result(req.result)

    def _prepare(
        self, req: _Append, new_series: list[_NewSeries]
    ) -> tuple[npt.NDArray[np.uint32], I64Array, F64Array]:
        """Validates one batch, resolves its series (creating new ones) and applies the
        out-of-order window. Raises StoreError before changing any state."""
        batch, tenant = req.batch, req.tenant
        try:
            sidx = np.asarray(batch.series_idx, dtype=np.int64)
            ts = np.asarray(batch.timestamps, dtype=np.int64)
            vals = np.asarray(batch.values, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InvalidBatch(f"bad sample arrays: {e}") from e
        n_keys = len(batch.keys)
        if not (sidx.ndim == ts.ndim == vals.ndim == 1) or not (sidx.shape == ts.shape == vals.shape):
            raise InvalidBatch("series_idx, timestamps and values must be 1-d arrays of equal length")
        if sidx.size and (int(sidx.min()) < 0 or int(sidx.max()) >= n_keys):
            raise InvalidBatch("series_idx out of range")
        if ts.size and (int(ts.min()) <= _NO_MAX or int(ts.max()) >= _NO_MIN):
            raise InvalidBatch("timestamp out of range")
        # Series are created only for keys with samples not older than the retention floor.
        live = sidx if not ts.size or int(ts.min()) >= self._floor else sidx[ts >= self._floor]
        hb = batch.histograms
        if hb is not None and len(hb):
            h_sidx, h_ts = self._check_histograms(batch, n_keys)
            live = np.concatenate((live, h_sidx[h_ts >= self._floor]))
        ids = self._resolve(tenant, batch, live, new_series, req.result)
        sids = ids[sidx]
        # Out-of-order window against the series' newest timestamp before this batch.
        cur_max = self._wmax[sids]
        ok = (ts >= cur_max - self.out_of_order_window_ms) & (ts >= self._floor)
        n_ok = int(np.count_nonzero(ok))
        req.result.out_of_bounds = int(sids.size - n_ok)
        req.result.samples_written = n_ok
        if n_ok != sids.size:
            sids, ts, vals = sids[ok], ts[ok], vals[ok]
        if sids.size:
            np.maximum.at(self._wmax, sids, ts)
        if hb is not None and len(hb):
            self._window_histograms(req, ids[h_sidx], h_ts, hb.histograms)
        return sids.astype(np.uint32), ts, vals

    @staticmethod
    def _check_histograms(batch: SampleBatch, n_keys: int) -> tuple[I64Array, I64Array]:
        hb = batch.histograms
        assert hb is not None
        try:
            h_sidx = np.asarray(hb.series_idx, dtype=np.int64)
            h_ts = np.asarray(hb.timestamps, dtype=np.int64)
        except (TypeError, ValueError) as e:
            raise InvalidBatch(f"bad histogram sample arrays: {e}") from e
        if not (h_sidx.ndim == h_ts.ndim == 1) or not (h_sidx.shape[0] == h_ts.shape[0] == len(hb.histograms)):
            raise InvalidBatch("histogram series_idx, timestamps and histograms must be of equal length")
        if h_sidx.size and (int(h_sidx.min()) < 0 or int(h_sidx.max()) >= n_keys):
            raise InvalidBatch("histogram series_idx out of range")
        if h_ts.size and (int(h_ts.min()) <= _NO_MAX or int(h_ts.max()) >= _NO_MIN):
            raise InvalidBatch("histogram timestamp out of range")
        if not all(isinstance(h, FloatHistogram) for h in hb.histograms):
            raise InvalidBatch("histogram samples must be FloatHistogram objects")
        return h_sidx, h_ts

    def _window_histograms(self, req: _Append, sids: I64Array, ts: I64Array, hs: list[FloatHistogram]) -> None:
        """The out-of-order window and retention floor applied to a batch's histogram samples, as
        to its float samples (after them: a batch's floats and histograms share one window)."""
        ok = (ts >= self._wmax[sids] - self.out_of_order_window_ms) & (ts >= self._floor)
        n_ok = int(np.count_nonzero(ok))
        req.result.out_of_bounds += int(ts.shape[0] - n_ok)
        req.result.samples_written += n_ok
        req.result.histograms_written = n_ok
        if n_ok == 0:
            return
        if n_ok != ts.shape[0]:
            keep = np.flatnonzero(ok)
            sids, ts, hs = sids[keep], ts[keep], [hs[j] for j in keep.tolist()]
        np.maximum.at(self._wmax, sids, ts)
        req.hist = (sids.astype(np.uint32), ts, hs)

    def _resolve(
        self,
        tenant: str,
        batch: SampleBatch,
        sidx: I64Array,
        new_series: list[_NewSeries],
        result: AppendResult,
    ) -> I64Array:
        keys = batch.keys
        n = len(keys)
        # a new (tenant, kind) is remembered only once its series resolve (a tenant rejected by a
        # series limit leaves nothing behind: rotating tenant ids cannot grow this dict)
        hi, lo = batch.fingerprints()
        cache = self._key_cache.get((tenant, batch.key_kind))
        ids = cache.get(hi, lo).astype(np.int64) if cache is not None else np.zeros(n, dtype=np.int64)
        missing = np.flatnonzero(ids == 0)
        if missing.size == 0:
            return ids
        used = np.zeros(n, dtype=np.bool_)
        used[sidx] = True
        missing = missing[used[missing]]
        if missing.size == 0:
            return ids
        canon = self._canon.get(tenant)
        decoded: list[Labels] = []
        for i in missing.tolist():
            try:
                labels = make_labels(batch.decode_labels(keys[i]))
            except Exception as e:
                raise InvalidBatch(f"bad labels in series {i}: {e}") from e
            if not labels:
                raise InvalidBatch(f"series {i} has no labels")
            decoded.append(labels)
        found: dict[int, int] = {}
        fresh: dict[Labels, list[int]] = {}
        known = canon.get(decoded) if canon is not None else [0] * len(decoded)
        for i, labels, sid in zip(missing.tolist(), decoded, known, strict=True):
            if sid:
                found[i] = sid
            else:
                positions = fresh.get(labels)
                if positions is None:
                    fresh[labels] = [i]
                else:
                    positions.append(i)
        limit = self.max_active_series_per_tenant
        if fresh and limit > 0:
            idx = self._index.get(tenant)
            active = (len(idx) if idx is not None else 0) + sum(1 for s in new_series if s.tenant == tenant)
            if active + len(fresh) > limit:
                raise LimitExceeded(
                    "max_active_series_per_tenant",
                    f"tenant {tenant!r}: {len(fresh)} new series would exceed the limit of {limit} "
                    f"active series (has {active})",
                )
        if fresh and self.max_series_total > 0:
            total = sum(len(x) for x in self._index.values()) + len(new_series)
            if total + len(fresh) > self.max_series_total:
                raise LimitExceeded(
                    "max_series_total",
                    f"{len(fresh)} new series would exceed the limit of {self.max_series_total} series "
                    f"of all tenants together (limits.max_series_total; {total} exist)",
                )
        # From here on nothing raises: commit the resolution to the writer's state.
        for i, sid in found.items():
            ids[i] = sid
        if fresh:
            self._grow(self._next_id + len(fresh))
            if canon is None:
                canon = self._canon[tenant] = CanonicalIds(self._label_set)
            first = self._next_id
            for labels, positions in fresh.items():
                sid = self._next_id
                self._next_id += 1
                labels = self._pool.intern(labels)
                self._labels.append(labels)
                self._series_tenant.append(tenant)
                new_series.append(_NewSeries(sid, tenant, labels))
                ids[positions] = sid
            canon.add(self._labels[first:], range(first, self._next_id))
            result.series_created = len(fresh)
        idx = self._index.get(tenant)
        live = (len(idx) if idx is not None else 0) + len(new_series)
        if cache is None or len(cache) + missing.size > _KEYS_PER_SERIES * live + _KEYS_SLACK:
            # bound: many keys for the same series (other label orders, empty labels) start it over
            cache = self._key_cache[(tenant, batch.key_kind)] = FingerprintTable()
        cache.put(hi[missing], lo[missing], ids[missing].astype(np.uint32))
        return ids

    def _label_set(self, sid: int) -> Labels:
        return self._labels[sid]

    def known_keys(self, tenant: str, key_kind: str, hi: U64Array, lo: U64Array) -> npt.NDArray[np.bool_]:
        """Which keys (by fingerprint, ``SampleBatch.fingerprints``) of ``tenant`` and ``key_kind``
        resolve to a series now. Any thread (the validator's): an answer that a concurrent write
        makes stale only means a key is validated once more."""
        table = self._key_cache.get((tenant, key_kind))
        if table is None:
            return np.zeros(hi.shape[0], dtype=np.bool_)
        known: npt.NDArray[np.bool_] = table.get(hi, lo) != 0
        return known

    def _grow(self, needed: int) -> None:
        cap = self._wmax.shape[0]
        if needed < cap:
            return
        while cap <= needed:
            cap *= 2

        def grown(a: I64Array, fill: int) -> I64Array:
            out = np.full(cap, fill, dtype=np.int64)
            out[: a.shape[0]] = a
            return out

        self._wmax = grown(self._wmax, _NO_MAX)
        with self._index_lock:
            self._min_ts = grown(self._min_ts, _NO_MIN)
            self._max_ts = grown(self._max_ts, _NO_MAX)

    def _new_metadata(
        self, tenant: str, metas: list[MetricMetadata], pending: list[tuple[str, MetricMetadata]]
    ) -> list[tuple[str, MetricMetadata]]:
        out: list[tuple[str, MetricMetadata]] = []
        known = self._meta.get(tenant, {})
        for m in metas:
            have = known.get(m.metric, [])
            if m in have or (tenant, m) in pending or (tenant, m) in out:
                continue
            if len(have) >= _MAX_METADATA_PER_METRIC:
                continue
            out.append((tenant, m))
        return out

    def _write(
        self,
        group: list[_Append],
        parts: list[tuple[npt.NDArray[np.uint32], I64Array, F64Array, int]],
        new_series: list[_NewSeries],
        new_meta: list[tuple[str, MetricMetadata]],
    ) -> int:
        """One transaction for the whole group. Returns the number of rows inserted."""
        con = self._wcon
        if parts:
            sids = np.concatenate([p[0] for p in parts])
            ts = np.concatenate([p[1] for p in parts])
            vals = np.concatenate([p[2] for p in parts])
            owner = np.concatenate([np.full(p[0].shape[0], p[3], dtype=np.int32) for p in parts])
        else:
            sids = np.zeros(0, dtype=np.uint32)
            ts = np.zeros(0, dtype=np.int64)
            vals = np.zeros(0, dtype=np.float64)
            owner = np.zeros(0, dtype=np.int32)
        n = sids.shape[0]
        dup_owner: list[npt.NDArray[np.int32]] = []
        if n:
            # Sort by (series, ts, arrival); the last write of each (series, ts) run wins.
            order = np.lexsort((np.arange(n), ts, sids))
            sids, ts, vals, owner = sids[order], ts[order], vals[order], owner[order]
            same_next = (sids[1:] == sids[:-1]) & (ts[1:] == ts[:-1])
            if same_next.any():
                keep = np.ones(n, dtype=np.bool_)
                keep[:-1] = ~same_next
                # Every sample after the first of its run overwrote an earlier write of this group.
                later = np.zeros(n, dtype=np.bool_)
                later[1:] = same_next
                dup_owner.append(owner[later])
                run_start = np.ones(n, dtype=np.bool_)
                run_start[1:] = ~same_next
                run_id = np.cumsum(run_start) - 1
                first_owner = owner[np.flatnonzero(run_start)][run_id]
                sids, ts, vals, owner = sids[keep], ts[keep], vals[keep], first_owner[keep]
        head_sids, head_ts, head_vals = sids, ts, vals
        gone: tuple[npt.NDArray[np.uint32], I64Array] | None = None
        changed_chunk = np.zeros(0, dtype=np.intp)
        if sids.shape[0]:
            # Rows at or below the committed max of their series may repeat or replace a stored
            # sample: look them up in memory (head mirror, chunk catalogue). Identical re-sends are
            # dropped here and write nothing; only changed values touch stored rows.
            cand = np.flatnonzero(ts <= self._max_ts[sids])
            if cand.size:
                to_head, gone, changed_chunk, existed = self._classify(sids, ts, vals, cand)
                dup_owner.append(owner[existed])
                self._stats.out_of_order_total += int(cand.size - existed.size)
                if to_head is not None:
                    head_sids, head_ts, head_vals = sids[to_head], ts[to_head], vals[to_head]
        hists = [req.hist for req in group if req.hist is not None and req.error is None]
        if not (new_series or new_meta or head_sids.shape[0] or gone is not None or changed_chunk.size or hists):
            self._count_duplicates(group, dup_owner)
            return 0  # nothing new (an identical re-send): no transaction at all
        hist_published: Callable[[], None] | None = None
        chunks_changed = bool(changed_chunk.size)
        if not (hists or new_series or new_meta or gone is not None or chunks_changed
                or self.rollups.changes_rolled_up(head_ts)):
            # Only new head rows (the steady state): one statement in autocommit, which DuckDB
            # commits (WAL written and synced) before returning, as COMMIT would. Two DuckDB calls
            # fewer, each of which gives the GIL up and has to win it back from busy query threads.
            # Now that is one head log append (pwrite + fdatasync), no DuckDB statement at all.
            try:
                self._insert_head_rows(head_sids, head_ts, head_vals)
            except LogWriteError as e:
                raise _NothingChanged(e) from e
            self._head_log.settle()
            self._head.apply((head_sids, head_ts, head_vals), None)
        else:
            self._begin()
            if hists:
                hist_sids = np.concatenate([h[0] for h in hists])
                hist_ts = np.concatenate([h[1] for h in hists])
                hist_published = self._hist.insert(con, hist_sids, hist_ts, [x for h in hists for x in h[2]])
            if new_series:
                self._insert_series(new_series)
            if new_meta:
                con.executemany(
                    "INSERT INTO metadata VALUES (?, ?, ?, ?, ?)",
                    [[t, m.metric, m.type, m.help, m.unit] for t, m in new_meta],
                )
            # A head sample given a new value needs no delete: the new record replaces it (head_log.py).
            if chunks_changed:
                self._rewrite_in_chunks(sids[changed_chunk], ts[changed_chunk], vals[changed_chunk])
            self._insert_head_rows(head_sids, head_ts, head_vals)
            self.rollups.mark_written(con, head_sids, head_ts)
            if chunks_changed:
                self.rollups.mark_written(con, sids[changed_chunk], ts[changed_chunk])
            # Rewritten chunks make this a publication; plain appends change only the mirror.
            with self._publishing() if chunks_changed else contextlib.nullcontext():
                con.execute("COMMIT")
                self._head_log.settle()
                self._head.apply((head_sids, head_ts, head_vals), gone)
                self._publish_catalog()
            self.rollups.committed()
            self._fresh_series += len(new_series)
        if hist_published is not None:
            hist_published()
        # Publish to readers.
        with self._index_lock:
            for s in new_series:
                idx = self._index.get(s.tenant)
                if idx is None:
                    idx = self._index[s.tenant] = TenantIndex()
                idx.add(s.series_id, s.labels)
                self._selections.forget(s.tenant)
            if sids.shape[0]:
                np.minimum.at(self._min_ts, sids, ts)
                np.maximum.at(self._max_ts, sids, ts)
            if hists:
                np.minimum.at(self._min_ts, hist_sids, hist_ts)
                np.maximum.at(self._max_ts, hist_sids, hist_ts)
            for t, m in new_meta:
                self._meta.setdefault(t, {}).setdefault(m.metric, []).append(m)
        self._count_duplicates(group, dup_owner)
        return int(head_sids.shape[0]) + int(changed_chunk.size) + (int(hist_ts.shape[0]) if hists else 0)

    def _insert_head_rows(self, sids: npt.NDArray[np.uint32], ts: I64Array, vals: F64Array) -> None:
        self._head_log.append(sids, ts, vals)

    @staticmethod
    def _count_duplicates(group: list[_Append], dup_owner: list[npt.NDArray[np.int32]]) -> None:
        if dup_owner:
            counts = np.bincount(np.concatenate(dup_owner), minlength=len(group))
            for k, c in enumerate(counts.tolist()):
                group[k].result.duplicates += c

    def _classify(
        self, sids: npt.NDArray[np.uint32], ts: I64Array, vals: F64Array, cand: npt.NDArray[np.intp]
    ) -> tuple[
        npt.NDArray[np.bool_] | None,
        tuple[npt.NDArray[np.uint32], I64Array] | None,
        npt.NDArray[np.intp],
        npt.NDArray[np.intp],
    ]:
        """Sorts the candidate rows ``cand`` (unique pairs at or below their series' committed
        max) by what is stored at their (series, ts): nothing (a late sample: goes to the head),
        the same value bit for bit (an identical re-send: dropped), another value in the head
        (that row is deleted, the new one goes to the head) or another value in a chunk (the
        chunk is rewritten). Returns the mask of rows for the head (None: all), the head pairs to
        delete, the rows to write into chunks, and the rows that existed (duplicates)."""
        c_sid, c_ts = sids[cand], ts[cand]
        found, old = self._head.lookup(c_sid, c_ts)
        in_chunk = np.zeros(cand.shape[0], dtype=np.bool_)
        rest = np.flatnonzero(~found)
        if rest.size and len(self._catalog):
            hit, vals_in_chunks = self._in_chunks(c_sid[rest], c_ts[rest])
            found[rest[hit]] = True
            in_chunk[rest[hit]] = True
            old[rest[hit]] = vals_in_chunks[hit]
        existed = cand[found]
        if not bool(found.any()):
            return None, None, np.zeros(0, dtype=np.intp), existed
        same = found & (old.view(np.int64) == vals[cand].view(np.int64))
        self._stats.identical_total += int(np.count_nonzero(same))
        changed = found & ~same
        to_head = np.ones(sids.shape[0], dtype=np.bool_)
        to_head[cand[same]] = False
        changed_chunk = cand[changed & in_chunk]
        to_head[changed_chunk] = False
        head_changed = changed & ~in_chunk
        gone = (c_sid[head_changed], c_ts[head_changed]) if bool(head_changed.any()) else None
        return to_head, gone, changed_chunk, existed

    def _in_chunks(self, sid: npt.NDArray[np.uint32], ts: I64Array) -> tuple[npt.NDArray[np.bool_], F64Array]:
        """Whether each (series, ts) pair is stored in a chunk, and its value. Served from the
        decoded window when it holds every chunk needed; otherwise the window is rebuilt over all
        chunks overlapping the pairs' time range (when that fits ``window_max_samples``), or the
        needed chunks are decoded for this call alone."""
        lo, hi = int(ts.min()), int(ts.max())
        snap = self._catalog.snapshot()
        pos = snap.find(sorted_unique(sid), lo, hi)
        if pos.size == 0:
            return np.zeros(sid.shape[0], dtype=np.bool_), np.zeros(sid.shape[0], dtype=np.float64)
        win = self._window
        if win is None or not win.covers(snap, snap.uid[pos]):
            win = None
            # Every chunk from the out-of-order window on when that fits: the rest of a re-send
            # or an HA replica's stream needs them too (one decode, not one per group's range).
            every = np.flatnonzero(snap.max_ts >= min(lo, int(snap.max_ts.max()) - self.out_of_order_window_ms))
            if int(snap.n[every].sum()) > self.window_max_samples:
                every = np.flatnonzero((snap.max_ts >= lo) & (snap.min_ts <= hi))
            if int(snap.n[every].sum()) <= self.window_max_samples:
                sel = snap.take(every)
                w_ts, w_val = chunk_codec.decode(sel.n, sel.codec, sel.scale, self._chunk_bytes(sel, writer=True),
                                                 min_ts=sel.min_ts, max_ts=sel.max_ts)
                win = DecodedWindow.build(snap, sel, w_ts, w_val)
            self._window = win
        if win is not None:
            return win.lookup(sid, ts)
        sel = snap.take(pos)
        data = self._chunk_bytes(sel, writer=True)
        k_ts, k_val, kept = chunk_codec.decode_range(sel.n, sel.codec, sel.scale, data, lo, hi, min_ts=sel.min_ts,
                                                     max_ts=sel.max_ts)
        at = find_pairs(np.repeat(sel.series_id, kept), k_ts, sid, ts, sorted_=False)
        hit = at >= 0
        return hit, np.where(hit, k_val[np.maximum(at, 0)], 0.0)

    def _rewrite_in_chunks(self, sids: npt.NDArray[np.uint32], ts: I64Array, vals: F64Array) -> None:
        """Writes new values for (series, ts) pairs that are stored in chunks: each chunk holding
        one is decoded once, changed and replaced (one rewrite per chunk per group commit)."""
        snap = self._catalog.snapshot()
        pos = snap.find(sorted_unique(sids), int(ts.min()), int(ts.max()))
        sel = snap.take(pos)
        data = self._chunk_bytes(sel, writer=True)
        all_ts, all_val = chunk_codec.decode(sel.n, sel.codec, sel.scale, data, min_ts=sel.min_ts, max_ts=sel.max_ts)
        all_sid = np.repeat(sel.series_id, sel.n)
        which = np.repeat(np.arange(len(sel), dtype=np.intp), sel.n)
        at = find_pairs(all_sid, all_ts, sids, ts, sorted_=False)
        if bool((at < 0).any()):
            raise StoreError("a sample to rewrite is missing from its chunk")
        all_val = all_val.copy() if not all_val.flags.writeable else all_val
        all_val[at] = vals
        touched = np.unique(which[at])
        keep = np.isin(which, touched)
        self._replace_chunks(sel.take(touched), all_sid[keep], all_ts[keep], all_val[keep])

    def _insert_series(self, new_series: list[_NewSeries]) -> None:
        tbl = {
            "series_id": np.array([s.series_id for s in new_series], dtype=np.uint32),
            "tenant": objects([s.tenant for s in new_series]),
            "metric": objects([dict(s.labels).get(METRIC_NAME, "") for s in new_series]),
            # without __name__: the metric column holds it (repeated in JSON it doubled the column)
            "labels": objects(
                [orjson.dumps({k: v for k, v in s.labels if k != METRIC_NAME}).decode() for s in new_series]
            ),
        }
        con = self._wcon
        con.register("_clearsight_series", tbl)
        try:
            con.execute("INSERT INTO series (series_id, tenant, metric, labels) "
                        "SELECT series_id, tenant, metric, labels FROM _clearsight_series")
        finally:
            con.unregister("_clearsight_series")

    def _retention(self, cutoff: int) -> int:
        """One retention pass (the writer's ``retention`` command), in one transaction: drops the
        chunk partitions wholly older than ``cutoff``, then the oldest ones over
        ``retention_size_bytes`` (the cutoff rises to the end of the last one dropped), deletes the
        head rows and histogram rows below the cutoff and the series left with nothing newer (their
        chunks in kept partitions too); raises the retention floor."""
        con = self._wcon
        doomed, cutoff = self._parts.plan(cutoff, self.retention_size_bytes)
        with self._index_lock:
            max_ts = self._max_ts
            top = self._next_id
            dead = np.flatnonzero((max_ts[:top] < cutoff) & (max_ts[:top] != _NO_MAX)).astype(np.uint32)
            affected = np.flatnonzero((self._min_ts[:top] < cutoff) & (max_ts[:top] >= cutoff))
        self._begin()
        try:
            # the head log keeps its records: replay drops their samples below the floor
            deleted = self._head.count_before(cutoff)
            gone = self._parts.drop(con, doomed)
            deleted += sum(st.samples for st in gone)
            if gone:  # partitions go oldest first: every chunk ending before the last one's end went
                self._cat_delta.removed_before = max(st.part.end for st in gone)
            if dead.size:  # their chunks in the partitions kept
                old = self._parts.delete_series(con, self._catalog.snapshot(), dead, self._cat_delta.removed_before)
                self._cat_delta.removed_sid.append(old.series_id)
                self._cat_delta.removed_min_ts.append(old.min_ts)
                deleted += int(old.n.sum())
            deleted += self._hist.retention(con, cutoff)
            if cutoff > self._floor:
                con.execute("DELETE FROM clearsight_meta WHERE key = 'retention_floor'")
                con.execute("INSERT INTO clearsight_meta VALUES ('retention_floor', ?)", [str(cutoff)])
            self._delete_series_rows(dead)
            with self._publishing():
                con.execute("COMMIT")
                self._head.drop_before(cutoff)
                self._publish_catalog()
            self._floor = max(self._floor, cutoff)
        except Exception:
            con.execute("ROLLBACK")
            self._load_state()
            raise
        self._retained.add([st.part for st in gone], {st.part.name: st.bytes for st in gone})
        with self._index_lock:  # samples below the floor are hidden: the visible ones start at it
            self._min_ts[affected] = np.maximum(self._min_ts[affected], cutoff)
        self._forget(dead)
        return deleted

    def _forget(self, dead: IdArray) -> None:
        """Drops series left without samples (their rows already deleted) from memory: index,
        min/max arrays and the writer's key caches (a later write re-creates them with a new id)."""
        dead_by_tenant: dict[str, list[int]] = {}
        for sid in dead.tolist():
            dead_by_tenant.setdefault(self._series_tenant[sid], []).append(sid)
        with self._index_lock:
            for tenant, sids in dead_by_tenant.items():
                arr = np.asarray(sids, dtype=np.uint32)
                self._index[tenant].remove(arr, (self._labels[s] for s in sids))
                self._selections.forget(tenant)
            if dead.size:
                self._hist.forget(dead)
                self._min_ts[dead] = _NO_MIN
                self._max_ts[dead] = _NO_MAX
                self._wmax[dead] = _NO_MAX
        for tenant, sids in dead_by_tenant.items():
            self._canon[tenant].remove(sids)
            for (t, _kind), cache in self._key_cache.items():
                if t == tenant:
                    cache.drop_values(sids)
        if dead_by_tenant:
            self._pool.keep_only(self._labels[s] for idx in self._index.values() for s in idx.all_ids)

    def _delete_range(
        self, tenant: str, matcher_sets: list[list[Matcher]], start_ms: int, end_ms: int
    ) -> int:
        """The writer's ``delete`` command (see ``delete_series``): one transaction per run of
        series (deletion.py: runs bound the samples decoded at once)."""
        start_ms = max(start_ms, self._floor)
        if end_ms < start_ms:
            return 0
        ids = self._ids(tenant, matcher_sets, start_ms, end_ms)
        if ids.size == 0:
            return 0
        snap = self._catalog.snapshot()
        sel = snap.take(snap.find(ids, start_ms, end_ms))
        part = deletion.straddling(sel.min_ts, sel.max_ts, start_ms, end_ms)
        runs = deletion.slices(ids, sel.series_id[part], sel.n[part], _DELETE_RUN_SAMPLES)
        return sum(self._delete_run(run, start_ms, end_ms) for run in runs)

    def _delete_run(self, ids: IdArray, start_ms: int, end_ms: int) -> int:
        """Deletes [start_ms, end_ms] of the series ``ids`` in one transaction."""
        con = self._wcon
        h_sid, h_ts, _ = self._head.select(ids, start_ms, end_ms)
        snap = self._catalog.snapshot()
        sel = snap.take(snap.find(ids, start_ms, end_ms))
        part = deletion.straddling(sel.min_ts, sel.max_ts, start_ms, end_ms)
        self._begin()
        try:
            self._head_log.delete(sorted_unique(h_sid), start_ms, end_ms)
            deleted = int(h_ts.shape[0])
            if len(sel):
                cut = sel.take(np.flatnonzero(part))
                c_ts, c_val = chunk_codec.decode(cut.n, cut.codec, cut.scale, self._chunk_bytes(cut, writer=True),
                                                 min_ts=cut.min_ts, max_ts=cut.max_ts)
                k_sid, k_ts, k_val, n_in = deletion.outside_range(
                    np.repeat(cut.series_id, cut.n), c_ts, c_val, start_ms, end_ms, self._floor
                )
                self._replace_chunks(sel, k_sid, k_ts, k_val)  # the chunks wholly inside go as they are
                deleted += n_in + int(sel.n[~part].sum())
            self.rollups.mark_deleted(con, ids, start_ms, end_ms)
            n_hist, hist_published = self._hist.delete_range(con, ids, start_ms, end_ms, self._floor)
            deleted += n_hist
            mm = self._min_max_of(ids, start_ms, end_ms)
            dead = deletion.emptied(ids, mm[0])
            self._delete_series_rows(dead)
            with self._publishing():
                con.execute("COMMIT")
                self._head_log.settle()
                empty = (np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.float64))
                self._head.apply(empty, (h_sid, h_ts))
                self._publish_catalog()
            self.rollups.committed()
        except Exception:
            con.execute("ROLLBACK")
            self._head_log.withdraw()
            self._load_state()
            raise
        if hist_published is not None:
            hist_published()
        left, lo, hi = mm
        with self._index_lock:
            self._min_ts[left] = lo
            self._max_ts[left] = hi
            self._wmax[left] = hi
        self._forget(dead)
        return deleted

    def _delete_series_rows(self, dead: IdArray) -> None:
        """Deletes the ``series`` rows of ``dead`` (in the writer's open transaction)."""
        if dead.size:
            con = self._wcon
            con.register("_clearsight_dead", {"series_id": dead})
            try:
                con.execute("DELETE FROM series WHERE series_id IN (SELECT series_id FROM _clearsight_dead)")
            finally:
                con.unregister("_clearsight_dead")
            self.rollups.forget(con, dead)

    def _min_max_of(self, ids: npt.NDArray[Any], start_ms: int, end_ms: int) -> tuple[I64Array, I64Array, I64Array]:
        """Per-series (ids, min, max) timestamps of the series ``ids`` that still have samples once
        their head rows in [start_ms, end_ms] are gone (writer connection, in its transaction)."""
        con = self._wcon
        con.register("_clearsight_aff", {"series_id": ids.astype(np.uint32)})
        try:
            flt = "WHERE series_id IN (SELECT series_id FROM _clearsight_aff)"
            sql = _MIN_MAX_SQL.format(filter=flt, chunks=self._parts.sql(writer=True))
            mm: dict[str, Any] = con.execute(sql).fetchnumpy()
        finally:
            con.unregister("_clearsight_aff")
        h_sid, h_ts, _ = self._head.select(ids.astype(np.uint32), -(2**62), 2**62)
        stay = (h_ts < start_ms) | (h_ts > end_ms)
        return _with_head(mm, h_sid[stay], h_ts[stay])

    # --- reads -----------------------------------------------------------------------------------

    def _reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._db.reader(lambda: self._writer.open)

    def _check_open(self) -> None:
        if self._closed or not self._writer.open:
            raise StoreClosed("metrics store is closed")

    def _ids(
        self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> IdArray:
        """Sorted ids of the tenant's series matching any matcher set, with samples in range."""
        with self._index_lock:
            idx = self._index.get(tenant)
            if idx is None:
                return np.zeros(0, dtype=np.uint32)
            return self._in_range(self._selection(idx, tenant, matcher_sets), start_ms, end_ms)

    def _selection(self, idx: TenantIndex, tenant: str, matcher_sets: Sequence[Sequence[Matcher]]) -> IdArray:
        """Sorted ids of the tenant's series matching any matcher set (caller holds the index lock)."""
        key = self._selections.key(matcher_sets)
        ids = self._selections.get(tenant, key)
        if ids is None:
            ids = select_sets(idx, matcher_sets)
            self._selections.put(tenant, key, ids)
        return ids

    def _in_range(self, ids: IdArray, start_ms: int, end_ms: int) -> IdArray:
        """The series of ``ids`` whose ``[min_ts, max_ts]`` meets the range: ``ids`` itself when all
        of them do (caller holds the index lock)."""
        if _inrange is not None:  # one compiled pass
            in_range: IdArray = _inrange.ids_in_range(ids, self._min_ts, self._max_ts, self._floor, start_ms, end_ms)
            return in_range
        lo, hi = np.maximum(self._min_ts[ids], self._floor), self._max_ts[ids]
        keep = (lo <= end_ms) & (hi >= start_ms)
        return ids if bool(keep.all()) else ids[keep]

    def _out_of_range(self, ids: IdArray, start_ms: int, end_ms: int) -> IdArray:
        """The series of ``ids`` that ``_in_range`` leaves out (caller holds the index lock)."""
        lo, hi = np.maximum(self._min_ts[ids], self._floor), self._max_ts[ids]
        out: IdArray = ids[(lo > end_ms) | (hi < start_ms)]
        return out

    def select(self, tenant: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        self._check_open()
        start_ms = max(start_ms, self._floor)
        if end_ms < start_ms:
            return SeriesData.empty()
        ids = self._ids(tenant, [matchers], start_ms, end_ms)
        if ids.size == 0:
            return SeriesData.empty()
        return self._fetch(ids, start_ms, end_ms)

    def select_latest(self, tenant: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                      max_samples: int | None) -> LatestSamples | None:
        """An instant selector's read (store.interface.LatestSelector): per series ``select`` would
        return, in its order, the value of its newest sample in [start_ms, end_ms], read in one
        compiled call (``_headsel.Segments.latest``) from the head and the chunks the decoded-chunk
        cache holds, instead of ``select``'s columns. None: ask ``select`` (no series, a native
        histogram among them, a chunk not decoded, a stale marker or a timestamp held twice as a
        series' newest). Refuses over ``max_samples`` where and as ``select`` does under read
        limits of that many."""
        self._check_open()
        start_ms = max(start_ms, self._floor)
        if end_ms < start_ms:
            return None
        ids = self._ids(tenant, [matchers], start_ms, end_ms)
        if ids.size == 0 or self._hist.any(ids):
            return None
        order = self._label_order.order(ids, self._labels.__getitem__)
        got = self._pub.read(functools.partial(self._latest_once, ids, order[1], start_ms, end_ms, max_samples))
        if got is None:
            return None
        if isinstance(got, int):
            assert max_samples is not None
            raise SampleLimitExceeded(max_samples, got)
        values, samples, chunks, dropped = got
        if chunks:
            self._chunk_cache.count_hits(chunks)
        labels = order[0]
        if dropped is not None:  # series without a sample in the range (a gap over it): not read
            gone = set(dropped)
            labels = [lbl for i, lbl in enumerate(labels) if i not in gone]
        return LatestSamples(labels, values, samples, chunks) if labels else None

    def _latest_once(self, ids: IdArray, perm: npt.NDArray[np.int64] | None, start_ms: int, end_ms: int,
                     cap: int | None) -> tuple[npt.NDArray[np.float64], int, int, list[int] | None] | int | None:
        view = self._head.view()
        snap = self._catalog.snapshot()
        if view.native is None or snap.native is None:
            return None
        got: tuple[npt.NDArray[np.float64], int, int, list[int] | None] | int | None = self._chunk_cache.read_entries(
            functools.partial(view.native.latest, ids, perm, start_ms, end_ms, cap, snap.native,
                              max_chunks=_READ_BATCH_CHUNKS))
        return got

    def select_batches(self, tenant: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                       max_batch_samples: int) -> list[Callable[[], SeriesData]]:
        """``select`` as batches of series (store.interface.BatchedSeriesSelector; select_stream.py)."""
        self._check_open()
        start_ms = max(start_ms, self._floor)
        ids = self._ids(tenant, [matchers], start_ms, end_ms) if end_ms >= start_ms else np.zeros(0, np.uint32)
        snap = self._catalog.snapshot()
        if select_stream.fits_one_batch(ids, start_ms, end_ms, snap, self._head.rows_in, max_batch_samples):
            return [functools.partial(self._fetch, ids, start_ms, end_ms)] if ids.shape[0] else []
        est = select_stream.estimate_samples(ids, start_ms, end_ms, snap, self._head.row_counts)
        groups = select_stream.plan_batches(
            ids, est, max_batch_samples, lambda sub: self._label_order.order(sub, self._labels.__getitem__))
        return [functools.partial(self._fetch, g, start_ms, end_ms) for g in groups]

    def _fetch(self, ids: IdArray, start_ms: int, end_ms: int) -> SeriesData:
        """Samples of ``ids`` in [start_ms, end_ms] from chunks and head (one consistent state), as
        series ordered by label set with ascending timestamps.

        The head comes from the in-memory mirror, the chunks from the catalogue (their bytes from
        the blob cache, or DuckDB for the ones it misses). A publication (compaction, retention, an
        overwrite that rewrote chunks) between the two would pair states of different moments, so
        the read runs under the kernel's ``Publication.read``: retried when one overlapped it, the
        last attempt holding publications off. A read whose chunks in the range are all decoded in
        the chunk cache, or that has none (an instant query at the data's end), is located, cut and
        assembled in that one step, in one compiled call (``HeadView.read_cached``)."""
        order = self._label_order.order(ids, self._labels.__getitem__)
        done, parts = self._pub.read(functools.partial(self._read_once, ids, order[1], start_ms, end_ms))
        if done is not None:
            data = _series(order[0], done)
        else:
            assert parts is not None
            data = self._assemble(ids, order, *parts)
        if self._hist.any(ids):
            data = self._with_histograms(ids, data, start_ms, end_ms)
        return data

    def _with_histograms(self, ids: IdArray, data: SeriesData, start_ms: int, end_ms: int) -> SeriesData:
        """``data`` with the native histogram samples of ``ids`` merged in (histogram_table.py)."""
        with self._reader() as cur:
            hist = self._hist.select(cur, ids, start_ms, end_ms)
        limits = current_read_limits()
        if limits is not None and limits.max_samples is not None:
            total = int(data.timestamps.shape[0]) + hist.samples
            if total > limits.max_samples:
                raise SampleLimitExceeded(limits.max_samples, total)
        return merge_into(data, hist, self._labels.__getitem__)

    def _read_once(
        self, ids: IdArray, perm: npt.NDArray[np.int64] | None, start_ms: int, end_ms: int
    ) -> tuple[Assembled | None, _Parts | None]:
        """The read's series assembled in label order (``perm``, ``LabelOrder.order``'s) in one
        compiled call (``HeadView.read_cached``) when every chunk of ``ids`` overlapping the range is
        decoded in the chunk cache (or there is none: an instant query at the data's end, in the
        head) and the pieces come out ascending; else its parts located and decoded (``_locate``),
        for ``_assemble``."""
        view = self._head.view()
        snap = self._catalog.snapshot()
        limits = current_read_limits()
        cap = limits.max_samples if limits is not None else None
        # (partials, not lambdas: no Python frame of their own on a path every small query takes)
        read = view.native.read_cached if view.native is not None and snap.native is not None else view.read_cached
        done = self._chunk_cache.read_entries(
            functools.partial(read, ids, perm, start_ms, end_ms, cap, snap.native, max_chunks=_READ_BATCH_CHUNKS))
        if isinstance(done, int):
            assert cap is not None
            raise SampleLimitExceeded(cap, done)
        if done is not None:
            offsets, ts, vals, empty, chunks = done
            if chunks:
                self._chunk_cache.count_hits(chunks)
                if limits is not None and limits.should_stop is not None:
                    limits.should_stop()  # as between the batches of a decoding read
            return (offsets, ts, vals, empty), None
        return None, self._locate(ids, start_ms, end_ms, (view, snap, None))

    def _locate(
        self, ids: IdArray, start_ms: int, end_ms: int,
        found: tuple[HeadView, ChunkRows, npt.NDArray[np.intp] | None] | None = None,
    ) -> _Parts:
        """A read's decoded chunk samples (chunks ordered by (series, min ts): their series, the
        samples kept of each, the samples) and its head rows located (``HeadPick``), refusing
        (``SampleLimitExceeded``) over the read limits' ``max_samples`` before decoding.
        ``found``: the head and catalogue the read took (and its chunks' positions, when the
        caller has them)."""
        limits = current_read_limits()
        cap = limits.max_samples if limits is not None else None
        stop = limits.should_stop if limits is not None else None
        view, snap, pos = found if found is not None else (self._head.view(), self._catalog.snapshot(), None)
        pick = view.pick(ids, start_ms, end_ms)
        n_head = pick.rows
        if cap is not None and n_head > cap:
            raise SampleLimitExceeded(cap, n_head)
        if pos is None:
            pos = snap.find(ids, start_ms, end_ms)
        if pos.shape[0]:
            if cap is not None:
                # Samples of chunks wholly inside the range are certain: refuse before decoding.
                certain = n_head + snap.samples_inside(pos, start_ms, end_ms)
                if certain > cap:
                    raise SampleLimitExceeded(cap, certain)
            cut = (self._chunk_cache.cached_range(snap.uid[pos].tolist(), start_ms, end_ms)
                   if pos.shape[0] <= _READ_BATCH_CHUNKS else None)
            if cut is not None:
                # Every chunk decoded already (a dashboard's steady state): cut to the range without
                # their catalogue rows; what _decode_in_batches does for its one batch.
                if stop is not None:
                    stop()
                c_ts, c_val, kept = cut
                if cap is not None and n_head + c_ts.shape[0] > cap:
                    raise SampleLimitExceeded(cap, n_head + c_ts.shape[0])
                return snap.series_id[pos], kept, c_ts, c_val, pick
            sel = snap.take(pos)
            if cap is None and stop is None:
                c_ts, c_val, kept = self._decode(sel, start_ms, end_ms)
            else:
                c_ts, c_val, kept = self._decode_in_batches(sel, start_ms, end_ms, n_head, cap, stop)
            c_chunk_sid = sel.series_id
        else:
            c_ts, c_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
            kept = np.zeros(0, dtype=np.int64)
            c_chunk_sid = np.zeros(0, dtype=np.uint32)
        return c_chunk_sid, kept, c_ts, c_val, pick

    def warm_caches(self, window_ms: int = 3_600_000) -> int:
        """Decodes the chunks a dashboard reads first into the decoded-chunk cache (their bytes into
        the blob cache on the way): every chunk overlapping the ``window_ms`` before the newest
        chunk's end, the newest first, as many as the cache holds. After a clean stop the head is
        compacted, so these are the chunks of *now*: without this the first query after a restart
        decodes them (2,464 series' newest 3 h chunks: ~35 ms of CPU for ``count by (__name__)``,
        about 6x its warm time). Bounded by the cache's size whatever the store holds; the memory is
        the cache's own budget. Returns the samples decoded."""
        return self._pub.read(lambda: self._warm_once(window_ms))

    def _warm_once(self, window_ms: int) -> int:
        snap = self._catalog.snapshot()
        room = self._chunk_cache.max_samples - self._chunk_cache.samples
        if len(snap) == 0 or room <= 0:
            return 0
        recent = np.flatnonzero(snap.max_ts >= int(snap.max_ts.max()) - window_ms)
        newest_first = recent[np.argsort(-snap.max_ts[recent], kind="stable")]
        fit = int(np.searchsorted(np.cumsum(snap.n[newest_first]), room, side="right"))
        if fit == 0:
            return 0
        sel = snap.take(np.sort(newest_first[:fit]))
        self._decode(sel, int(sel.min_ts.min()), int(sel.max_ts.max()))
        return int(sel.n.sum())

    def _decode(self, sel: ChunkRows, start_ms: int, end_ms: int) -> tuple[I64Array, F64Array, I64Array]:
        """The samples of the chunks ``sel`` in [start_ms, end_ms] (``DecodedChunkCache.decode_range``,
        keyed by chunk uid: the bytes of the chunks it misses only are looked up)."""
        return self._chunk_cache.decode_range(
            sel.n, sel.codec, sel.scale,
            lambda pos: self._chunk_bytes(sel.take(np.asarray(pos, dtype=np.intp)), writer=False),
            start_ms, end_ms, min_ts=sel.min_ts, max_ts=sel.max_ts, keys=sel.uid.tolist())

    def _decode_in_batches(
        self, sel: ChunkRows, start_ms: int, end_ms: int, n_head: int, cap: int | None,
        stop: Callable[[], None] | None,
    ) -> tuple[I64Array, F64Array, I64Array]:
        """``decode_range`` of the chunks ``sel`` in batches of ``_READ_BATCH_CHUNKS``, calling
        ``stop`` between batches and refusing (``SampleLimitExceeded``) as soon as the samples
        decoded so far and the head rows exceed ``cap``: memory stays near the limit."""
        parts: list[tuple[I64Array, F64Array, I64Array]] = []
        total = n_head
        for a in range(0, len(sel), _READ_BATCH_CHUNKS):
            if stop is not None:
                stop()
            if len(sel) <= _READ_BATCH_CHUNKS:
                part = sel  # one batch: no copy
            else:
                part = sel.take(np.arange(a, min(a + _READ_BATCH_CHUNKS, len(sel)), dtype=np.intp))
            ts, vals, kept = self._decode(part, start_ms, end_ms)
            total += int(ts.shape[0])
            if cap is not None and total > cap:
                raise SampleLimitExceeded(cap, total)
            parts.append((ts, vals, kept))
        if len(parts) == 1:
            return parts[0]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]))

    def _assemble(
        self,
        ids: IdArray,
        order: Order,
        c_chunk_sid: npt.NDArray[np.uint32],
        kept: I64Array,
        c_ts: I64Array,
        c_val: F64Array,
        pick: HeadPick,
    ) -> SeriesData:
        """Merges decoded chunk samples (chunk after chunk, chunks ordered by (series, min_ts),
        ``kept[i]`` samples from chunk ``i``) with the head rows ``pick`` located into series
        ordered by label set (``order``: ``LabelOrder.order`` of ``ids``). Compiled
        (``HeadPick.assemble``): one pass copying each series' pieces in place; when some series'
        pieces overlap in time (late samples), or without the compiled module, the vectorized merge
        below, which sorts them."""
        n_c = c_ts.shape[0]
        total = n_c + pick.rows
        if total == 0:
            return SeriesData.empty()
        if pick.bounds is not None:
            fast = pick.assemble(order[1], c_chunk_sid, kept, c_ts, c_val)
            if fast is not None:
                return _series(order[0], fast)
        h_sid, h_ts, h_val = pick.columns()
        k = ids.shape[0]
        if (h_ts.shape[0] == 0 and c_chunk_sid.shape[0] == k and bool(np.all(kept))
                and bool(np.all(c_chunk_sid == ids))):
            # The common small read: one chunk per series, no head rows. A chunk's samples are
            # ascending, so the series are the chunks as they are, once in label order.
            labels, perm = order
            if perm is None:
                offsets = np.zeros(k + 1, dtype=np.int64)
                np.cumsum(kept, out=offsets[1:])
                if not (c_ts.flags.writeable and c_val.flags.writeable):  # shared with the chunk cache
                    c_ts, c_val = c_ts.copy(), c_val.copy()
                return SeriesData(labels, offsets, c_ts, c_val)
        c_count = np.bincount(np.searchsorted(ids, c_chunk_sid), weights=kept, minlength=k).astype(np.int64)
        h_count = np.bincount(np.searchsorted(ids, h_sid), minlength=k)
        c_start = np.zeros(k, dtype=np.int64)
        np.cumsum(c_count[:-1], out=c_start[1:])
        h_start = np.full(k, n_c, dtype=np.int64)
        np.cumsum(h_count[:-1], out=h_start[1:])
        h_start[1:] += n_c
        present = np.flatnonzero((c_count + h_count) > 0)
        labels, perm = self._label_order.order(ids[present], self._labels.__getitem__)
        if perm is not None:
            present = present[perm]
        lens = c_count[present] + h_count[present]
        offsets = np.zeros(len(labels) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        if h_ts.shape[0] == 0 and bool(np.all(c_start[present] == offsets[:-1])):
            ts, vals = c_ts, c_val  # chunks only, already in label order
            if not (ts.flags.writeable and vals.flags.writeable):  # shared with the chunk cache
                ts, vals = ts.copy(), vals.copy()
        elif n_c == 0 and bool(np.all(h_start[present] == offsets[:-1])):
            ts, vals = h_ts, h_val
        elif len(labels) <= _SLICE_COPY_MAX_SERIES or total >= _SLICE_COPY_MIN_AVG * len(labels):
            # Long series: per series, its chunk samples then its head rows, as slice copies.
            ts = np.empty(total, dtype=np.int64)
            vals = np.empty(total, dtype=np.float64)
            rows = zip(
                offsets[:-1].tolist(),
                c_start[present].tolist(),
                c_count[present].tolist(),
                (h_start[present] - n_c).tolist(),
                h_count[present].tolist(),
                strict=True,
            )
            for dst, cs, cn, hs, hn in rows:
                if cn:
                    ts[dst : dst + cn] = c_ts[cs : cs + cn]
                    vals[dst : dst + cn] = c_val[cs : cs + cn]
                if hn:
                    ts[dst + cn : dst + cn + hn] = h_ts[hs : hs + hn]
                    vals[dst + cn : dst + cn + hn] = h_val[hs : hs + hn]
        else:
            # Many short series: the same copies as one gather per column.
            seg_src = np.stack((c_start[present], h_start[present]), axis=1).ravel()
            seg_len = np.stack((c_count[present], h_count[present]), axis=1).ravel()
            seg_dst = np.zeros(seg_len.shape[0], dtype=np.int64)
            np.cumsum(seg_len[:-1], out=seg_dst[1:])
            gather = np.repeat(seg_src - seg_dst, seg_len) + np.arange(total, dtype=np.int64)
            ts = np.concatenate((c_ts, h_ts))[gather]
            vals = np.concatenate((c_val, h_val))[gather]
        up = ts[1:] > ts[:-1]
        up[offsets[1:-1] - 1] = True  # series boundaries
        if not bool(up.all()):  # overlapping chunks (late samples compacted after newer ones)
            series_of = np.repeat(np.arange(len(labels), dtype=np.int64), lens)
            perm = np.lexsort((ts, series_of))
            ts, vals = ts[perm], vals[perm]
        return SeriesData(labels, offsets, ts, vals)

    def querier(self, tenant: str) -> SeriesSelector:
        q = self._queriers.get(tenant)
        if q is None:
            if len(self._queriers) >= _MAX_QUERIERS:
                self._queriers.clear()
            q = self._queriers[tenant] = _Querier(self, tenant)
        return q

    # --- rollups (rollups.py; this store is their RollupHost) --------------------------------------

    def run_rollups(self, now_ms: int, max_blocks: int = 24) -> None:
        """Rolls up everything due at ``now_ms``: one writer command per bounded piece of work
        (appends run between them)."""
        while self._submit("rollup", (now_ms, max_blocks)).result():
            pass

    def rollup_series_ids(self, tenant: str, matchers: Sequence[Matcher]) -> IdArray:
        with self._index_lock:
            idx = self._index.get(tenant)
            return idx.select(matchers) if idx is not None else np.zeros(0, dtype=np.uint32)

    def rollup_labels(self, ids: IdArray) -> list[Labels]:
        return [self._labels[i] for i in ids.tolist()]

    def rollup_has_histograms(self, ids: IdArray) -> bool:
        return self._hist.any(ids)

    def rollup_live_ids(self, start_ms: int, end_ms: int) -> IdArray:
        top = self._next_id
        live = (np.maximum(self._min_ts[:top], self._floor) <= end_ms) & (self._max_ts[:top] >= start_ms)
        return np.flatnonzero(live).astype(np.uint32)

    def rollup_oldest_ms(self) -> int | None:
        top = self._next_id
        live = self._max_ts[:top] != _NO_MAX
        return max(int(self._min_ts[:top][live].min()), self._floor) if bool(live.any()) else None

    def rollup_raw(self, ids: IdArray, start_ms: int, end_ms: int) -> tuple[IdArray, I64Array, F64Array]:
        start_ms = max(start_ms, self._floor)
        c_sid, kept, c_ts, c_val, pick = self._pub.read(lambda: self._locate(ids, start_ms, end_ms))
        h_sid, h_ts, h_val = pick.columns()
        sids = np.concatenate([np.repeat(c_sid, kept), h_sid])
        ts, vals = np.concatenate([c_ts, h_ts]), np.concatenate([c_val, h_val])
        order = np.lexsort((ts, sids))
        return sids[order], ts[order], vals[order]

    def rollup_reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._reader()

    def series(
        self,
        tenant: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> list[Labels]:
        self._check_open()
        ids = self._ids(tenant, matcher_sets, start_ms, end_ms)
        out = sorted(self._labels[s] for s in ids.tolist())
        return out[:limit] if limit is not None else out

    def label_names(
        self,
        tenant: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> list[str]:
        self._check_open()
        return self._listing(tenant, None, matcher_sets, start_ms, end_ms, limit)

    def label_values(
        self,
        tenant: str,
        name: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> list[str]:
        self._check_open()
        return self._listing(tenant, name, matcher_sets, start_ms, end_ms, limit)

    def _listing(self, tenant: str, name: str | None, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int,
                 end_ms: int, limit: int | None) -> list[str]:
        """Label names (``name`` None) or the values of ``name`` on the tenant's series matching
        any matcher set whose ``[min_ts, max_ts]`` meets the range, sorted, at most ``limit``:
        the selection's full listing less the series out of the range while those are at most a
        quarter of it, else a pass over the series in the range; an answer for a range that left
        series out is kept with them (label_listing.py)."""
        with self._index_lock:
            idx = self._index.get(tenant)
            if idx is None:
                return []
            sel = self._selection(idx, tenant, matcher_sets)
            ids = self._in_range(sel, start_ms, end_ms)
            n_in = ids.shape[0]
            n_gone = sel.shape[0] - n_in
            if n_in == 0:
                return []
            generation = idx.generation
            key = (name, self._selections.key(matcher_sets))
            gone: IdArray | None = None
            if n_gone and n_in > _LISTING_SCAN_IDS:
                gone = self._out_of_range(sel, start_ms, end_ms)
                kept = self._listings.get_subset(tenant, key, generation, gone)
                if kept is not None:
                    return _limited(kept, limit)
            by_listing = 3 * n_gone <= n_in and (gone is not None or n_gone == 0)
            listing: label_listing.Listing | None = None
            if by_listing and sel.shape[0] == len(idx):  # the whole tenant: the index has the listing
                if name is None:
                    keys, count = idx.names_sorted(), idx.name_count
                else:
                    keys, count = idx.values_sorted(name), functools.partial(idx.value_count, name)
                if gone is None:
                    return _limited(keys, limit)
                out = label_listing.without(keys, map(self._labels.__getitem__, gone.tolist()), name, count, None)
                self._listings.put_subset(tenant, key, generation, gone, out)
                return _limited(out, limit)
            if by_listing:
                listing = self._listings.get(tenant, key, generation)
                if listing is None and sel.shape[0] > _SMALL_ID_SET:  # counted on the postings
                    listing = label_listing.Listing.of(
                        idx.name_counts(sel) if name is None else idx.value_counts(name, sel))
                    self._listings.put(tenant, key, generation, listing)
            elif n_in > _SMALL_ID_SET:  # many series in range: a pass over the postings
                out = idx.label_names(ids) if name is None else idx.label_values(name, ids)
                if gone is not None:
                    self._listings.put_subset(tenant, key, generation, gone, out)
                return _limited(out, limit)
        # Outside the lock: label sets are immutable, and an entry computed from an older
        # generation than the cache's is refused by it.
        if not by_listing:
            out = label_listing.scan(self._labels, ids, name)
        else:
            if listing is None:  # counted on the label sets
                listing = label_listing.Listing.of(label_listing.scan_counts(self._labels, sel, name))
                self._listings.put(tenant, key, generation, listing)
            if gone is None:
                return _limited(listing.keys, limit)
            out = label_listing.without(listing.keys, map(self._labels.__getitem__, gone.tolist()), name,
                                        listing.counts.__getitem__, None)
        if gone is not None:
            self._listings.put_subset(tenant, key, generation, gone, out)
        return _limited(out, limit)

    def metadata(
        self,
        tenant: str,
        metric: str | None = None,
        limit: int | None = None,
        limit_per_metric: int | None = None,
    ) -> dict[str, list[MetricMetadata]]:
        self._check_open()
        with self._index_lock:
            known = self._meta.get(tenant, {})
            names = [metric] if metric is not None else sorted(known)
            out: dict[str, list[MetricMetadata]] = {}
            for name in names:
                entries = known.get(name)
                if not entries:
                    continue
                if limit is not None and len(out) >= limit:
                    break
                chosen = entries if limit_per_metric is None else entries[:limit_per_metric]
                out[name] = [MetricMetadata(m.metric, m.type, m.help, m.unit) for m in chosen]
        return out

    def storage_breakdown(self) -> dict[str, int]:
        """Where the bytes are: database file blocks in use and free, WAL, head rows, chunk rows
        and the compressed chunk payload."""
        def read() -> tuple[tuple[Any, ...], ...]:
            with self._reader() as cur:
                try:
                    return (
                        _one(cur, "SELECT block_size, total_blocks, used_blocks, free_blocks, wal_size "
                                  "FROM pragma_database_size() LIMIT 1"),
                        _one(cur, "SELECT count(*), coalesce(sum(n), 0), coalesce(sum(octet_length(data)), 0) "
                                  f"FROM {self._parts.sql(writer=False)}"),
                    )
                except duckdb.CatalogException as e:  # retention dropped a partition meanwhile
                    raise Retry(str(e)) from None

        db, ch = self._pub.read(read)
        hl = self._head_log.log
        wal = Path(str(self.path) + ".wal")
        return {
            "file_bytes": os.stat(self.path).st_size,
            "wal_bytes": os.stat(wal).st_size if wal.exists() else 0,
            "block_size": int(db[0]),
            "used_block_bytes": int(db[0]) * int(db[2]),
            "free_block_bytes": int(db[0]) * int(db[3]),
            "head_rows": self._head.rows,
            "head_log_records": hl.records,
            "head_log_bytes": hl.bytes,
            "head_log_file_bytes": hl.file_bytes,
            "chunk_rows": int(ch[0]),
            "chunk_samples": int(ch[1]),
            "chunk_payload_bytes": int(ch[2]),
            "chunk_partitions": self._parts.totals()[0],
        }

    def stats(self) -> StoreStats:
        s = self._stats
        with self._index_lock:
            active = {t: len(idx) for t, idx in self._index.items() if len(idx)}
        size = self._head_log.log.file_bytes  # preallocated segments
        for p in (self.path, Path(str(self.path) + ".wal")):
            try:
                size += os.stat(p).st_size
            except FileNotFoundError:
                pass
        depth = self._writer.queued
        return StoreStats(
            active_series=active,
            total_series=sum(active.values()),
            samples_written_total=s.samples_written_total,
            bytes_on_disk=size,
            queue_depth=depth,
            commits_total=s.commits_total,
            last_commit_seconds=s.last_commit_seconds,
            commit_seconds_sum=s.commit_seconds_sum,
            out_of_bounds_total=s.out_of_bounds_total,
            duplicates_total=s.duplicates_total,
            identical_total=s.identical_total,
            out_of_order_total=s.out_of_order_total,
            writer_alive=self._writer.alive,
            partitions=self._parts.totals()[0],
            partition_bytes=self._parts.totals()[1],
            partitions_dropped_total=self._retained.partitions_dropped_total,
            partition_bytes_dropped_total=self._retained.bytes_dropped_total,
            rollups=self.rollups.progress() if self.rollups.enabled else None,
            max_series_total=max(0, self.max_series_total),
            series_key_bytes=(sum(t.nbytes for t in list(self._key_cache.values()))
                              + sum(c.nbytes for c in list(self._canon.values()))),
        )


def _limited(keys: list[str], limit: int | None) -> list[str]:
    """A copy of ``keys`` (kept by a cache or the index), at most ``limit`` of them."""
    return keys[:limit] if limit is not None else list(keys)
