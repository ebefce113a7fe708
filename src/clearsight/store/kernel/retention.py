"""Time-partitioned retention, shared by every embedded store (storage kernel).

A store keeps a table of time-ordered rows as one DuckDB table per *period* (one UTC day by
default), named ``<base>_YYYYMMDD`` (or ``<base>_YYYYMMDD_HHMMSS`` for periods that are not whole
days). Retention then runs ``DROP TABLE`` on whole partitions instead of a ``DELETE`` over one big
table: a drop frees the partition's blocks for reuse at once and costs the same whatever it held.

What this module owns (the store owns its rows, the DDL of a partition and what "a row's time" is):

- ``PartitionScheme(base, period_ms, unit)``: which partition a timestamp belongs to
  (``start_of``/``keys``; partitions start at multiples of the period since the epoch, UTC), the
  table name of a partition and its inverse (``parse``), ``create`` on demand (idempotent, inside
  the caller's transaction) and ``list`` (the partitions that exist, oldest first).
  ``unit`` is the timestamps' units per millisecond: 1 for milliseconds (metrics), 1_000_000 for
  nanoseconds (logs, spans). Names are computed from the partition's start in UTC.
- ``expired(parts, cutoff)``: the partitions whose whole span ends at or before ``cutoff``
  (``end <= cutoff``): every row a store places by a timestamp inside its partition is older
  than the cutoff, so the drop removes nothing a retention of ``cutoff`` should keep. The partition
  holding the cutoff stays, so up to one period of expired rows stays on disk (a store hides them
  from reads with its own floor).
- ``over_size(parts, sizes, limit, fixed)``: the oldest partitions to drop so that ``fixed`` (the
  bytes the store counts outside the partitions) plus the partitions kept fit in ``limit``; the
  newest partition is never chosen (the store would lose its current data for a bound it cannot
  meet anyway). How a partition's bytes are measured is the store's choice (documented by it).
- ``drop(con, parts, also)``: ``DROP TABLE`` of each partition and of the companion tables
  ``also(part)`` names, inside the caller's transaction (a crash leaves all or none dropped).
- ``union_sql(parts, columns, empty)``: one relation over several partitions (``UNION ALL``),
  ``empty`` (a typed, rowless ``SELECT``) when there are none.
- ``RetentionCounters``: partitions dropped and bytes dropped, for ``/metrics``.

Contract tests: ``tests/unit/store/kernel/test_retention.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

DAY_MS = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, order=True)
class Partition:
    """One partition: rows with ``start <= t < end`` (the store's time unit), table ``name``."""

    start: int
    end: int
    name: str


class PartitionScheme:
    """Tables ``<base>_<start>`` holding the rows whose timestamp falls in one period."""

    def __init__(self, base: str, period_ms: int = DAY_MS, unit: int = 1) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", base):
            raise ValueError(f"partition base name {base!r}: lower-case letters, digits and '_' only")
        if period_ms < 1000 or period_ms % 1000:
            raise ValueError("partition period must be a whole number of seconds, at least 1 s")
        if unit <= 0:
            raise ValueError("unit must be positive")
        self.base = base
        self.period_ms = period_ms
        self.unit = unit
        self.period = period_ms * unit  # in the store's time unit
        self._daily = period_ms % DAY_MS == 0
        digits = r"(\d{8})" if self._daily else r"(\d{8})_(\d{6})"
        self._pattern = re.compile(re.escape(base) + "_" + digits)

    def start_of(self, ts: int) -> int:
        """The start of the partition holding ``ts``."""
        return ts // self.period * self.period

    def keys(self, ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``start_of`` of every timestamp."""
        out: npt.NDArray[np.int64] = (np.asarray(ts, dtype=np.int64) // self.period) * self.period
        return out

    def of(self, ts: int) -> Partition:
        start = self.start_of(ts)
        return Partition(start, start + self.period, self.name(start))

    def name(self, start: int) -> str:
        """The table name of the partition starting at ``start``."""
        t = _EPOCH + dt.timedelta(milliseconds=start // self.unit)
        suffix = f"{t.year:04d}{t.month:02d}{t.day:02d}"
        if not self._daily:
            suffix += f"_{t.hour:02d}{t.minute:02d}{t.second:02d}"
        return f"{self.base}_{suffix}"

    def parse(self, name: str) -> Partition | None:
        """The partition a table name denotes, None when it is not one of this scheme (another
        base, another period's format, or a start that is not a multiple of the period)."""
        m = self._pattern.fullmatch(name)
        if m is None:
            return None
        try:
            t = dt.datetime.strptime("".join(m.groups()), "%Y%m%d" if self._daily else "%Y%m%d%H%M%S")
        except ValueError:
            return None
        start = (t.replace(tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1) * self.unit
        if start % self.period:
            return None
        return Partition(start, start + self.period, name)

    def list(self, con: duckdb.DuckDBPyConnection) -> list[Partition]:
        """The partitions that exist (as seen by ``con``'s transaction), oldest first."""
        rows = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND starts_with(table_name, ?)",
            [self.base + "_"],
        ).fetchall()
        return sorted(p for p in (self.parse(str(n)) for (n,) in rows) if p is not None)

    def create(self, con: duckdb.DuckDBPyConnection, part: Partition, ddl: str) -> None:
        """Creates the partition's table unless it exists: ``ddl`` is its column list, e.g.
        ``"(ts BIGINT NOT NULL, v DOUBLE)"``."""
        con.execute(f"CREATE TABLE IF NOT EXISTS {part.name} {ddl}")


def expired(parts: Iterable[Partition], cutoff: int) -> list[Partition]:
    """The partitions whose whole span is older than ``cutoff`` (``end <= cutoff``), oldest first."""
    return sorted(p for p in parts if p.end <= cutoff)


def over_size(parts: Sequence[Partition], sizes: dict[str, int], limit: int, fixed: int = 0) -> list[Partition]:
    """The oldest partitions to drop so that ``fixed`` plus the bytes of the partitions kept is at
    most ``limit`` (``sizes`` by partition name; missing ones count 0). The newest partition is
    never dropped; ``limit <= 0`` means unbounded (nothing to drop)."""
    if limit <= 0 or not parts:
        return []
    ordered = sorted(parts)
    total = fixed + sum(sizes.get(p.name, 0) for p in ordered)
    out: list[Partition] = []
    for p in ordered[:-1]:
        if total <= limit:
            break
        out.append(p)
        total -= sizes.get(p.name, 0)
    return out


def drop(
    con: duckdb.DuckDBPyConnection, parts: Iterable[Partition], also: Callable[[Partition], Iterable[str]] | None = None
) -> None:
    """``DROP TABLE`` of each partition and of its companion tables (``also``), in the caller's
    transaction."""
    for p in parts:
        for name in [p.name, *(also(p) if also is not None else ())]:
            con.execute(f"DROP TABLE IF EXISTS {name}")


def union_sql(parts: Iterable[Partition], columns: str, empty: str) -> str:
    """A parenthesised relation of ``columns`` over the partitions (``UNION ALL``); ``empty``, a
    typed ``SELECT`` returning no row with the same columns, when there are none."""
    selects = [f"SELECT {columns} FROM {p.name}" for p in parts]
    return "(" + (" UNION ALL ".join(selects) if selects else empty) + ")"


@dataclass
class RetentionCounters:
    """What retention dropped since the store opened (``/metrics``)."""

    partitions_dropped_total: int = 0
    bytes_dropped_total: int = 0

    def add(self, parts: Sequence[Partition], sizes: dict[str, int]) -> None:
        self.partitions_dropped_total += len(parts)
        self.bytes_dropped_total += sum(sizes.get(p.name, 0) for p in parts)
