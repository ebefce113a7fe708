"""What one query may spend while it runs: points held in memory, wall time, and whether it was
canceled.

A ``QueryBudget`` is created per query and checked by the engine as it evaluates:

- **Memory, counted in points** (one float sample, one (series x step) cell of an intermediate
  result, one subquery output point). ``held`` is what the query holds right now: samples loaded
  from the store, the operands a node is still holding, the node's output. Every node *reserves*
  the points it is about to create before creating them (``reserve``), so the limit is enforced
  before the memory is spent, and the error names the limit as Prometheus does ("query processing
  would load too many samples into memory in query execution"). When a node returns, its operands
  are released and only its output stays held (``settle``).
- **Time and cancellation**: ``check`` raises ``QueryTimeout`` past the deadline and
  ``QueryCanceled`` once the cancel event is set (the client went away). The engine calls it
  at every node (a store read follows its node's check, microseconds later; parentheses and
  number literals, which compute nothing in between, are not checked on their own), after every
  store read, after a node's operands are evaluated, and every few iterations of its loops;
  code deep in a function kernel reaches the running query's budget through ``checkpoint()``
  (a thread-local: a query runs on one worker thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from clearsight.query.promql.values import QueryError, QueryLimitExceeded, QueryTimeout
from clearsight.query.write_priority import query_thread

TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"


class QueryCanceled(QueryError):
    """The caller canceled the query (e.g. the HTTP client went away)."""


class QueryBudget:
    """Per-query limits and accounting. Not thread-safe: a query is evaluated by one thread; only
    ``cancel`` (a ``threading.Event``) is set from elsewhere."""

    def __init__(self, max_samples: int, deadline: float, cancel: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_samples = max_samples
        self.deadline = deadline
        self.cancel = cancel
        self.clock = clock
        self.held = 0
        self.peak = 0
        self.checks = 0  # how many times check() ran (observable by tests and stats)
        self.stopped_by: str | None = None  # "timeout" | "canceled" once check() raised

    # ---- time and cancellation ----

    def check(self, where: str = "expression evaluation") -> None:
        self.checks += 1
        priority = query_thread.priority  # pause_for_writes(), without its call (every node checks)
        if priority is not None:
            priority.pause(query_thread)
        cancel = self.cancel
        if cancel is not None and cancel.is_set():
            self.stopped_by = "canceled"
            raise QueryCanceled(f"query was canceled in {where}")
        if self.clock() > self.deadline:
            self.stopped_by = "timeout"
            raise QueryTimeout(f"query timed out in {where}")

    def remaining(self) -> float:
        return self.deadline - self.clock()

    # ---- memory ----

    def _limit_error(self, n: int, what: str) -> QueryLimitExceeded:
        return QueryLimitExceeded(
            f"{TOO_MANY_SAMPLES} (limit query.max_samples={self.max_samples:,}: {what} would need "
            f"{n:,} points while {self.held:,} are held)")

    def reserve(self, n: int, what: str) -> None:
        """Accounts ``n`` points the caller is about to create, or raises before they exist."""
        if n <= 0:
            return
        if self.held + n > self.max_samples:
            raise self._limit_error(n, what)
        self.held += n
        self.peak = max(self.peak, self.held)

    def settle(self, mark: int, n: int, what: str) -> None:
        """A node returned: what it held beyond ``mark`` (its operands, its reservations) is released
        and its output of ``n`` points stays held."""
        self.held = mark
        if mark + n > self.max_samples:
            raise self._limit_error(n, what)
        self.held = mark + n
        self.peak = max(self.peak, self.held)

    def settle_node(self, mark: int, n: int, node: object) -> None:
        """``settle`` for the output of an expression node, named by its type (the message is
        formatted only when the limit is hit: this runs at every node)."""
        held = mark + n
        if held > self.max_samples:
            self.held = mark
            raise self._limit_error(n, f"the result of {type(node).__name__}")
        self.held = held
        if held > self.peak:
            self.peak = held


def too_many_series(n: int, limit: int) -> QueryLimitExceeded:
    """The error of a selector whose series exceed ``max_series`` (named as the limit)."""
    return QueryLimitExceeded(f"query selects {n} series, more than the limit max_series={limit}")


_current = threading.local()


class running:
    """Makes ``budget`` the current thread's query budget (for ``checkpoint``) while evaluating.
    A class rather than a ``@contextmanager`` generator: entered once per query, small ones too."""

    __slots__ = ("budget", "prev")

    def __init__(self, budget: QueryBudget) -> None:
        self.budget = budget
        self.prev: QueryBudget | None = None

    def __enter__(self) -> QueryBudget:
        self.prev = getattr(_current, "budget", None)
        _current.budget = self.budget
        return self.budget

    def __exit__(self, *exc: object) -> None:
        _current.budget = self.prev


def reserve_current(n: int, what: str) -> None:
    """``QueryBudget.reserve`` on the query running on this thread, if any: for code deep in an
    operator that learns its output size only as it computes (count_values)."""
    budget: QueryBudget | None = getattr(_current, "budget", None)
    if budget is not None:
        budget.reserve(n, what)


def checkpoint() -> None:
    """Checks the deadline and cancellation of the query running on this thread, if any. Cheap
    enough for loops that run once per window position or per chunk."""
    budget: QueryBudget | None = getattr(_current, "budget", None)
    if budget is not None:
        budget.check()


__all__ = ["TOO_MANY_SAMPLES", "QueryBudget", "QueryCanceled", "checkpoint", "reserve_current", "running",
           "too_many_series"]
