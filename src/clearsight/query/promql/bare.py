"""Bare selectors: the queries the engine answers by a short path (``engine._bare_result``).

A dashboard's small queries are often a plain selector (``up``, ``node_load1{instance="a"}``,
with ``offset``/``@`` or not) or one range function over a range selector
(``max_over_time(x[1h])``). The general evaluator answers them through its node dispatch, the
function call's argument handling and the result's general assembly; for a query of a few series
those steps cost about as much as the store's read. ``plan_of`` recognises such an expression once
per query text (``prepared.Prepared.bare``) and keeps what its evaluation needs; the engine then
goes from the store's read to the result rows directly, with the same limits, checkpoints and
statistics, and hands anything it does not cover (native histograms, sample start times, counting
queryable samples, steps a rollup could answer, a function the engine was built without) to the
general evaluator.

Covered: a ``VectorSelector`` without ``anchored``/``smoothed`` whose offset is a number, and a
``Call`` of one of ``fn_range``'s compiled ``*_over_time`` functions (``OVER_TIME_OPS``: the
kernel ``_overtime.over_time`` computes them) whose only argument is such a selector's range form
with a positive number range and neither ``anchored`` nor ``smoothed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearsight.model.matchers import Matcher
from clearsight.query.promql.ast import AtModifier, Call, Expr, MatrixSelector, VectorSelector

# The range functions the short path evaluates: those the compiled ``_overtime.over_time`` computes
# (name -> its operation's name there, whether the output keeps the metric name); fn_range's table.
OVER_TIME_OPS: dict[str, tuple[str, bool]] = {
    "count_over_time": ("COUNT", False),
    "present_over_time": ("PRESENT", False),
    "last_over_time": ("LAST", True),
    "first_over_time": ("FIRST", True),
    "ts_of_last_over_time": ("TS_LAST", False),
    "ts_of_first_over_time": ("TS_FIRST", False),
    "max_over_time": ("MAX", False),
    "min_over_time": ("MIN", False),
    "sum_over_time": ("SUM", False),
    "avg_over_time": ("AVG", False),
    "changes": ("CHANGES", False),
    "resets": ("RESETS", False),
    "ts_of_max_over_time": ("TS_MAX", False),
    "ts_of_min_over_time": ("TS_MIN", False),
}


@dataclass(frozen=True, slots=True)
class BarePlan:
    """What the short path needs of a bare expression. ``vector`` is the selector (of the range
    selector for a function); ``call``/``matrix`` are set for a range function (``op`` names its
    kernel operation, ``keep_name`` whether its output keeps the metric name)."""

    vector: VectorSelector
    matchers: tuple[Matcher, ...]
    offset_ms: int
    at: AtModifier | None
    call: Call | None = None
    matrix: MatrixSelector | None = None
    range_ms: int = 0
    op: str = ""
    keep_name: bool = True

    @property
    def plain(self) -> bool:
        """Neither ``offset`` nor ``@``: the steps are the selector's times as they are."""
        return self.at is None and self.offset_ms == 0


def _offset(vs: VectorSelector) -> int | None:
    """The selector's offset in ms when the short path takes the selector, else None."""
    at, off = vs.at, vs.offset
    if (not isinstance(off, int) or vs.anchored or vs.smoothed
            or not (at is None or at.timestamp_ms is not None or at.start_or_end in ("start", "end"))):
        return None
    return off


def plan_of(expr: Expr) -> BarePlan | None:
    """The short path's plan of ``expr``, or None when the general evaluator must answer it."""
    kind = type(expr)
    if kind is VectorSelector:
        assert isinstance(expr, VectorSelector)
        off = _offset(expr)
        return None if off is None else BarePlan(expr, tuple(expr.matchers), off, expr.at)
    if kind is not Call:
        return None
    assert isinstance(expr, Call)
    ops = OVER_TIME_OPS.get(expr.func)
    if ops is None or len(expr.args) != 1 or type(expr.args[0]) is not MatrixSelector:
        return None
    m = expr.args[0]
    assert isinstance(m, MatrixSelector)
    vs = m.vector
    rng = m.range
    if m.anchored or m.smoothed or not isinstance(rng, int) or rng <= 0 or type(vs) is not VectorSelector:
        return None
    off = _offset(vs)
    return None if off is None else BarePlan(vs, tuple(vs.matchers), off, vs.at, expr, m, rng, ops[0], ops[1])


__all__ = ["OVER_TIME_OPS", "BarePlan", "plan_of"]
