"""The write path's entry point for every API surface: run the pipeline steps, append, await commit.

API modules (remote-write, OTLP, scrape, ...) decode a request into a ``SampleBatch`` and call
``MetricsIngestor.ingest``; it returns once the batch is durable, or raises an ``IngestError``
(nothing written).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence

from clearsight.model.exemplars import Exemplar
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.decoded_bytes import keep_until
from clearsight.pipeline.errors import IngestError, LimitExceeded, Overloaded
from clearsight.store import interface as store_if
from clearsight.store.exemplars_interface import ExemplarAppendResult, ExemplarStore
from clearsight.store.interface import AppendResult, MetricsStore

log = logging.getLogger("clearsight.pipeline.ingestor")

# A pipeline step: (tenant, batch) -> batch. Raises IngestError to reject the whole batch.
Step = Callable[[str, SampleBatch], SampleBatch]


class MetricsIngestor:
    """``exemplars``: where a batch's exemplars go once its samples are committed (none: dropped);
    ``on_exemplars`` sees each such append's outcome (counters)."""

    def __init__(self, store: MetricsStore, steps: Sequence[Step] = (), exemplars: ExemplarStore | None = None,
                 on_exemplars: Callable[[ExemplarAppendResult], None] | None = None,
                 on_committed: Callable[[str, AppendResult], None] | None = None) -> None:
        self._store = store
        self._steps = list(steps)
        self._exemplars = exemplars
        self._on_exemplars = on_exemplars
        self._on_committed = on_committed

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
        keep_until(fut)  # a decoded request's bytes stay held (decoded_bytes) until its commit
        if self._on_committed is not None:
            fut.add_done_callback(functools.partial(self._committed, tenant))
        if batch.exemplars and self._exemplars is not None:
            return self._then_exemplars(tenant, batch.exemplars, fut)
        return fut

    def _committed(self, tenant: str, fut: concurrent.futures.Future[AppendResult]) -> None:
        """``on_committed`` with a committed batch's result (before the write is acknowledged)."""
        if fut.cancelled() or fut.exception() is not None or self._on_committed is None:
            return
        try:
            self._on_committed(tenant, fut.result())
        except Exception:  # the samples are committed either way
            log.exception("the commit hook of a committed write failed")

    def _then_exemplars(
        self, tenant: str, exemplars: list[Exemplar], fut: concurrent.futures.Future[AppendResult]
    ) -> concurrent.futures.Future[AppendResult]:
        """A future that resolves like ``fut`` once the exemplars are kept too: they are appended only
        after the samples committed (a rejected batch keeps none) and before the write is
        acknowledged. A failing exemplar store is logged; it does not fail the committed write."""
        out: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        sink = self._exemplars
        assert sink is not None

        def done(f: concurrent.futures.Future[AppendResult]) -> None:
            if f.cancelled():
                out.cancel()
                return
            exc = f.exception()
            if exc is not None:
                out.set_exception(exc)
                return
            result = f.result()
            try:
                outcome = sink.append(tenant, exemplars)
                result = dataclasses.replace(result, exemplars_written=outcome.appended)
                if self._on_exemplars is not None:
                    self._on_exemplars(outcome)
            except Exception as e:  # the samples are committed either way
                log.warning("exemplars of a committed write were not kept: %s", e)
            out.set_result(result)

        fut.add_done_callback(done)
        return out

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
