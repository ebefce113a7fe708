"""The trace write path's entry for every span surface (OTLP/HTTP, OTLP/gRPC, the simple JSON shape):
check the tenant, drop spans outside the time window, run the steps (usage counting and quota),
append, await the commit.

Time window (the log window: ``logs.reject_older_than`` and ``logs.creation_grace_period``): a span
that started before ``now - reject_older_than_ns`` or after ``now + creation_grace_ns`` is dropped
and the others are kept; OTLP answers it as ``partial_success`` (``rejected_spans`` and a message
naming the first dropped span). The steps see only the kept spans.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from clearsight.model.spans import SpanBatch
from clearsight.pipeline.errors import IngestError, InvalidInput, Overloaded
from clearsight.pipeline.tenant import validate_tenant
from clearsight.store import interface as store_if
from clearsight.store.spans_interface import SpanAppendResult, SpanStore

# A pipeline step: (tenant, batch) -> batch. Raises IngestError to reject the whole batch.
SpanStep = Callable[[str, SpanBatch], SpanBatch]


@dataclass
class SpanIngestResult:
    spans_written: int = 0
    rejected: int = 0  # spans dropped (outside the time window)
    message: str = ""  # why, for OTLP's partial_success


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SpanIngestor:
    def __init__(self, store: SpanStore, *, reject_older_than_ns: int, creation_grace_ns: int,
                 steps: Sequence[SpanStep] = (), clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._store = store
        self.reject_older_than_ns = reject_older_than_ns
        self.creation_grace_ns = creation_grace_ns
        self._steps = list(steps)
        self._clock_ns = clock_ns

    def prepare(self, tenant: str, batch: SpanBatch) -> tuple[SpanBatch, int, str]:
        """(the spans to store, how many were dropped, why)."""
        validate_tenant(tenant)
        now = self._clock_ns()
        old, new = now - self.reject_older_than_ns, now + self.creation_grace_ns
        kept = [s for s in batch.spans if old <= s.start_ns <= new]
        rejected = len(batch) - len(kept)
        message = ""
        if rejected:
            first = next(s for s in batch.spans if not old <= s.start_ns <= new)
            which = "too old" if first.start_ns < old else "too new"
            bound = (f"oldest accepted is {_iso(old)} (logs.reject_older_than)" if first.start_ns < old
                     else f"newest accepted is {_iso(new)} (logs.creation_grace_period)")
            message = (f"{rejected} span(s) outside the accepted time window were dropped; the first, span "
                       f"{first.span_id.hex()} of trace {first.trace_id.hex()}, started {_iso(first.start_ns)}: "
                       f"{which}, {bound}")
            batch = SpanBatch(kept)
        for step in self._steps:
            batch = step(tenant, batch)
        return batch, rejected, message

    def submit(self, tenant: str, batch: SpanBatch) -> tuple[concurrent.futures.Future[SpanAppendResult] | None,
                                                             int, str]:
        """Checks and queues the batch (off the event loop); the future (None when no span is left)
        resolves after commit."""
        kept, rejected, message = self.prepare(tenant, batch)
        if not len(kept):
            return None, rejected, message
        try:
            return self._store.append(tenant, kept), rejected, message
        except store_if.Overloaded as e:
            raise Overloaded(str(e), retry_after=e.retry_after) from e
        except store_if.StoreClosed as e:
            raise Overloaded(f"span store is not accepting writes: {e}", retry_after=5.0, status=503) from e

    async def ingest(self, tenant: str, batch: SpanBatch, executor: Executor | None = None) -> SpanIngestResult:
        """``submit`` in ``executor`` (the loop's default when None), then awaits the commit."""
        fut, rejected, message = await asyncio.get_running_loop().run_in_executor(executor, self.submit, tenant,
                                                                                  batch)
        if fut is None:
            return SpanIngestResult(0, rejected, message)
        try:
            result = await asyncio.wrap_future(fut)
        except store_if.StoreError as e:
            raise _translate(e) from e
        return SpanIngestResult(result.spans_written, rejected, message)

    def ingest_blocking(self, tenant: str, batch: SpanBatch) -> SpanIngestResult:
        """``submit`` and wait for the commit in the calling thread (gRPC handlers)."""
        fut, rejected, message = self.submit(tenant, batch)
        if fut is None:
            return SpanIngestResult(0, rejected, message)
        try:
            result = fut.result()
        except store_if.StoreError as e:
            raise _translate(e) from e
        return SpanIngestResult(result.spans_written, rejected, message)


def _translate(e: store_if.StoreError) -> IngestError:
    if isinstance(e, store_if.InvalidBatch):
        return InvalidInput(str(e))
    if isinstance(e, store_if.Overloaded):
        return Overloaded(str(e), retry_after=e.retry_after)
    return Overloaded(f"span store error: {e}", retry_after=5.0, status=503)
