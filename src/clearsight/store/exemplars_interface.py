"""The exemplar store contract (Prometheus' exemplar storage).

Units and bounds:
- tenant: a non-empty org id; every read and write is scoped to exactly one tenant.
- ``Exemplar.series``: the canonical labels of the series the exemplar belongs to (sorted, unique
  names, no empty values; the store canonicalizes what decoders give it). Timestamps are int64
  milliseconds; ``start_ms``/``end_ms`` are inclusive.
- Capacity: a store keeps at most its configured number of exemplars across all tenants and
  series, oldest first out (like Prometheus' circular exemplar buffer).
- Per series, exemplars are kept in timestamp order: one older than (or as old as, with other
  contents) the newest exemplar of its series is refused as out of order; an exact repeat of the
  newest is ignored as a duplicate. Neither fails the write: they are counted.

Durability: ``append`` returns after the exemplars are handed to the operating system (they
survive a ``kill -9`` of the process; ``close`` syncs them to disk).

Thread-safety: all methods may be called from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from clearsight.model.exemplars import Exemplar
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher


@dataclass
class ExemplarAppendResult:
    appended: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    invalid: int = 0


class ExemplarStore(Protocol):
    def append(self, tenant: str, exemplars: Sequence[Exemplar]) -> ExemplarAppendResult: ...

    def select(
        self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> list[tuple[Labels, list[Exemplar]]]:
        """Series matching any of the matcher sets that have exemplars in [start_ms, end_ms], each
        with those exemplars oldest first; series sorted by labels."""
        ...

    def close(self) -> None: ...
