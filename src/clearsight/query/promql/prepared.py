"""Prepared queries: per query text, its parsed expression (with node positions) and what its
evaluations cost, in a bounded LRU.

Dashboards send the same few query texts again and again; parsing one costs about as much as
evaluating a small selector. A bare selector's short-path plan (``bare.py``) is made here too. The engine never modifies an expression tree while evaluating it
(``tests/unit/query/promql/test_prepared.py`` checks this over the conformance queries), so one
parsed tree is shared by every evaluation of its text, also concurrently.

The cost is the thread CPU seconds of recent evaluations (an exponentially weighted mean, so a
query whose data grew is noticed within a few runs), kept per shape of evaluation: instant, or a
range query's number of steps and span (a dashboard refreshes a panel with the same span and step;
zooming out is another shape, with no cost known yet). ``api/prometheus_query.py`` uses it to run
a query that has proven cheap on the event loop instead of handing it to the query pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from clearsight.query.promql.ast import Expr
from clearsight.query.promql.bare import BarePlan, plan_of
from clearsight.query.promql.parser import parse_with_positions

Shape = tuple[int, int]  # (steps, span in ms); an instant query is (1, 0)

# Entries kept (a few hundred dashboard panels' queries fit many times over).
DEFAULT_MAX_ENTRIES = 2048
# Longer query texts are parsed every time (generated queries; their trees are large).
MAX_CACHED_QUERY_CHARS = 4096
# Weight of the newest evaluation in the cost average.
COST_WEIGHT = 0.5
# Evaluation shapes whose cost is kept per query text (the oldest is forgotten first).
MAX_SHAPES = 8
INSTANT: Shape = (1, 0)


def range_shape(start_ms: int, end_ms: int, step_ms: int) -> Shape:
    """The shape of a range query: its number of steps and its span."""
    return (end_ms - start_ms) // step_ms + 1, end_ms - start_ms


@dataclass
class Prepared:
    """A parsed query text, its short-path plan (``bare.plan_of``; False when it has none: the
    engine's ``bare`` argument) and the observed cost of its evaluations, by shape."""

    expr: Expr
    positions: dict[int, int]
    bare: BarePlan | bool = False
    costs: dict[Shape, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def cost(self, shape: Shape) -> float | None:
        """Mean thread CPU seconds of evaluations of this shape; None before the first."""
        return self.costs.get(shape)

    def observe(self, shape: Shape, seconds: float) -> None:
        """Records one evaluation's thread CPU seconds."""
        with self._lock:
            costs = self.costs
            c = costs.get(shape)
            costs[shape] = seconds if c is None else c + COST_WEIGHT * (seconds - c)
            if len(costs) > MAX_SHAPES:
                del costs[next(iter(costs))]


class PreparedQueries:
    """Bounded LRU of ``Prepared`` by query text. Thread-safe. ``prepare`` raises the parser's
    ``ParseError`` for a bad query (bad queries are not cached)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max(0, max_entries)
        self._entries: OrderedDict[str, Prepared] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def prepare(self, query: str) -> Prepared:
        with self._lock:
            found = self._entries.get(query)
            if found is not None:
                self._entries.move_to_end(query)
                self.hits += 1
                return found
            self.misses += 1
        expr, positions = parse_with_positions(query)
        prepared = Prepared(expr, positions, plan_of(expr) or False)
        if self.max_entries and len(query) <= MAX_CACHED_QUERY_CHARS:
            with self._lock:
                prepared = self._entries.setdefault(query, prepared)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return prepared


__all__ = ["INSTANT", "MAX_CACHED_QUERY_CHARS", "Prepared", "PreparedQueries", "Shape", "range_shape"]
