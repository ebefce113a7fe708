"""The embedded span store: ``spans_YYYYMMDD`` tables in the log store's DuckDB file (``span_schema.py``).

It owns no database and no thread. Writes run on the log store's writer thread (``host.run_on_writer``,
the storage kernel's group-commit writer, ordered with the log writes): ``append`` queues ``(tenant,
batch, future)`` in memory and asks the writer to drain; the first drain that runs takes every span
batch queued by then, inserts them (one Arrow table per UTC day of the spans' start) in **one**
transaction, commits, and only then resolves their futures: acknowledged = committed, durable across
``kill -9``. A drain finding the queue empty (its batches went with an earlier group) does nothing.
More than ``queue_max_batches`` batches waiting: ``Overloaded`` at once (the HTTP layer answers 429 +
Retry-After). A failed commit is rolled back and fails its batches; one that broke the database is
re-raised so the log store's writer reopens it (its batches fail too).

Reads borrow a reader cursor of the same file (``host.reader()``). A trace read looks for the trace id
in every day table (there is no trace-id index yet: a read scans the retained days' ``tenant`` and
``trace_id`` columns, vectorised; a later trace issue adds an index or another backend behind
``store/spans_interface.py``).

Retention drops whole day tables older than the longest retention, and deletes the rows of tenants
with a shorter one from the days kept (as the log store does).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import duckdb
import numpy as np

from clearsight.lazy_module import lazy_module
from clearsight.model.spans import Span, SpanBatch
from clearsight.store.embedded.span_schema import (
    COLUMN_NAMES,
    COLUMNS,
    DAY_NS,
    SPAN_DAYS,
    partition_name,
)
from clearsight.store.interface import InvalidBatch, Overloaded, StoreClosed, StoreError
from clearsight.store.kernel import retention
from clearsight.store.kernel.database import is_fatal
from clearsight.store.kernel.writer import retry_after_estimate
from clearsight.store.spans_interface import (
    MAX_SPANS_PER_TRACE,
    MAX_TRACE_BYTES,
    SpanAppendResult,
    SpanStoreStats,
    TraceRead,
)

if TYPE_CHECKING:
    import pyarrow as pa
else:  # imported on first use: a server that stores no span never loads pyarrow (lazy_module.py)
    pa = lazy_module("pyarrow")

log = logging.getLogger(__name__)
T = TypeVar("T")
_SELECT = ", ".join(COLUMN_NAMES)
# What a span holds, in UTF-8 bytes: its ids and every text field (the size bound of a trace read).
_SIZE = " + ".join([
    *(f"coalesce(octet_length({c}), 0)" for c in ("trace_id", "span_id", "parent_span_id")),
    *(f"coalesce(strlen({c}), 0)" for c in ("name", "status_message", "service_name", "scope_name", "scope_version",
                                            "trace_state")),
    *(f"coalesce(strlen(array_to_string({c}, '')), 0)" for c in ("attr_keys", "attr_values", "resource_keys",
                                                                   "resource_values")),
])
_VIEW = "_clearsight_spans"


class WriterHost(Protocol):
    """The store whose file and writer thread the spans share (``EmbeddedLogStore``)."""

    def run_on_writer(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *,
                      adds: bool = True) -> concurrent.futures.Future[T]: ...

    def reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]: ...


@dataclass(eq=False)  # compared by identity
class _Append:
    tenant: str
    batch: SpanBatch
    future: concurrent.futures.Future[SpanAppendResult]


def _arrow_of(group: list[_Append]) -> pa.Table:
    rows = [(a.tenant, s) for a in group for s in a.batch.spans]
    strs = pa.list_(pa.string())
    return pa.table({
        "tenant": pa.array([t for t, _ in rows], pa.string()),
        "trace_id": pa.array([s.trace_id for _, s in rows], pa.binary()),
        "span_id": pa.array([s.span_id for _, s in rows], pa.binary()),
        "parent_span_id": pa.array([s.parent_span_id or None for _, s in rows], pa.binary()),
        "name": pa.array([s.name for _, s in rows], pa.string()),
        "kind": pa.array([s.kind for _, s in rows], pa.uint8()),
        "start_ns": pa.array([s.start_ns for _, s in rows], pa.int64()),
        "end_ns": pa.array([s.end_ns for _, s in rows], pa.int64()),
        "status_code": pa.array([s.status_code for _, s in rows], pa.uint8()),
        "status_message": pa.array([s.status_message for _, s in rows], pa.string()),
        "service_name": pa.array([s.service_name for _, s in rows], pa.string()),
        "attr_keys": pa.array([list(s.attr_keys) for _, s in rows], strs),
        "attr_values": pa.array([list(s.attr_values) for _, s in rows], strs),
        "resource_keys": pa.array([list(s.resource_keys) for _, s in rows], strs),
        "resource_values": pa.array([list(s.resource_values) for _, s in rows], strs),
        "scope_name": pa.array([s.scope_name for _, s in rows], pa.string()),
        "scope_version": pa.array([s.scope_version for _, s in rows], pa.string()),
        "trace_state": pa.array([s.trace_state for _, s in rows], pa.string()),
        "events": pa.array([s.events for _, s in rows], pa.uint32()),
        "links": pa.array([s.links for _, s in rows], pa.uint32()),
    })


def _span_of(row: tuple[Any, ...]) -> Span:
    (_tenant, tid, sid, parent, name, kind, start, end, code, msg, service, ak, av, rk, rv, scope, version,
     state, events, links) = row
    return Span(bytes(tid), bytes(sid), bytes(parent or b""), name, int(kind), int(start), int(end), int(code),
                msg, service, tuple(ak), tuple(av), tuple(rk), tuple(rv), scope, version, state, int(events),
                int(links))


def _union(columns: str, days: list[int]) -> str:
    """``columns`` of a tenant's trace (parameters: tenant, trace id per day) over the day tables."""
    return " UNION ALL ".join(f"SELECT {columns} FROM {partition_name(d)} WHERE tenant = ? AND trace_id = ?"
                              for d in days)


def _fitting(sizes: list[int], limit: int, max_bytes: int) -> int:
    """How many of the spans of these sizes (in order) a read answers: at most ``limit``, and no
    more than fit in ``max_bytes`` (the first always)."""
    total = 0
    for i, size in enumerate(sizes[:limit]):
        total += size
        if i and total > max_bytes:
            return i
    return min(len(sizes), limit)


def _check(tenant: str, batch: SpanBatch) -> None:
    if not isinstance(tenant, str) or not tenant:
        raise InvalidBatch("tenant must be a non-empty string")
    for s in batch.spans:
        if s.start_ns <= 0 or s.end_ns < s.start_ns:
            raise InvalidBatch(f"span {s.span_id.hex()}: start {s.start_ns} / end {s.end_ns} cannot be stored")


class EmbeddedSpanStore:
    """``store.spans_interface.SpanStore`` in the log store's file (see the module docstring)."""

    def __init__(self, host: WriterHost, *, retention_ns: int = 7 * DAY_NS,
                 tenant_retention_ns: dict[str, int] | None = None, queue_max_batches: int = 256) -> None:
        if retention_ns <= 0 or any(r <= 0 for r in (tenant_retention_ns or {}).values()):
            raise ValueError("retention_ns must be positive")
        if queue_max_batches <= 0:
            raise ValueError("queue_max_batches must be positive")
        self._host = host
        self.retention_ns = retention_ns
        self.tenant_retention_ns = dict(tenant_retention_ns or {})
        self.queue_max = queue_max_batches
        self._lock = threading.Lock()
        self._pending: list[_Append] = []
        self._stats = SpanStoreStats()
        self._closed = False

    # --- writes ----------------------------------------------------------------------------------

    def append(self, tenant: str, batch: SpanBatch) -> concurrent.futures.Future[SpanAppendResult]:
        fut: concurrent.futures.Future[SpanAppendResult] = concurrent.futures.Future()
        try:
            _check(tenant, batch)
        except InvalidBatch as e:
            fut.set_exception(e)
            return fut
        item = _Append(tenant, batch, fut)
        with self._lock:
            if self._closed:
                raise StoreClosed("span store is closed")
            if len(self._pending) >= self.queue_max:
                st = self._stats
                raise Overloaded("span store write queue is full", retry_after=retry_after_estimate(
                    st.commit_seconds_sum, st.commits_total, len(self._pending)))
            self._pending.append(item)
        try:
            self._host.run_on_writer(self._drain)
        except StoreError:
            with self._lock:
                still_queued = item in self._pending
                if still_queued:
                    self._pending.remove(item)
            if still_queued:
                raise
            # an earlier drain took it: its future resolves with that drain's commit
        return fut

    def _drain(self, con: duckdb.DuckDBPyConnection) -> None:
        """Writer thread: commits every queued batch as one transaction, then resolves them."""
        with self._lock:
            group, self._pending = self._pending, []
        if not group:
            return
        t0 = time.perf_counter()
        try:  # everything that can fail, the table's encoding too, fails the group's futures
            table = _arrow_of(group)
            con.execute("BEGIN TRANSACTION")
            if table.num_rows:
                days = np.asarray(table.column("start_ns").to_numpy()) // DAY_NS
                for day in np.unique(days).tolist():
                    sel = np.flatnonzero(days == day)
                    part = table.take(pa.array(sel)) if sel.size != table.num_rows else table
                    name = partition_name(int(day))
                    con.execute(f"CREATE TABLE IF NOT EXISTS {name} {COLUMNS}")
                    con.register(_VIEW, part)
                    try:
                        con.execute(f"INSERT INTO {name} SELECT {_SELECT} FROM {_VIEW}")
                    finally:
                        con.unregister(_VIEW)
            con.execute("COMMIT")
        except Exception as e:
            log.exception("span group commit failed; rolling back")
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            err = StoreError(f"span commit failed: {e}")
            for a in group:
                a.future.set_exception(err)
            if is_fatal(e):
                raise  # the log store's writer reopens the database
            return
        st = self._stats
        st.commits_total += 1
        st.commit_seconds_sum += time.perf_counter() - t0
        st.spans_written_total += table.num_rows
        for a in group:
            a.future.set_result(SpanAppendResult(spans_written=len(a.batch)))

    def close(self) -> None:
        """Commits what is queued (the log store must still be open), then refuses new writes. Never
        raises: a batch that could not be committed fails its own future."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = bool(self._pending)
        if pending:
            try:
                self._host.run_on_writer(self._drain).result()
            except StoreError:  # the log store closed first: what is still queued was not written
                with self._lock:
                    left, self._pending = self._pending, []
                for a in left:
                    a.future.set_exception(StoreClosed("span store closed before this batch was written"))
            except Exception:  # the drain's commit broke the database: its batches' futures already
                # hold the error (logged by _drain); the stores closed after this one must still close
                log.warning("span store closed after its last commit failed")

    # --- retention -------------------------------------------------------------------------------

    @staticmethod
    def _days(con: duckdb.DuckDBPyConnection) -> list[int]:
        return [p.start // DAY_NS for p in SPAN_DAYS.list(con)]

    def apply_retention(self, now_ns: int) -> int:
        longest = max([self.retention_ns, *self.tenant_retention_ns.values()])
        shorter = [(t, r) for t, r in sorted(self.tenant_retention_ns.items()) if r < longest]
        default_shorter = longest > self.retention_ns

        def run(con: duckdb.DuckDBPyConnection) -> int:
            removed = 0
            con.execute("BEGIN TRANSACTION")
            try:
                parts = SPAN_DAYS.list(con)
                doomed = retention.expired(parts, now_ns - longest)
                for p in doomed:
                    removed += int(con.execute(f"SELECT count(*) FROM {p.name}").fetchall()[0][0])
                retention.drop(con, doomed)
                for day in (p.start // DAY_NS for p in parts if p not in doomed):
                    name = partition_name(day)
                    for tenant, r in shorter:
                        removed += _delete(con, name, "tenant = ?", [tenant, now_ns - r])
                    if default_shorter:
                        own = list(self.tenant_retention_ns)
                        cond = f"tenant NOT IN ({', '.join('?' * len(own))})" if own else "true"
                        removed += _delete(con, name, cond, [*own, now_ns - self.retention_ns])
                con.execute("COMMIT")
            except Exception:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            return removed

        removed = self._host.run_on_writer(run, adds=False).result()  # drops and deletes only
        self._stats.spans_removed_total += removed
        return removed

    # --- reads -----------------------------------------------------------------------------------

    def read_trace(self, tenant: str, trace_id: bytes, limit: int = MAX_SPANS_PER_TRACE,
                   max_bytes: int = MAX_TRACE_BYTES) -> TraceRead:
        """Two statements in one snapshot: the sizes of the first ``limit + 1`` spans (small rows;
        one more than the limit says whether the trace has more), then the spans that fit, so
        neither DuckDB nor Python holds more than the bound of whole spans."""
        for attempt in range(3):
            with self._host.reader() as con:
                days = self._days(con)
                if not days:
                    return TraceRead([], False)
                params: list[Any] = [x for _ in days for x in (tenant, trace_id)]
                order = "ORDER BY start_ns, span_id"
                try:
                    con.execute("BEGIN TRANSACTION")
                    try:
                        sizes = con.execute(f"{_union(f'start_ns, span_id, {_SIZE} AS size', days)} {order} "
                                            f"LIMIT {int(limit) + 1}", params).fetchall()
                        n = _fitting([int(r[2]) for r in sizes], limit, max_bytes)
                        rows = con.execute(f"{_union(_SELECT, days)} {order} LIMIT {n}", params).fetchall() if n else []
                    finally:
                        con.execute("ROLLBACK")  # it only read
                except duckdb.CatalogException:
                    if attempt == 2:
                        raise
                    continue  # a day table was dropped by retention meanwhile
            return TraceRead([_span_of(r) for r in rows], n < len(sizes))
        return TraceRead([], False)

    def trace(self, tenant: str, trace_id: bytes, limit: int = MAX_SPANS_PER_TRACE) -> list[Span]:
        return self.read_trace(tenant, trace_id, limit).spans

    def stats(self) -> SpanStoreStats:
        with self._lock:
            queued = len(self._pending)
        st = self._stats
        return SpanStoreStats(st.spans_written_total, st.spans_removed_total, queued,
                              st.commits_total, st.commit_seconds_sum)


def _delete(con: duckdb.DuckDBPyConnection, table: str, cond: str, params: list[Any]) -> int:
    n = con.execute(f"SELECT count(*) FROM {table} WHERE {cond} AND start_ns < ?", params).fetchall()[0][0]
    if n:
        con.execute(f"DELETE FROM {table} WHERE {cond} AND start_ns < ?", params)
    return int(n)
