"""A range function over batches of series, with a checkpoint between batches.

A range function (``rate``, ``avg_over_time``, ...) runs over every series of its argument in one
call: compiled or numpy kernels that hold the GIL from start to end (~100 ms for 500 series x 6 h
beside other queries). A write that arrives meanwhile waits for the switch interval at every GIL
hand-off, and the query thread reaches no checkpoint where it could step aside (writes first,
``query/write_priority.py``). So a function whose output row for a series is computed from that
series' samples alone (``BATCHABLE``) is called once per batch of series of at most
``DEFAULT_BATCH_WORK`` units (a series costs its samples plus one unit per step: the kernels walk
both), with the query's checkpoint (``QueryBudget.check``: deadline, cancellation, the pause for
writes) after every batch, and the batches' outputs are concatenated.

The answer is bit for bit the unbatched one: each batch is the argument's series in their order
(views of the same samples), each output row depends on its own series only, and
``vector_result`` drops the empty rows of every batch as it would of the whole. Annotations:
``rate``/``increase`` compute their non-counter infos from the whole output; the other
batchable functions that annotate (``quantile_over_time``) add one kind of message, sorted, so
the sorted union of the batches' is the whole call's.

Not batched: functions whose implementation decides something over all series together
(``stddev_over_time``/``stdvar_over_time`` choose replay or padded sums over all windows, and the
padded sums depend on the widest window; ``deriv``/``predict_linear`` likewise without the
compiled kernel), functions over histograms or start timestamps (evaluated elsewhere), and an
argument within one batch (called as is).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np

from clearsight.query.promql import fn_range
from clearsight.query.promql.fn_common import Flat
from clearsight.query.promql.values import (
    I64,
    Annotations,
    FuncContext,
    FunctionImpl,
    MatrixSteps,
    Value,
    VectorSteps,
)
from clearsight.query.promql.vecutil import stack

# Work units (samples + series x steps) per batch: 64k, ~0.5 ms of kernel time on one core (in
# process, 500 series x 6 h at 15 s: rate in 23 batches of 22 series).
DEFAULT_BATCH_WORK = 1 << 16

_ALWAYS = frozenset({
    "rate", "increase", "delta", "irate", "idelta", "changes", "resets",
    "avg_over_time", "sum_over_time", "min_over_time", "max_over_time", "count_over_time",
    "last_over_time", "first_over_time", "present_over_time", "quantile_over_time", "mad_over_time",
    "ts_of_last_over_time", "ts_of_first_over_time", "ts_of_max_over_time", "ts_of_min_over_time",
})
# Per series only with the compiled regression (the numpy fallback picks its method over all windows).
_COMPILED = frozenset({"deriv", "predict_linear"})
BATCHABLE = _ALWAYS | (_COMPILED if fn_range.has_compiled_kernels() else frozenset())

# Functions whose annotations are derived from their whole output, recomputed after the batches.
_ANNOTATE_OUTPUT: dict[str, Callable[[FuncContext, VectorSteps], None]] = {
    "rate": fn_range.warn_non_counter,
    "increase": fn_range.warn_non_counter,
}


def batch_bounds(lengths: I64, steps: int, max_work: int) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` of consecutive series of about equal work (``lengths[i] + steps`` each),
    each at most ``max_work`` unless one series alone is more."""
    n = int(lengths.shape[0])
    work = np.cumsum(lengths + steps, dtype=np.int64)
    total = int(work[-1]) if n else 0
    if n < 2 or total <= max_work:
        return [(0, n)]
    nb = -(-total // max_work)
    cuts = np.searchsorted(work, np.arange(1, nb, dtype=np.int64) * (total / nb), side="right")
    edges = [0, *sorted({int(c) for c in cuts if 0 < c < n}), n]
    return list(pairwise(edges))


def _rows(m: MatrixSteps, a: int, b: int, flat: Flat | None) -> MatrixSteps:
    """Series ``[a, b)`` of ``m`` (views: no sample is copied)."""
    sub = MatrixSteps(m.labels[a:b], m.timestamps[a:b], m.values[a:b], m.window_end, m.range_ms,
                      m.anchored, m.smoothed, m.lookback_ms)
    if flat is not None:
        s0, e1 = int(flat.starts[a]), int(flat.ends[b - 1])
        sub.flat_cache = Flat(flat.t[s0:e1], flat.v[s0:e1], flat.starts[a:b] - s0, flat.ends[a:b] - s0)
    return sub


def _contiguous_flat(m: MatrixSteps) -> Flat | None:
    """The argument's concatenated samples when series follow each other in them (the engine's
    selector path), so a batch's are a slice; None otherwise (each batch concatenates its own)."""
    flat = m.flat_cache
    if not isinstance(flat, Flat) or flat.starts.shape[0] != m.num_series:
        return None
    if m.num_series and not (int(flat.starts[0]) == 0 and bool(np.array_equal(flat.starts[1:], flat.ends[:-1]))):
        return None
    return flat


def call(name: str, impl: FunctionImpl, ctx: FuncContext, args: list[Value], check: Callable[[], None],
         max_work: int = DEFAULT_BATCH_WORK) -> Value:
    """``impl(ctx, args)``, over batches of series with ``check()`` after every batch when ``name``
    is batchable and its range vector argument holds float samples only and more than ``max_work``
    units (``max_work`` 0: never batched)."""
    mats = [i for i, a in enumerate(args) if isinstance(a, MatrixSteps)]
    if max_work <= 0 or name not in BATCHABLE or len(mats) != 1:
        return impl(ctx, args)
    m = args[mats[0]]
    assert isinstance(m, MatrixSteps)
    if m.hists is not None or m.sts is not None:
        return impl(ctx, args)
    k = int(m.window_end.shape[0])
    cached = m.flat_cache
    if isinstance(cached, Flat) and cached.size + m.num_series * k <= max_work:
        # one batch (the small queries' case): the concatenated samples hold at least every
        # series' (no per-series work counted)
        return impl(ctx, args)
    flat = _contiguous_flat(m)
    lengths = (flat.ends - flat.starts if flat is not None
               else np.fromiter(map(len, m.timestamps), dtype=np.int64, count=m.num_series))
    bounds = batch_bounds(lengths, k, max_work)
    if len(bounds) == 1:
        return impl(ctx, args)
    parts: list[VectorSteps] = []
    anns = Annotations()
    for a, b in bounds:
        batch_args = list(args)
        batch_args[mats[0]] = _rows(m, a, b, flat)
        bctx = FuncContext(ctx.step_times, ctx.arg_exprs, Annotations(), ctx.lookback_delta_ms)
        out = impl(bctx, batch_args)
        assert isinstance(out, VectorSteps) and out.hist is None and out.sample_ts is None and out.sample_st is None
        parts.append(out)
        for msg in bctx.annotations.warnings:
            anns.warn(msg)
        for msg in bctx.annotations.infos:
            anns.info(msg)
        check()
    result = stack(parts, k)
    if (annotate := _ANNOTATE_OUTPUT.get(name)) is not None:
        annotate(ctx, result)
    else:
        for msg in sorted(anns.warnings):
            ctx.annotations.warn(msg)
        for msg in sorted(anns.infos):
            ctx.annotations.info(msg)
    return result


__all__ = ["BATCHABLE", "DEFAULT_BATCH_WORK", "batch_bounds", "call"]
