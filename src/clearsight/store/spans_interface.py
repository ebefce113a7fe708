"""The span store contract. Every trace backend (the embedded one in the logs DuckDB file now,
ClickHouse or another engine in a later trace issue) implements it.

- tenant: a non-empty org id; every read and write is scoped to exactly one tenant.
- spans: ``model.spans.Span`` (ids as bytes, times as int64 Unix nanoseconds).
- ``append`` returns a future that resolves only after the batch is committed (a ``kill -9``
  after that loses nothing); a batch is all-or-nothing. Spans are not deduplicated: the same span
  sent twice is kept twice (``x-idempotency-key`` is the way to retry without writing twice).
- ``read_trace`` returns the tenant's spans of one trace ordered by start time (then span id): the
  earliest, at most ``limit`` of them and no more than fit in ``max_bytes`` (the UTF-8 bytes of their
  ids and text fields; at least one span), and whether the trace has more (``truncated``); an unknown trace (or another
  tenant's) has no spans. ``trace`` is its list of spans.
- retention: ``apply_retention(now_ns)`` removes spans that started before ``now_ns - retention``
  (whole time partitions; younger spans are always kept) and returns how many it removed.

Thread-safety: all methods may be called from any thread; reads see every committed write.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Protocol

from clearsight.model.spans import Span, SpanBatch

MAX_SPANS_PER_TRACE = 10_000  # a trace read returns at most this many spans (the oldest by start time)
MAX_TRACE_BYTES = 32 * 1024 * 1024  # ... and stops before their ids and text pass this many bytes


@dataclass
class SpanAppendResult:
    spans_written: int = 0


@dataclass
class TraceRead:
    spans: list[Span]
    truncated: bool  # the trace has more spans than these (over the count or the size bound)


@dataclass
class SpanStoreStats:
    spans_written_total: int = 0
    spans_removed_total: int = 0  # by retention
    queue_depth: int = 0
    commits_total: int = 0
    commit_seconds_sum: float = 0.0


class SpanStore(Protocol):
    def append(self, tenant: str, batch: SpanBatch) -> concurrent.futures.Future[SpanAppendResult]:
        """Queues the batch; the future resolves after commit. Raises ``store.interface.Overloaded``
        at once when too many batches wait, ``StoreClosed`` when shut down; the future fails with
        ``InvalidBatch`` or ``StoreError`` (nothing written)."""
        ...

    def read_trace(self, tenant: str, trace_id: bytes, limit: int = MAX_SPANS_PER_TRACE,
                   max_bytes: int = MAX_TRACE_BYTES) -> TraceRead:
        ...

    def trace(self, tenant: str, trace_id: bytes, limit: int = MAX_SPANS_PER_TRACE) -> list[Span]:
        ...

    def stats(self) -> SpanStoreStats:
        ...

    def apply_retention(self, now_ns: int) -> int:
        ...

    def close(self) -> None:
        """Commits everything queued. Idempotent."""
        ...
