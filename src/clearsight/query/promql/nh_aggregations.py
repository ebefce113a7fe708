"""Aggregations over vectors holding native histogram samples (Prometheus' ``aggregation`` and
``aggregationK`` for histograms).

- ``sum``/``avg``: histograms of a group are summed with Kahan compensation (``avg`` divides by
  the count); a group mixing floats and histograms at a step yields nothing and the warning
  "encountered a mix of histograms and floats for aggregation"; conflicting counter reset hints
  warn; exponential mixed with custom buckets drops the group with a warning.
- ``count``/``group`` count histogram samples like floats; ``limitk``/``limit_ratio`` pass them on.
- ``min``/``max``/``stddev``/``stdvar``/``quantile``/``topk``/``bottomk`` ignore them (info
  "ignored histogram in <op> aggregation"); ``count_values`` counts them by their text (handled
  in ``aggregations``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clearsight.model.histogram import CounterResetHint, FloatHistogram, HistogramError, KahanHistogramSum
from clearsight.query.promql import nh_common as nc
from clearsight.query.promql.values import Annotations, ScalarSteps, VectorSteps
from clearsight.query.promql.vecutil import floats_only

AggregateFn = Callable[[str, VectorSteps, ScalarSteps | str | None, list[str], bool, Annotations, bool], VectorSteps]

_IGNORING = frozenset({"min", "max", "stddev", "stdvar", "quantile", "topk", "bottomk"})


def aggregate_with_histograms(op: str, v: VectorSteps, param: ScalarSteps | str | None, grouping: list[str],
                              without: bool, ann: Annotations, instant: bool,
                              float_fn: AggregateFn) -> VectorSteps:
    if op in ("count", "group"):
        return float_fn(op, VectorSteps(v.labels, v.values, v.present, v.drop_name, v.sample_ts, None), param,
                        grouping, without, ann, instant)
    if op in _IGNORING:
        ann.info(nc.ignored_in_aggregation(op))
        return float_fn(op, floats_only(v), param, grouping, without, ann, instant)
    if op in ("limitk", "limit_ratio"):
        out = float_fn(op, VectorSteps(v.labels, v.values, v.present, v.drop_name, v.sample_ts, None), param,
                       grouping, without, ann, instant)
        assert v.hist is not None
        row_of = {lbl: i for i, lbl in enumerate(v.labels)}
        hist = np.full(out.present.shape, None, dtype=object)
        for r, lbl in enumerate(out.labels):
            i = row_of.get(lbl)
            if i is not None:
                hist[r] = np.where(out.present[r], v.hist[i], None)
        return VectorSteps(out.labels, out.values, out.present, out.drop_name, out.sample_ts, hist)
    if op in ("sum", "avg"):
        return _sum_avg(op, v, param, grouping, without, ann, instant, float_fn)
    return float_fn(op, floats_only(v), param, grouping, without, ann, instant)


def _sum_avg(op: str, v: VectorSteps, param: ScalarSteps | str | None, grouping: list[str], without: bool,
             ann: Annotations, instant: bool, float_fn: AggregateFn) -> VectorSteps:
    from clearsight.query.promql.aggregations import group_key

    k = v.values.shape[1]
    keys: dict[tuple[tuple[str, str], ...], int] = {}
    glabels: list[tuple[tuple[str, str], ...]] = []
    gid: list[int] = []
    for lbl in v.labels:
        key = group_key(lbl, grouping, without)
        g = keys.get(key)
        if g is None:
            g = keys[key] = len(glabels)
            glabels.append(key)
        gid.append(g)
    G = len(glabels)
    gid_a = np.asarray(gid, dtype=np.int64)
    hm = v.hist_mask()
    fm = v.present & ~hm
    n_h = np.zeros((G, k), dtype=np.int64)
    n_f = np.zeros((G, k), dtype=np.int64)
    np.add.at(n_h, gid_a, hm.astype(np.int64))
    np.add.at(n_f, gid_a, fm.astype(np.int64))
    fout = float_fn(op, floats_only(v), param, grouping, without, ann, instant)
    out = nc.Out.new(glabels, k)
    out.take_floats(fout, n_h == 0)
    mixed = (n_h > 0) & (n_f > 0)
    if mixed.any():
        ann.warn(nc.MIXED_FLOATS_HISTOGRAMS_AGG)
    hist = v.hist
    assert hist is not None
    for g, j in zip(*np.nonzero((n_h > 0) & (n_f == 0)), strict=True):
        g, j = int(g), int(j)
        rows = np.nonzero((gid_a == g) & hm[:, j])[0]
        hs: list[FloatHistogram] = [hist[int(r), j] for r in rows]
        seen_reset = any(h.counter_reset_hint == CounterResetHint.RESET for h in hs)
        seen_not = any(h.counter_reset_hint == CounterResetHint.NOT_RESET for h in hs)
        reconciled = False
        try:
            if op == "avg":
                res, reconciled = histogram_mean(hs)
            else:
                acc = KahanHistogramSum(hs[0])
                for h in hs[1:]:
                    _, rec = acc.add(h)
                    reconciled |= rec
                res = acc.result()
        except HistogramError:
            ann.warn(nc.mixed_exp_custom(nc.metric_name(v.labels[int(rows[0])])))
            continue
        if reconciled:
            ann.info(nc.mismatched_custom("aggregation"))
        if seen_reset and seen_not:
            ann.warn(nc.counter_reset_collision("aggregation"))
        out.set_hist(g, j, res.compact())
    res_v = out.result(drop_name=False)
    return res_v


def _copy_sum(acc: KahanHistogramSum) -> KahanHistogramSum:
    out = KahanHistogramSum(acc.h)
    out.c_count, out.c_sum, out.c_zero = acc.c_count, acc.c_sum, acc.c_zero
    out.c_pos, out.c_neg = list(acc.c_pos), list(acc.c_neg)
    return out


def _scale_sum(acc: KahanHistogramSum, f: float) -> None:
    """Multiplies the running value and its compensation by ``f`` (in place)."""
    with np.errstate(all="ignore"):
        acc.h = acc.h.mul(f)
        acc.c_count *= f
        acc.c_sum *= f
        acc.c_zero *= f
        acc.c_pos = [c * f for c in acc.c_pos]
        acc.c_neg = [c * f for c in acc.c_neg]


def histogram_mean(hs: list[FloatHistogram]) -> tuple[FloatHistogram, bool]:
    """The average of histograms as Prometheus computes ``avg``/``avg_over_time``: a compensated
    sum divided by the count, switching to an incremental mean once the sum would overflow.
    Returns the mean and whether custom bucket bounds were reconciled; raises ``HistogramError``
    when exponential and custom buckets mix."""
    acc = KahanHistogramSum(hs[0])
    mean: KahanHistogramSum | None = None
    reconciled = False
    count = 1.0
    for h in hs[1:]:
        count += 1.0
        if mean is None:
            trial = _copy_sum(acc)
            _, rec = trial.add(h)
            reconciled |= rec
            if not trial.h.has_overflow():
                acc = trial
                continue
            mean = _copy_sum(acc)
            _scale_sum(mean, 1.0 / (count - 1))
        _scale_sum(mean, (count - 1) / count)
        _, rec = mean.add(h.div(count))
        reconciled |= rec
    if mean is not None:
        return mean.result(), reconciled
    if count == 1.0:
        return acc.result(), reconciled
    div = acc.h.div(count)
    comp = acc.compensation().div(count)
    return div.add(comp).histogram, reconciled
