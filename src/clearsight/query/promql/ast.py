"""PromQL abstract syntax tree.

Produced by ``parser.parse`` and consumed by the engine. Durations are int milliseconds. Where the
query uses a duration *expression* that can only be known at evaluation time (``step()``,
``range()``), the field holds a ``DurationExpr`` instead, which the engine resolves per query.
Constant duration expressions (``[5m*2]``, ``offset (1m+30s)``) are folded by the parser into ints.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from clearsight.model.matchers import Matcher


class ValueType(enum.Enum):
    NONE = "none"
    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"
    STRING = "string"


class Expr:
    """Base class of all expression nodes."""

    @property
    def type(self) -> ValueType:
        raise NotImplementedError


@dataclass
class DurationExpr:
    """A duration computed at evaluation time (``step()``, ``range()``, arithmetic over them).

    ``expr`` evaluates to a number of *seconds*."""

    expr: Expr


Duration = int | DurationExpr  # int = milliseconds


@dataclass
class AtModifier:
    """``@ <ts>``, ``@ start()``, ``@ end()``. ``timestamp_ms`` is set for a literal timestamp."""

    timestamp_ms: int | None = None
    start_or_end: str | None = None  # "start" | "end"


@dataclass
class NumberLiteral(Expr):
    value: float
    # True when written as a duration (``5m`` is the number 300); only affects formatting
    duration: bool = False

    @property
    def type(self) -> ValueType:
        return ValueType.SCALAR


@dataclass
class StringLiteral(Expr):
    value: str

    @property
    def type(self) -> ValueType:
        return ValueType.STRING


@dataclass
class VectorSelector(Expr):
    """``name{matchers} offset X @ T``. ``matchers`` includes the ``__name__`` matcher when a name
    is given. ``offset`` may be negative."""

    name: str | None
    matchers: list[Matcher]
    offset: Duration = 0
    at: AtModifier | None = None
    # experimental ``foo anchored`` / ``foo smoothed`` on an instant selector (a range selector
    # carries them on MatrixSelector instead)
    anchored: bool = False
    smoothed: bool = False

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR


@dataclass
class MatrixSelector(Expr):
    """``vector_selector[range]``, optionally with ``anchored`` / ``smoothed`` (extended range
    selector modifiers of Prometheus 3.x experimental syntax)."""

    vector: VectorSelector
    range: Duration
    anchored: bool = False
    smoothed: bool = False

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX


@dataclass
class SubqueryExpr(Expr):
    """``expr[range:step] offset X @ T``. ``step`` 0 means the engine's default resolution."""

    expr: Expr
    range: Duration
    step: Duration = 0
    offset: Duration = 0
    at: AtModifier | None = None

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX


@dataclass
class ParenExpr(Expr):
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


@dataclass
class UnaryExpr(Expr):
    op: str  # "-" or "+"
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


class Cardinality(enum.Enum):
    ONE_TO_ONE = "one-to-one"
    MANY_TO_ONE = "many-to-one"  # group_left
    ONE_TO_MANY = "one-to-many"  # group_right
    MANY_TO_MANY = "many-to-many"  # set operators


@dataclass
class VectorMatching:
    card: Cardinality = Cardinality.ONE_TO_ONE
    on: bool = False  # True: on(labels); False: ignoring(labels)
    labels: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)  # group_left(include) / group_right(include)
    # fill modifiers (experimental): value used when one side lacks a match
    fill_left: float | None = None
    fill_right: float | None = None


# Binary operators by precedence (lowest first): or; and unless; == != <= < >= >; + -; * / % atan2; ^
COMPARISON_OPS = frozenset({"==", "!=", "<=", "<", ">=", ">"})
SET_OPS = frozenset({"and", "or", "unless"})
ARITHMETIC_OPS = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})


@dataclass
class BinaryExpr(Expr):
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching | None = None  # set when both sides are vectors

    @property
    def type(self) -> ValueType:
        if self.lhs.type is ValueType.SCALAR and self.rhs.type is ValueType.SCALAR:
            return ValueType.SCALAR
        return ValueType.VECTOR


AGGREGATION_OPS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
})


@dataclass
class AggregateExpr(Expr):
    op: str
    expr: Expr
    param: Expr | None = None  # topk/bottomk/quantile/count_values/limitk/limit_ratio
    grouping: list[str] = field(default_factory=list)
    without: bool = False

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR


@dataclass
class Call(Expr):
    func: str
    args: list[Expr]
    return_type: ValueType = ValueType.VECTOR  # set by the parser from the function table

    @property
    def type(self) -> ValueType:
        return self.return_type


@dataclass
class StepInvariantExpr(Expr):
    """Optional wrapper the engine may add for expressions whose value is the same at every step
    (``@`` modifiers, literals). The parser never produces it."""

    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type
