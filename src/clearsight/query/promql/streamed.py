"""Streamed aggregation: ``agg(sel)`` and ``agg(fn(sel[r]))`` folded batch of series by batch.

The materialised evaluation of ``sum by (job) (rate(x[5m]))`` holds every sample of every matched
series at once. Here, when the store can read a selection in batches
(``store.interface.BatchedSeriesSelector``), the operand of the aggregation is evaluated once per
batch of series (at most ``Evaluator.stream_batch_samples`` estimated samples each) and its rows are
folded into the aggregation's running state (``agg_fold.GroupFold``): the query holds one batch, its
operand rows and the state (groups x steps), whatever the selection's size.

Shapes that stream (everything else is evaluated as before, materialised):

- the op is ``sum``, ``avg``, ``count``, ``group``, ``min`` or ``max`` (with or without ``by``/``without``);
- the operand is a vector selector, or one of ``PER_SERIES_RANGE_FUNCTIONS`` applied to a range
  selector (each output row depends on its own series only), possibly in parentheses.

Results are bit-identical to the materialised path: the batches are the select's series in its
order, the operand of a batch is the matching rows of the whole operand, and the fold performs the
same floating-point operations per group in the same order. A batch with native histograms makes
the aggregation fall back to the materialised path (its annotations and statistics reset first).
A selection that fits in one batch is evaluated exactly as before.

Limits: ``max_samples`` counts what is held at once: the batch's samples (the store refuses a
batch over the query's remaining budget, ``SampleLimitExceeded``, reported by name), the operand's
rows and the fold state, reserved before each batch's rows are folded. ``max_series`` counts the
series of all batches together, as one select would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from clearsight.model.matchers import Matcher
from clearsight.model.samples import SeriesData
from clearsight.query.budget import too_many_series
from clearsight.query.promql import fn_range, rollup_plan
from clearsight.query.promql.agg_fold import FOLDABLE, GroupFold, Refold
from clearsight.query.promql.ast import AggregateExpr, Call, Expr, MatrixSelector, ParenExpr, VectorSelector
from clearsight.query.promql.values import I64, Annotations, QueryError, Value, VectorSteps
from clearsight.store.interface import BatchedSeriesSelector, RollupReader

if TYPE_CHECKING:
    from clearsight.query.promql.engine import Evaluator

# Range functions whose output row for a series depends on that series' samples only.
# Not ``stddev_over_time``/``stdvar_over_time``: they choose between replaying windows and padded
# sums over all series' windows together, and the padded sums depend on the widest window, so a
# batch's answer can differ in the last bits (up to 9.5e-13 relative measured, 300 series); nor
# ``deriv`` without the compiled regression (the numpy path also decides over all windows).
PER_SERIES_RANGE_FUNCTIONS = frozenset({
    "rate", "increase", "delta", "irate", "idelta", "changes", "resets",
    "avg_over_time", "sum_over_time", "min_over_time", "max_over_time", "count_over_time",
    "last_over_time", "present_over_time",
}) | (frozenset({"deriv"}) if fn_range.has_compiled_kernels() else frozenset())

# Samples per batch by default (~16 bytes each while decoded and selected: ~16 MiB).
DEFAULT_BATCH_SAMPLES = 1_000_000


def _unparen(e: Expr) -> Expr:
    while isinstance(e, ParenExpr):
        e = e.expr
    return e


def streamable(e: AggregateExpr) -> bool:
    """Whether the aggregation has a shape that is folded batch by batch."""
    if e.op not in FOLDABLE or e.param is not None:
        return False
    inner = _unparen(e.expr)
    if isinstance(inner, VectorSelector):
        return True
    return (isinstance(inner, Call) and inner.func in PER_SERIES_RANGE_FUNCTIONS and len(inner.args) == 1
            and isinstance(inner.args[0], MatrixSelector))


def _rollups_may_answer(ev: Evaluator, e: AggregateExpr, ts: I64) -> bool:
    """Whether rollups would answer some steps of the operand (``rollup_plan.py``): it is then
    evaluated materialised, where the rollups are read (they hold a few buckets per series)."""
    inner = _unparen(e.expr)
    if not (isinstance(inner, Call) and inner.func in rollup_plan.FUNCTIONS
            and getattr(ev.selector, "rollup_coverage", None) is not None):
        return False
    sel = cast(RollupReader, ev.selector)
    m = inner.args[0]
    if not isinstance(m, MatrixSelector) or m.anchored or m.smoothed:
        return False
    coverage = sorted(((c.res_ms, c.from_ms, c.until_ms) for c in sel.rollup_coverage()), reverse=True)
    if not coverage or ts.shape[0] == 0:
        return False
    rng = ev.duration_ms(m.range)
    return rng > 0 and bool(rollup_plan.plan(coverage, ev.effective_times(m.vector.offset, m.vector.at, ts), rng).any())


class _Materialise(Exception):
    """A batch the fold cannot take (native histograms): evaluate the aggregation materialised."""


class _Feed:
    """The selector the operand is evaluated against: its first select plans the batches, and each
    evaluation of the operand reads the next one."""

    def __init__(self, inner: BatchedSeriesSelector, batch_samples: int, max_series: int) -> None:
        self.inner = inner
        self.batch_samples = batch_samples
        self.max_series = max_series
        self.parts: list[Callable[[], SeriesData]] | None = None
        self.key: tuple[tuple[Matcher, ...], int, int] | None = None
        self.next = 0
        self.series = 0

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        key = (tuple(matchers), start_ms, end_ms)
        if self.parts is None:
            self.key = key
            self.parts = self.inner.select_batches(matchers, start_ms, end_ms, self.batch_samples)
        elif key != self.key:
            raise QueryError("streamed aggregation: the operand selected different series per batch")
        if self.next >= len(self.parts):
            return SeriesData.empty()
        data = self.parts[self.next]()
        self.next += 1
        self.series += len(data)
        if self.series > self.max_series:
            raise too_many_series(self.series, self.max_series)
        return data


def aggregate(ev: Evaluator, e: AggregateExpr, ts: I64) -> tuple[VectorSteps | None, Value | None]:
    """``(result, None)`` when the aggregation was folded batch by batch; ``(None, operand)`` when
    the selection was one batch (the operand evaluated as usual, for the caller to aggregate);
    ``(None, None)`` when the shape does not stream (the caller evaluates everything)."""
    if ev.stream_batch_samples <= 0 or not streamable(e):
        return None, None
    if getattr(ev.selector, "select_batches", None) is None or _rollups_may_answer(ev, e, ts):
        return None, None  # (getattr: isinstance of a runtime protocol costs microseconds)
    selector = cast(BatchedSeriesSelector, ev.selector)
    mode = "auto"
    while True:
        ann = (list(ev.annotations.warnings), list(ev.annotations.infos))
        stats = (ev.stats.series_fetched, ev.stats.samples_loaded, ev.stats.queryable_samples)
        mark = ev.budget.held
        feed = _Feed(selector, ev.stream_batch_samples, ev.limits.max_series)
        ev.selector = feed
        try:
            v = ev.eval(e.expr, ts)
            if feed.parts is None or len(feed.parts) <= 1:
                return None, v
            return _fold(ev, e, ts, feed, v, GroupFold(e.op, list(e.grouping), e.without, int(ts.shape[0]), mode),
                         mark), None
        except (Refold, _Materialise) as exc:
            ev.budget.held = mark
            ev.annotations.warnings[:], ev.annotations.infos[:] = ann
            ev.stats.series_fetched, ev.stats.samples_loaded, ev.stats.queryable_samples = stats
            if not isinstance(exc, Refold):
                return None, None
            mode = exc.mode
        finally:
            ev.selector = selector


def _drop_repeated(ann: Annotations, before: tuple[int, int]) -> None:
    """Drops the annotations a batch added that an earlier batch already added (with its position
    appended, so ``Annotations.warn`` did not recognise them): one evaluation adds each once."""
    for lst, n in ((ann.warnings, before[0]), (ann.infos, before[1])):
        seen = set(lst[:n])
        fresh = [m for m in lst[n:] if m not in seen]
        lst[n:] = list(dict.fromkeys(fresh))


def _fold(ev: Evaluator, e: AggregateExpr, ts: I64, feed: _Feed, first: Value, fold: GroupFold,
          mark: int) -> VectorSteps:
    """Folds the operand of every batch (``first``: the first batch's, evaluated) into ``fold``;
    ``mark``: what the query held before the first batch."""
    budget = ev.budget
    v: Value | None = first
    assert feed.parts is not None
    for _ in range(len(feed.parts)):
        if v is None:
            before = (len(ev.annotations.warnings), len(ev.annotations.infos))
            v = ev.eval(e.expr, ts)
            _drop_repeated(ev.annotations, before)
        if not isinstance(v, VectorSteps):
            raise QueryError(f"expected instant vector in aggregation {e.op}")
        if v.has_hist():
            raise _Materialise
        fold.add(v)
        v = None
        budget.held = mark  # the batch and its operand rows are released; the state stays held
        budget.reserve(fold.state_points(), f"the running state of {e.op}")
        budget.check("streamed aggregation")
    return fold.result()


__all__ = ["DEFAULT_BATCH_SAMPLES", "PER_SERIES_RANGE_FUNCTIONS", "aggregate", "streamable"]
