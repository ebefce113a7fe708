"""The LogQL syntax tree (what ``parser.parse_expr`` produces and ``evaluator`` runs).

Times are int nanoseconds. A log query is a ``LogSelector`` (stream matchers + pipeline stages);
a metric query is built from ``RangeAggregation`` (over a log selector, optionally unwrapped),
``VectorAggregation``, ``BinaryOp``, ``NumberLiteral``, ``VectorLiteral`` and ``LabelReplace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from clearsight.model.matchers import Matcher
from clearsight.query.promql.ast import VectorMatching

LineFilterOp = Literal["|=", "!=", "|~", "!~", "|>", "!>"]
ValueKind = Literal["string", "number", "duration", "bytes", "ip"]


@dataclass(frozen=True)
class LineFilterStage:
    """``|= "a" or "b"``: ``op`` applied to any of ``patterns`` (positive ops: any matches;
    negative ops: none matches, as Loki reads ``!= "a" or "b"``)."""

    op: LineFilterOp
    patterns: tuple[str, ...]
    ip: bool = False  # ``|= ip("10.0.0.0/8")``: the pattern is an address, CIDR prefix or range


@dataclass(frozen=True)
class JsonStage:
    params: tuple[tuple[str, str], ...] = ()  # (label, expression) pairs; empty = every field


@dataclass(frozen=True)
class LogfmtStage:
    params: tuple[tuple[str, str], ...] = ()
    strict: bool = False
    keep_empty: bool = False


@dataclass(frozen=True)
class RegexpStage:
    pattern: str


@dataclass(frozen=True)
class PatternStage:
    pattern: str


@dataclass(frozen=True)
class UnpackStage:
    pass


@dataclass(frozen=True)
class DecolorizeStage:
    pass


@dataclass(frozen=True)
class LabelCompare:
    """``name op value``: ``kind`` says how both sides are compared (a string, a float, a Go
    duration in seconds, a byte count)."""

    name: str
    op: str  # = != =~ !~ for strings; == = != > >= < <= for the others
    kind: ValueKind
    text: str  # the literal as written (strings: the value)
    number: float = 0.0  # numeric kinds: the literal's value
    matcher: Matcher | None = field(default=None, compare=False)  # strings: the compiled matcher


@dataclass(frozen=True)
class LabelAnd:
    left: LabelExpr
    right: LabelExpr


@dataclass(frozen=True)
class LabelOr:
    left: LabelExpr
    right: LabelExpr


LabelExpr = LabelCompare | LabelAnd | LabelOr


@dataclass(frozen=True)
class LabelFilterStage:
    expr: LabelExpr


@dataclass(frozen=True)
class LineFormatStage:
    template: str


@dataclass(frozen=True)
class LabelFormatItem:
    dst: str
    src: str | None = None  # ``dst=src``: rename
    template: str | None = None  # ``dst="{{...}}"``


@dataclass(frozen=True)
class LabelFormatStage:
    items: tuple[LabelFormatItem, ...]


@dataclass(frozen=True)
class DropKeepItem:
    name: str
    matcher: Matcher | None = None  # ``name="value"``: only when the value matches


@dataclass(frozen=True)
class DropStage:
    items: tuple[DropKeepItem, ...]


@dataclass(frozen=True)
class KeepStage:
    items: tuple[DropKeepItem, ...]


Stage = (LineFilterStage | JsonStage | LogfmtStage | RegexpStage | PatternStage | UnpackStage | DecolorizeStage
         | LabelFilterStage | LineFormatStage | LabelFormatStage | DropStage | KeepStage)


@dataclass(frozen=True)
class Unwrap:
    """``| unwrap [conv(]label[)]`` followed by optional label filters (``| __error__=""``)."""

    label: str
    conversion: Literal["", "duration", "duration_seconds", "bytes"] = ""
    post_filters: tuple[LabelFilterStage, ...] = ()


@dataclass(frozen=True)
class LogSelector:
    matchers: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()


class MetricExpr:
    """Base of metric expression nodes."""


@dataclass(frozen=True)
class Grouping:
    labels: tuple[str, ...]
    without: bool = False


@dataclass(frozen=True)
class RangeAggregation(MetricExpr):
    op: str
    selector: LogSelector
    range_ns: int
    offset_ns: int = 0
    unwrap: Unwrap | None = None
    param: float | None = None  # quantile_over_time's quantile
    grouping: Grouping | None = None


@dataclass(frozen=True)
class VectorAggregation(MetricExpr):
    op: str
    expr: MetricExpr
    param: float | None = None  # topk/bottomk k
    grouping: Grouping | None = None


@dataclass(frozen=True)
class BinaryOp(MetricExpr):
    op: str
    lhs: MetricExpr
    rhs: MetricExpr
    return_bool: bool = False
    matching: VectorMatching | None = field(default=None, compare=False)


@dataclass(frozen=True)
class NumberLiteral(MetricExpr):
    value: float


@dataclass(frozen=True)
class VectorLiteral(MetricExpr):
    value: float


@dataclass(frozen=True)
class LabelReplace(MetricExpr):
    expr: MetricExpr
    dst: str
    replacement: str
    src: str
    regex: str


Expr = LogSelector | MetricExpr

RANGE_OPS = frozenset({"count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time",
                       "sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "first_over_time",
                       "last_over_time", "stdvar_over_time", "stddev_over_time", "quantile_over_time",
                       "rate_counter"})
# Range aggregations over log lines (no unwrap) and over unwrapped values.
LINE_RANGE_OPS = frozenset({"count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"})
UNWRAP_RANGE_OPS = frozenset({"sum_over_time", "avg_over_time", "min_over_time", "max_over_time",
                              "first_over_time", "last_over_time", "stdvar_over_time", "stddev_over_time",
                              "quantile_over_time", "rate", "rate_counter", "absent_over_time"})
VECTOR_OPS = frozenset({"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "sort",
                        "sort_desc"})
