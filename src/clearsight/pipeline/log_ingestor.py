"""The log write path's entry for every log surface: check the tenant and the time window, append,
await the commit.

API modules decode a request into a ``LogBatch`` (or events, turned into one by
``pipeline/event_entries.py``) and call ``LogIngestor.submit`` off the event loop, then ``wait``;
the batch is durable when that returns, or an ``IngestError`` says why nothing was written.

Time window (Loki's ``reject_old_samples_max_age`` and ``creation_grace_period``): a batch holding
an entry older than ``now - reject_older_than_ns`` or newer than ``now + creation_grace_ns`` is
refused whole (400 naming the entry and its stream), checked vectorised over the timestamps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import time
from collections.abc import Callable, Sequence

import numpy as np

from clearsight.model.labels import format_labels
from clearsight.model.logs import LogBatch
from clearsight.pipeline.errors import IngestError, InvalidInput, LimitExceeded, Overloaded
from clearsight.pipeline.tenant import validate_tenant
from clearsight.store import interface as store_if
from clearsight.store.logs_interface import LogAppendResult, LogStore

# A pipeline step: (tenant, batch) -> batch. Raises IngestError to reject the whole batch.
LogStep = Callable[[str, LogBatch], LogBatch]


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LogIngestor:
    def __init__(self, store: LogStore, *, reject_older_than_ns: int, creation_grace_ns: int,
                 steps: Sequence[LogStep] = (), clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._store = store
        self.reject_older_than_ns = reject_older_than_ns
        self.creation_grace_ns = creation_grace_ns
        self._steps = list(steps)
        self._clock_ns = clock_ns

    def check_window(self, batch: LogBatch) -> None:
        if not len(batch):
            return
        now = self._clock_ns()
        old, new = now - self.reject_older_than_ns, now + self.creation_grace_ns
        ts = batch.timestamps
        bad = np.flatnonzero((ts < old) | (ts > new))
        if bad.size == 0:
            return
        j = int(bad[0])
        t = int(ts[j])
        stream = format_labels(batch.streams[int(batch.stream_idx[j])])
        if t < old:
            raise InvalidInput(f"entry {j} of stream '{stream}' has timestamp too old: {_iso(t)} ({t} ns), "
                               f"oldest accepted timestamp is {_iso(old)} (logs.reject_older_than); "
                               f"{bad.size} entr{'y' if bad.size == 1 else 'ies'} outside the window",
                               reason="too_old")
        raise InvalidInput(f"entry {j} of stream '{stream}' has timestamp too new: {_iso(t)} ({t} ns), "
                           f"newest accepted is {_iso(new)} (logs.creation_grace_period); "
                           f"{bad.size} entr{'y' if bad.size == 1 else 'ies'} outside the window",
                           reason="too_new")

    def prepare(self, tenant: str, batch: LogBatch) -> LogBatch:
        validate_tenant(tenant)
        self.check_window(batch)
        for step in self._steps:
            batch = step(tenant, batch)
        return batch

    def submit(self, tenant: str, batch: LogBatch) -> concurrent.futures.Future[LogAppendResult]:
        """Runs the checks and queues the batch; the future resolves after commit. Call it off the
        event loop (the checks are cheap, but a step may not be)."""
        batch = self.prepare(tenant, batch)
        try:
            return self._store.append(tenant, batch)
        except store_if.Overloaded as e:
            raise Overloaded(str(e), retry_after=e.retry_after) from e
        except store_if.StoreClosed as e:
            raise Overloaded(f"log store is not accepting writes: {e}", retry_after=5.0, status=503) from e

    @staticmethod
    async def wait(fut: concurrent.futures.Future[LogAppendResult]) -> LogAppendResult:
        try:
            return await asyncio.wrap_future(fut)
        except store_if.StoreError as e:
            raise _translate(e) from e

    async def ingest(self, tenant: str, batch: LogBatch) -> LogAppendResult:
        return await self.wait(self.submit(tenant, batch))

    def ingest_blocking(self, tenant: str, batch: LogBatch) -> LogAppendResult:
        """``submit`` and wait for the commit, in the calling thread (gRPC handlers)."""
        try:
            return self.submit(tenant, batch).result()
        except store_if.StoreError as e:
            raise _translate(e) from e


def _translate(e: store_if.StoreError) -> IngestError:
    if isinstance(e, store_if.LimitExceeded):
        return LimitExceeded(e.limit, str(e))
    if isinstance(e, store_if.Overloaded):
        return Overloaded(str(e), retry_after=e.retry_after)
    if isinstance(e, store_if.InvalidBatch):
        return InvalidInput(str(e))
    if isinstance(e, store_if.StoreClosed):
        return Overloaded(f"log store is not accepting writes: {e}", retry_after=5.0, status=503)
    return Overloaded(f"log store error: {e}", retry_after=5.0, status=503)
