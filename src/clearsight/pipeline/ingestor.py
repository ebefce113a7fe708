"""The write path's entry point for every API surface: run the pipeline steps, append, await commit.

API modules (remote-write, OTLP, scrape, ...) decode a request into a ``SampleBatch`` and call
``MetricsIngestor.ingest``; it returns once the batch is durable, or raises an ``IngestError``
(nothing written).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence

from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, LimitExceeded, Overloaded
from clearsight.store import interface as store_if
from clearsight.store.interface import AppendResult, MetricsStore

# A pipeline step: (tenant, batch) -> batch. Raises IngestError to reject the whole batch.
Step = Callable[[str, SampleBatch], SampleBatch]


class MetricsIngestor:
    def __init__(self, store: MetricsStore, steps: Sequence[Step] = ()) -> None:
        self._store = store
        self._steps = list(steps)

    def prepare(self, tenant: str, batch: SampleBatch) -> SampleBatch:
        for step in self._steps:
            batch = step(tenant, batch)
        return batch

    def submit(self, tenant: str, batch: SampleBatch) -> concurrent.futures.Future[AppendResult]:
        """Runs the pipeline and queues the batch; the future resolves after commit."""
        batch = self.prepare(tenant, batch)
        try:
            fut = self._store.append(tenant, batch)
        except store_if.Overloaded as e:
            raise Overloaded(str(e), retry_after=e.retry_after) from e
        except store_if.StoreClosed as e:
            raise Overloaded(f"store is not accepting writes: {e}", retry_after=5.0, status=503) from e
        return fut

    async def ingest(self, tenant: str, batch: SampleBatch) -> AppendResult:
        fut = self.submit(tenant, batch)
        return await _await_append(fut)

    @staticmethod
    async def wait(fut: concurrent.futures.Future[AppendResult]) -> AppendResult:
        """Awaits a future from ``submit`` (translating store errors)."""
        return await _await_append(fut)

    def ingest_blocking(self, tenant: str, batch: SampleBatch, timeout: float | None = None) -> AppendResult:
        fut = self.submit(tenant, batch)
        try:
            return fut.result(timeout)
        except store_if.StoreError as e:
            raise _translate(e) from e


async def _await_append(fut: concurrent.futures.Future[AppendResult]) -> AppendResult:
    try:
        return await asyncio.wrap_future(fut)
    except store_if.StoreError as e:
        raise _translate(e) from e


def _translate(e: store_if.StoreError) -> IngestError:
    if isinstance(e, store_if.LimitExceeded):
        return LimitExceeded(e.limit, str(e))
    if isinstance(e, store_if.Overloaded):
        return Overloaded(str(e), retry_after=e.retry_after)
    if isinstance(e, store_if.StoreClosed):
        return Overloaded(f"store is not accepting writes: {e}", retry_after=5.0, status=503)
    if isinstance(e, store_if.InvalidBatch):
        from clearsight.pipeline.errors import InvalidInput

        return InvalidInput(str(e))
    return Overloaded(f"store error: {e}", retry_after=5.0, status=503)
