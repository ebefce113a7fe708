"""The metrics store contract. Every backend (embedded DuckDB, external engines) implements it.

Units and bounds:
- tenant: a non-empty org id string; every read and write is scoped to exactly one tenant.
- timestamps: int64 milliseconds since the Unix epoch; ``start_ms`` and ``end_ms`` are inclusive.
- values: float64; stale markers (``model.samples.STALE_NAN``) are stored and returned bit-exact.
- label sets: canonical ``model.labels.Labels`` (sorted, unique names, no empty values).
- native histograms: a batch's ``SampleBatch.histograms`` are stored like float samples (same
  durability, all-or-nothing, out-of-order window, retention, newest write wins) and count in
  ``AppendResult.samples_written`` (and ``histograms_written``). A histogram stale marker is a float
  ``STALE_NAN`` sample.
- reads: ``select`` returns ``model.samples.SeriesData``; its optional ``histograms`` (native
  histogram samples) and ``start_timestamps`` columns are None when absent. The embedded store does
  not store start timestamps: it always returns None for them.

Durability: ``append`` returns a future that resolves only after the batch is committed to disk
(a ``kill -9`` after that loses nothing). A batch is all-or-nothing: when the future resolves with
an exception nothing of the batch was written.

Duplicates and out-of-order samples: a sample at a timestamp a series already has is a duplicate;
the newest write wins (Prometheus rejects a different value for an existing timestamp; we keep the
last value and count it). Samples older than ``max_ts(series) - out_of_order_window`` are dropped
and counted as ``out_of_bounds`` (Prometheus' out-of-order window semantics); the rest of the batch
is still written.

Thread-safety: all methods may be called from any thread. Reads see every committed write.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher
from clearsight.model.rollups import Buckets
from clearsight.model.samples import MetricMetadata, SampleBatch, SeriesData

DEFAULT_TENANT = "default"


class StoreError(Exception):
    """Base class of store errors."""


class StoreClosed(StoreError):
    """The store is shut down or not open."""


class Overloaded(StoreError):
    """The write queue is full: retry after ``retry_after`` seconds (HTTP 429/503)."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LimitExceeded(StoreError):
    """A configured limit rejects the whole batch (nothing was written)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class InvalidBatch(StoreError):
    """The batch itself is invalid (bad labels, bad values); nothing was written."""


@dataclass
class AppendResult:
    samples_written: int = 0
    series_created: int = 0
    out_of_bounds: int = 0
    duplicates: int = 0
    exemplars_written: int = 0  # set by the ingestor once the exemplar store kept them
    histograms_written: int = 0  # native histogram samples, included in samples_written


@dataclass
class StoreStats:
    active_series: dict[str, int] = field(default_factory=dict)  # per tenant
    total_series: int = 0
    samples_written_total: int = 0
    bytes_on_disk: int = 0
    queue_depth: int = 0
    commits_total: int = 0
    last_commit_seconds: float = 0.0
    commit_seconds_sum: float = 0.0
    out_of_bounds_total: int = 0
    duplicates_total: int = 0
    identical_total: int = 0  # duplicates with the same value: acknowledged, nothing written
    out_of_order_total: int = 0  # written, older than their series' newest committed sample
    writer_alive: bool = True
    partitions: int = 0  # time partitions holding compacted data
    partition_bytes: int = 0  # their payload (what retention_size bounds)
    partitions_dropped_total: int = 0  # by retention, since the store opened
    partition_bytes_dropped_total: int = 0
    rollups: RollupProgress | None = None  # None: the store has no rollups
    series_key_bytes: int = 0  # the tables that map series keys and label sets to series ids
    max_series_total: int = 0  # the series cap over all tenants (0: none)


@dataclass
class RollupProgress:
    """Rollup counters for ``/metrics`` (resolution keys "5m", "1h")."""

    passes_total: int = 0
    dirty_blocks: int = 0  # (series, hour) blocks waiting to be recomputed
    dirty_recomputed_total: int = 0
    reads_total: int = 0  # select_rollups calls answered from rollups
    fallbacks_total: int = 0  # select_rollups calls answered None (raw data read instead)
    buckets_read_total: int = 0
    blocks_written_total: dict[str, int] = field(default_factory=dict)
    buckets_written_total: dict[str, int] = field(default_factory=dict)
    until_ms: dict[str, int] = field(default_factory=dict)  # coverage end per resolution


class SampleLimitExceeded(StoreError):
    """A select would return more samples than its ``ReadLimits.max_samples``; raised before they
    are decoded or assembled (``needed`` is at least what the read would have returned)."""

    def __init__(self, limit: int, needed: int) -> None:
        super().__init__(f"the read would return at least {needed:,} samples, more than the {limit:,} allowed")
        self.limit = limit
        self.needed = needed


class ReadLimits:
    """What one read may spend, set by the reader (the query engine) around its ``select`` calls
    with ``read_limits(...)``; a store that supports it consults ``current_read_limits()``.

    - ``max_samples``: the read raises ``SampleLimitExceeded`` instead of materialising more samples;
    - ``should_stop``: called between batches of the read's work; it raises to abandon the read (the
      query's deadline passed, or its client went away).

    A plain slotted class (made once per select of every query, a frozen dataclass's ``__init__``
    cost more than the read of a small selection's bookkeeping); treat it as immutable."""

    __slots__ = ("max_samples", "should_stop")

    def __init__(self, max_samples: int | None = None, should_stop: Callable[[], None] | None = None) -> None:
        self.max_samples = max_samples
        self.should_stop = should_stop

    def __repr__(self) -> str:
        return f"ReadLimits(max_samples={self.max_samples!r}, should_stop={self.should_stop!r})"


_READ_LIMITS: ContextVar[ReadLimits | None] = ContextVar("clearsight_read_limits", default=None)
# The variable itself, for a reader that sets it around every select without a context manager
# object (``token = READ_LIMITS.set(limits)`` ... ``READ_LIMITS.reset(token)`` in a ``finally``:
# the query engine, where the three calls of ``read_limits`` were a share of a small select).
READ_LIMITS = _READ_LIMITS


class read_limits:  # used as a function: ``with read_limits(limits):``
    """Sets ``limits`` as the current read limits for the ``with`` block (a class rather than a
    ``@contextmanager`` generator: entered around every select)."""

    __slots__ = ("_limits", "_token")

    def __init__(self, limits: ReadLimits) -> None:
        self._limits = limits
        self._token: Token[ReadLimits | None] | None = None

    def __enter__(self) -> None:
        self._token = _READ_LIMITS.set(self._limits)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _READ_LIMITS.reset(self._token)
            self._token = None


def current_read_limits() -> ReadLimits | None:
    return _READ_LIMITS.get()


class LatestSamples(NamedTuple):
    """An instant selector's read (``LatestSelector.select_latest``): the series ``select`` returns,
    in its order, the value of each one's newest sample in the range (a (series x 1) float64
    array: the vector's column at the evaluation time), how many samples ``select`` would have
    returned (what the query's sample budget and statistics count) and how many stored chunks the
    read took (a read that took some polls its read limits' ``should_stop`` as ``select`` does)."""

    labels: list[Labels]
    values: npt.NDArray[np.float64]
    samples: int
    chunks: int = 0  # stored chunks read (not only the newest samples still in memory)


@runtime_checkable
class LatestSelector(Protocol):
    """Optional capability of a ``SeriesSelector``: an instant vector selector read in one step."""

    def select_latest(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                      max_samples: int | None) -> LatestSamples | None:
        """For the series ``select(matchers, start_ms, end_ms)`` returns, each one's newest sample's
        value, when the store can tell them cheaply and none is a stale marker or a native
        histogram; None: read with ``select``. Raises SampleLimitExceeded as ``select`` does under
        read limits of ``max_samples`` (None: no limit)."""
        ...


class SeriesSelector(Protocol):
    """What the query engine reads through: one tenant's samples."""

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        """Series matching all matchers with at least one sample in [start_ms, end_ms], with those
        samples. Matchers follow Prometheus semantics (an absent label equals "").

        The result's optional ``histograms`` and ``start_timestamps`` columns (aligned with
        ``timestamps``, see ``model.samples.SeriesData``) are None when the backend has none for the
        selected samples (the embedded store never has start timestamps); at a timestamp where a
        series has both a float and a histogram sample, the histogram is returned."""
        ...


@dataclass(frozen=True)
class RollupCoverage:
    """Rollups of resolution ``res_ms`` hold every bucket ending in ``(from_ms, until_ms]`` (both
    multiples of ``res_ms``) for every series, except the series' dirty blocks, for which
    ``select_rollups`` answers None."""

    res_ms: int
    from_ms: int
    until_ms: int


@dataclass
class RollupData:
    """Rollup buckets (``model.rollups``) of ``n`` series in label order: series ``i`` holds
    ``buckets[offsets[i]:offsets[i+1]]``, ascending by end."""

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    buckets: Buckets


@runtime_checkable
class RollupReader(Protocol):
    """A ``SeriesSelector`` that also has rollups (``docs/storage.md`` "Rollups"). Optional: the
    engine reads raw samples from selectors without it (the memory store has none)."""

    def rollup_coverage(self) -> Sequence[RollupCoverage]:
        """What each resolution covers now (no entry for a resolution without finalised buckets)."""
        ...

    def select_rollups(self, matchers: Sequence[Matcher], res_ms: int, start_ms: int,
                       end_ms: int) -> RollupData | None:
        """Buckets ending in ``(start_ms, end_ms]`` of the series matching all matchers, or None when
        they cannot stand for the raw samples there (a selected series has a dirty block or native
        histograms in the range, or the coverage changed during the read): read raw data then."""
        ...


@runtime_checkable
class BatchedSeriesSelector(SeriesSelector, Protocol):
    """A ``SeriesSelector`` that can also read a selection in batches of series (a reader that
    consumes series independently then holds one batch at a time, not the selection)."""

    def select_batches(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                       max_batch_samples: int) -> list[Callable[[], SeriesData]]:
        """What ``select(matchers, start_ms, end_ms)`` returns, as batches to read one after the
        other: each call reads one batch (under the caller's ``read_limits``); the series of the
        batches, concatenated in list order, are the select's series in its order. A batch holds
        at most ``max_batch_samples`` samples, or a single series. An empty list when nothing
        matches."""
        ...


class MetricsStore(Protocol):
    def append(self, tenant: str, batch: SampleBatch) -> concurrent.futures.Future[AppendResult]:
        """Queues the batch for the writer. The future resolves after commit.

        Raises Overloaded at once when the queue is full, StoreClosed when shut down."""
        ...

    def select(self, tenant: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        ...

    def querier(self, tenant: str) -> SeriesSelector:
        ...

    def series(self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int,
               limit: int | None = None) -> list[Labels]:
        """Label sets of series matching any of the matcher sets (each set ANDed) with samples in
        the range. An empty ``matcher_sets`` means all series."""
        ...

    def label_names(self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int,
                    end_ms: int, limit: int | None = None) -> list[str]:
        ...

    def label_values(self, tenant: str, name: str, matcher_sets: Sequence[Sequence[Matcher]],
                     start_ms: int, end_ms: int, limit: int | None = None) -> list[str]:
        ...

    def metadata(self, tenant: str, metric: str | None = None, limit: int | None = None,
                 limit_per_metric: int | None = None) -> dict[str, list[MetricMetadata]]:
        ...

    def stats(self) -> StoreStats:
        ...

    def flush(self) -> None:
        """Checkpoints: compacts the write-ahead log into the columnar file."""
        ...

    def apply_retention(self, now_ms: int) -> int:
        """Deletes samples older than the retention; returns how many were deleted."""
        ...

    def delete_series(
        self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> int:
        """Deletes the samples in [start_ms, end_ms] (inclusive) of the tenant's series matching any
        of the matcher sets (each set ANDed; an empty ``matcher_sets`` deletes nothing), as
        Prometheus' admin ``delete_series``; returns how many samples were deleted.

        Afterwards no read returns them (``select``, ``series``, label names and values: a series
        left without samples is gone). Ordered with ``append``: a batch acknowledged before the call
        is deleted in the range, one appended after it returns is kept; durable when it returns."""
        ...

    def close(self) -> None:
        """Commits everything queued, then closes. Idempotent."""
        ...
