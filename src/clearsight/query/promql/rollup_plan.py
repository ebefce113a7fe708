"""When a range function is answered from rollups instead of raw samples (docs/storage.md "Rollups").

The rule, per evaluation step of a call ``f(selector[range])``:

- ``f`` is one of ``fn_rollup.FUNCTIONS`` (rate, increase, delta, count/sum/avg/min/max/last/
  first/present_over_time) with a plain range selector as its only argument (no subquery, no
  ``anchored``/``smoothed``); the selector reads from a store with rollups (``RollupReader``);
- for a resolution ``res`` (1 h tried first, then 5 m): ``range`` is a whole multiple of ``res``,
  the step's effective time ``t`` (after ``offset`` and ``@``) is a multiple of ``res``, and the
  window ``(t - range, t]`` lies inside the resolution's coverage ``(from, until]``; and *every*
  step whose window lies inside the coverage is on that grid (a 15 s step over ``[5m]`` is on it
  one step in 20: those few would cost a rollup read on top of the raw read the others need, so
  such a query reads raw data only);
- the store then answers the buckets, unless a selected series has native histograms or a block
  still dirty in the range (a late write or deletion not yet rolled up again): raw data then.

Steps that pass are answered from the coarsest resolution that allows them, the others from raw
samples (one raw read for those steps only: a 30-day range reads raw data only for the recent
steps the rollups do not cover yet), and the results are merged per series.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import numpy as np

from clearsight.query.promql import fn_rollup
from clearsight.query.promql.ast import Call, MatrixSelector
from clearsight.query.promql.fn_common import I64
from clearsight.query.promql.values import FuncContext, Value, VectorSteps
from clearsight.query.promql.vecutil import hist_full, merge_rows, stack
from clearsight.store.interface import RollupReader

if TYPE_CHECKING:
    from clearsight.query.promql.engine import Evaluator

FUNCTIONS = fn_rollup.FUNCTIONS


def plan(coverage: list[tuple[int, int, int]], eff: I64, range_ms: int) -> I64:
    """Per step: the resolution (ms) that answers it, 0 for raw samples. ``coverage`` holds
    (res, from, until) per resolution, coarsest first."""
    out = np.zeros(eff.shape[0], dtype=np.int64)
    for res, lo, hi in coverage:
        if range_ms < res or range_ms % res:
            continue
        inside = (out == 0) & (eff - range_ms >= lo) & (eff <= hi)
        if not bool((eff[inside] % res == 0).all()):
            # Steps off the resolution's grid inside the coverage (a 15 s step over [5m]): one raw
            # read answers them all anyway, so a rollup read for the few aligned ones is extra work.
            continue
        out[inside] = res
    return out


def resolutions(selector: object, range_ms: Callable[[], int]) -> list[tuple[int, int, int]]:
    """The rollup coverage a range of ``range_ms()`` ms can use, as (res, from, until), coarsest
    first: [] when ``selector`` is not a ``RollupReader``, has no coverage or none that divides the
    range (``range_ms`` is asked only when there is coverage)."""
    covered = getattr(selector, "rollup_coverage", None)  # a RollupReader's (isinstance is slow)
    if covered is None:
        return []
    cov = covered()
    if not cov:
        return []
    rng = range_ms()
    return sorted(((c.res_ms, c.from_ms, c.until_ms) for c in cov if rng >= c.res_ms and rng % c.res_ms == 0),
                  reverse=True)


def answers_at(coverage: list[tuple[int, int, int]], range_ms: int, t: int) -> bool:
    """Whether some resolution of ``coverage`` answers the window ``(t - range_ms, t]``."""
    return any(t % res == 0 and lo <= t - range_ms and t <= hi for res, lo, hi in coverage)


def evaluate(ev: Evaluator, e: Call, ts: I64) -> Value | None:
    """``e`` at ``ts`` with the steps the rule allows answered from rollups; None when no step is
    (the caller evaluates it from raw samples as usual)."""
    # Cheap rejections first: this runs for every call of these functions (small queries too).
    m = e.args[0] if len(e.args) == 1 else None
    if not isinstance(m, MatrixSelector) or m.anchored or m.smoothed or ts.shape[0] == 0:
        return None
    if getattr(ev.selector, "rollup_coverage", None) is None:  # not a RollupReader (isinstance is slow)
        return None
    sel = cast(RollupReader, ev.selector)
    vs = m.vector
    coverage = resolutions(sel, lambda: ev.duration_ms(m.range))
    if not coverage:
        return None
    rng = ev.duration_ms(m.range)
    if ts.shape[0] == 1:
        t = (ev.at_time(vs.at) if vs.at is not None else int(ts[0])) - ev.duration_ms(vs.offset)
        if not answers_at(coverage, rng, t):
            return None
    eff = ev.effective_times(vs.offset, vs.at, ts)
    use = plan(coverage, eff, rng)
    if not bool(use.any()):
        return None
    k = int(ts.shape[0])
    ctx = FuncContext(step_times=ts, arg_exprs=list(e.args), annotations=ev.annotations,
                      lookback_delta_ms=ev.lookback)
    parts: list[VectorSteps] = []
    for res in np.unique(use[use > 0]).tolist():
        idx = np.flatnonzero(use == res)
        ev.budget.check()
        data = sel.select_rollups(vs.matchers, res, int(eff[idx].min()) - rng, int(eff[idx].max()))
        if data is None:
            use[idx] = 0  # from raw samples after all
            continue
        ev.stats.series_fetched += len(data.labels)
        ev._account(len(data.buckets), "rollup buckets")
        out, queryable = fn_rollup.evaluate(ctx, e.func, data, eff[idx], rng)
        if ev.count_samples:
            ev.stats.queryable_samples += queryable
        parts.append(_widen(out, idx, k))
    raw = np.flatnonzero(use == 0)
    if raw.size:
        out_raw = ev.call_raw(e, ts[raw])
        if not isinstance(out_raw, VectorSteps):
            return None  # pragma: no cover - these functions always return vectors
        parts.append(_widen(out_raw, raw, k))
    return merge_rows(stack(parts, k), strict=False)


def _widen(v: VectorSteps, idx: I64, k: int) -> VectorSteps:
    """``v`` (columns for the steps ``idx``) as columns of all ``k`` steps (absent elsewhere)."""
    n = v.num_series
    vals = np.full((n, k), np.nan)
    present = np.zeros((n, k), dtype=bool)
    vals[:, idx] = v.values
    present[:, idx] = v.present
    hist = None
    if v.hist is not None:
        hist = hist_full(n, k)
        hist[:, idx] = v.hist
    return VectorSteps(v.labels, vals, present, v.drop_name, hist=hist)
