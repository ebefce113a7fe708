"""PromQL binary operators on samples that may be histograms (Prometheus' ``vectorElemBinop``).

:func:`binop` covers every operand combination involving a histogram; float-float stays in the
engine's vectorized path. The result says whether the sample is kept (comparisons filter;
incompatible combinations drop the sample with :attr:`Note.INCOMPATIBLE_TYPES_BINOP`) and which
annotations apply. Mixing exponential and custom buckets in ``+``/``-`` raises
:class:`~clearsight.model.histogram.IncompatibleSchemaError` (Prometheus fails the query with
that message).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.histogram_math import trim_buckets
from clearsight.model.histogram_range import Note

ARITHMETIC = frozenset({"+", "-", "*", "/", "^", "%", "atan2"})
COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})
TRIM = frozenset({"</", ">/"})


@dataclass(slots=True)
class BinopResult:
    keep: bool
    value: float = 0.0
    histogram: FloatHistogram | None = None
    notes: set[Note] = field(default_factory=set)


def _incompatible() -> BinopResult:
    return BinopResult(False, notes={Note.INCOMPATIBLE_TYPES_BINOP})


def binop(
    op: str,
    lhs: float,
    lhs_h: FloatHistogram | None,
    rhs: float,
    rhs_h: FloatHistogram | None,
) -> BinopResult:
    """``lhs op rhs`` where at least one side is a histogram (``*_h`` not None).

    Comparisons between histograms (``==``, ``!=``) keep the left histogram when the condition
    holds (``bool`` modifier aside, which Prometheus refuses for histograms at parse time).
    """
    if op not in ARITHMETIC | COMPARISON | TRIM:
        raise ValueError(f"operator {op!r} not allowed for operations between vectors")
    if lhs_h is None and rhs_h is None:
        raise ValueError("binop needs at least one histogram operand")
    if lhs_h is None:
        assert rhs_h is not None
        if op == "*":
            return BinopResult(True, histogram=rhs_h.mul(lhs).compact())
        return _incompatible()
    if rhs_h is None:
        if op == "*":
            return BinopResult(True, histogram=lhs_h.mul(rhs).compact())
        if op == "/":
            return BinopResult(True, histogram=lhs_h.div(rhs).compact())
        if op == "</":
            return BinopResult(True, histogram=trim_buckets(lhs_h, rhs, True))
        if op == ">/":
            return BinopResult(True, histogram=trim_buckets(lhs_h, rhs, False))
        return _incompatible()
    if op == "+":
        r = lhs_h.add(rhs_h)
        notes = set()
        if r.counter_reset_collision:
            notes.add(Note.COUNTER_RESET_COLLISION_ADD)
        if r.nhcb_bounds_reconciled:
            notes.add(Note.NHCB_RECONCILED_ADD)
        return BinopResult(True, histogram=r.histogram.compact(), notes=notes)
    if op == "-":
        r = lhs_h.sub(rhs_h)
        notes = set()
        if r.counter_reset_collision:
            notes.add(Note.COUNTER_RESET_COLLISION_SUB)
        if r.nhcb_bounds_reconciled:
            notes.add(Note.NHCB_RECONCILED_SUB)
        return BinopResult(
            True, histogram=r.histogram.with_hint(CounterResetHint.GAUGE).compact(), notes=notes
        )
    if op == "==":
        return BinopResult(lhs_h.equals(rhs_h), histogram=lhs_h)
    if op == "!=":
        return BinopResult(not lhs_h.equals(rhs_h), histogram=lhs_h)
    return _incompatible()
