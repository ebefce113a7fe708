"""The log store contract. Every log backend (embedded DuckDB, external engines later) implements it.

Units and bounds:
- tenant: a non-empty org id string; every read and write is scoped to exactly one tenant.
- timestamps: int64 **nanoseconds** since the Unix epoch; ``start_ns`` and ``end_ns`` are inclusive.
  A store may refuse timestamps it cannot place (the embedded store: before 1970) with
  ``InvalidBatch``; time windows relative to the clock (too old, too far in the future) are the
  pipeline's business (``pipeline/log_ingestor.py``).
- streams: canonical ``model.labels.Labels`` (sorted, unique names, no empty values), matched by
  ``model.matchers.Matcher`` with Prometheus semantics (an absent label equals "").
- line filters (``LineFilter``): applied in order, all must hold. ``|=`` contains the substring,
  ``!=`` does not, ``|~`` matches the RE2 regular expression anywhere in the line (unanchored, as
  Loki), ``!~`` does not. An empty ``|=`` pattern matches every line.
- reads return a ``model.logs.LogBatch`` whose entries are ordered by timestamp (``forward``:
  oldest first, ``backward``: newest first), at most ``limit`` of them (1 <= limit); entries with
  the same timestamp keep their write order (reversed for ``backward``).

Durability: ``append`` returns a future that resolves only after the batch is committed to disk
(a ``kill -9`` after that loses nothing). A batch is all-or-nothing: when the future resolves with
an exception nothing of the batch was written. Log entries are never deduplicated by the store:
two identical writes are two entries.

Retention: ``apply_retention(now_ns)`` removes whole time partitions whose every entry is older
than ``now_ns - retention``; entries younger than that are always kept (a backend may keep older
ones until their whole partition expires). It returns how many entries it removed.

Thread-safety: all methods may be called from any thread. Reads see every committed write.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels
from clearsight.model.logs import LogBatch
from clearsight.model.matchers import Matcher

Direction = Literal["forward", "backward"]
LineOp = Literal["|=", "!=", "|~", "!~"]
LINE_OPS: tuple[LineOp, ...] = ("|=", "!=", "|~", "!~")


@dataclass(frozen=True)
class LineFilter:
    """One line filter: ``op`` one of ``LINE_OPS``, ``pattern`` a substring or an RE2 regex."""

    op: LineOp
    pattern: str


@dataclass(frozen=True)
class JsonFieldTest:
    """One condition on a top-level field of a JSON-object body, for ``BodyPrefilter``: a number
    comparison (``op`` in ``== != > >= < <=``, ``value`` a float's text) or a string matcher (``op``
    in ``= != =~ !~``, regexes anchored, an absent field is ""). A line passes the test when its
    structured metadata has an attribute named ``field``, or the field is present and is not of the
    compared kind (a number that is not a number, a string that is not a string), or the comparison
    holds."""

    field: str
    op: str
    value: str
    numeric: bool


@dataclass(frozen=True)
class BodyPrefilter:
    """Lines a ``| json`` pipeline would drop anyway, which the store may skip: with
    ``require_object``, lines whose body is not a JSON object; and JSON-object lines failing every
    conjunction of ``any_of`` (an OR of ANDs of ``JsonFieldTest``; empty: no field condition). A
    prefilter only narrows what the pipeline then checks line by line: it never decides alone."""

    require_object: bool = False
    any_of: tuple[tuple[JsonFieldTest, ...], ...] = ()


@dataclass
class LogSizes:
    """Entries without their bodies (what ``count_over_time``/``bytes_over_time`` need): entry ``j``
    is in stream ``streams[stream_idx[j]]`` at ``timestamps[j]`` with a body of ``sizes[j]`` UTF-8
    bytes; ordered by timestamp (oldest first)."""

    streams: list[Labels]
    stream_idx: npt.NDArray[np.int32]
    timestamps: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]


@dataclass
class LogAppendResult:
    entries_written: int = 0
    streams_created: int = 0
    bytes_written: int = 0  # UTF-8 bytes of the bodies


@dataclass
class LogStoreStats:
    streams: dict[str, int] = field(default_factory=dict)  # per tenant
    entries_written_total: int = 0
    bytes_written_total: int = 0
    partitions: int = 0
    bytes_on_disk: int = 0
    queue_depth: int = 0
    commits_total: int = 0
    commit_seconds_sum: float = 0.0
    entries_removed_total: int = 0  # by retention
    writer_alive: bool = True


class LogStore(Protocol):
    def append(self, tenant: str, batch: LogBatch) -> concurrent.futures.Future[LogAppendResult]:
        """Queues the batch for the writer; the future resolves after commit. Raises
        ``store.interface.Overloaded`` at once when the queue is full, ``StoreClosed`` when shut
        down; the future fails with ``LimitExceeded`` (e.g. too many streams for the tenant) or
        ``InvalidBatch`` (nothing written)."""
        ...

    def select(self, tenant: str, matchers: Sequence[Matcher], start_ns: int, end_ns: int,
               line_filters: Sequence[LineFilter] = (), limit: int = 100,
               direction: Direction = "backward", prefilter: BodyPrefilter | None = None) -> LogBatch:
        """Entries of streams matching all ``matchers`` with ``start_ns <= ts <= end_ns`` that pass
        every line filter (and ``prefilter``, when given), ordered by ``direction``, at most
        ``limit``. A bad regex raises ``ValueError`` naming it."""
        ...

    def select_sizes(self, tenant: str, matchers: Sequence[Matcher], start_ns: int, end_ns: int,
                     line_filters: Sequence[LineFilter] = (), limit: int = 1_000_000) -> LogSizes:
        """Like ``select`` (forward) but only each entry's stream, timestamp and body size; raises
        ``LimitExceeded`` when more than ``limit`` entries match."""
        ...

    def series(self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ns: int,
               end_ns: int, limit: int | None = None) -> list[Labels]:
        """Stream label sets matching any matcher set (each ANDed) with entries in the range, sorted.
        An empty ``matcher_sets`` means all streams. "Entries in the range" may be approximate, as
        in Loki: a stream whose first..last timestamp overlaps the range is listed (the embedded
        store keeps each stream's first and last timestamp in memory). Same for the label reads."""
        ...

    def label_names(self, tenant: str, start_ns: int, end_ns: int,
                    matchers: Sequence[Matcher] = ()) -> list[str]:
        """Sorted names of stream labels of streams (matching ``matchers``) with entries in range."""
        ...

    def label_values(self, tenant: str, name: str, start_ns: int, end_ns: int,
                     matchers: Sequence[Matcher] = ()) -> list[str]:
        """Sorted values of one stream label, over streams with entries in the range."""
        ...

    def stats(self) -> LogStoreStats:
        ...

    def flush(self) -> None:
        """Checkpoints the write-ahead log into the database file."""
        ...

    def apply_retention(self, now_ns: int) -> int:
        ...

    def close(self) -> None:
        """Commits everything queued, then closes. Idempotent."""
        ...
