"""Histogram functions over classic (``le``-labelled) bucket series, vectorized over all
histograms and steps.

Buckets are grouped by their labels without ``le`` (the metric name included, as Prometheus 3
does with delayed name removal). Per (histogram, step) the present buckets are sorted by upper
bound, equal bounds are merged, and Prometheus' ``BucketQuantile`` / ``BucketFraction`` run on
the result. Native histograms are not supported by the engine yet, so ``histogram_count`` and
the other native-only functions return empty vectors.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

from clearsight.model.labels import Labels, get, with_label, without
from clearsight.query.promql.fn_common import (
    F64,
    I64,
    arg_scalar,
    arg_string,
    arg_vector,
    drop_all,
    format_openmetrics_float,
    go_format_g,
    metric_name_of,
    parse_go_float,
    vector_result,
)
from clearsight.query.promql.fn_labels import merge_same_labelset
from clearsight.query.promql.fn_range import invalid_quantile_warning
from clearsight.query.promql.values import BoolArr, FuncContext, Value, VectorSteps

SMALL_DELTA_TOLERANCE = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308

MONOTONICITY_INFO = (
    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
    "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
)


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def bad_bucket_label_warning(metric: str, value: str) -> str:
    msg = f'PromQL warning: bucket label "le" is missing or has a malformed value of {_go_quote(value)}'
    return f"{msg} for metric name {_go_quote(metric)}" if metric else msg


@dataclass
class ClassicHistograms:
    """``G`` histograms x ``B`` bucket slots x ``k`` steps, compacted per (histogram, step):
    slot ``b < nvalid[g, j]`` holds the ``b``-th present bucket in ascending bound order."""

    labels: list[Labels]  # (G,) labels without ``le``
    upper: F64  # (G, B, k)
    count: F64  # (G, B, k)
    nvalid: I64  # (G, k)
    step_ts: I64  # (k,)


def group_buckets(ctx: FuncContext, v: VectorSteps) -> ClassicHistograms:
    k = v.values.shape[1]
    group_of: dict[Labels, int] = {}
    bounds: list[dict[float, int]] = []
    members: list[tuple[int, int, float]] = []  # (series, group, upper bound)
    for i, lbls in enumerate(v.labels):
        if not v.present[i].any():
            continue
        le = get(lbls, "le")
        try:
            ub = parse_go_float(le)
        except ValueError:
            ctx.annotations.warn(bad_bucket_label_warning(metric_name_of(lbls), le))
            continue
        key = without(lbls, ("le",))
        g = group_of.setdefault(key, len(group_of))
        if g == len(bounds):
            bounds.append({})
        bounds[g].setdefault(ub, 0)
        members.append((i, g, ub))
    n_groups = len(group_of)
    if n_groups == 0:
        z = np.zeros((0, 0, k))
        return ClassicHistograms([], z, z, np.zeros((0, k), dtype=np.int64), np.asarray(ctx.step_times))
    width = max(len(b) for b in bounds)
    upper_static = np.full((n_groups, width), np.inf)
    for g, bs in enumerate(bounds):
        ordered = sorted(bs)
        for pos, ub in enumerate(ordered):
            bs[ub] = pos
        upper_static[g, : len(ordered)] = ordered
    rows = np.fromiter((m[0] for m in members), dtype=np.int64, count=len(members))
    gidx = np.fromiter((m[1] for m in members), dtype=np.int64, count=len(members))
    bidx = np.fromiter((bounds[m[1]][m[2]] for m in members), dtype=np.int64, count=len(members))
    count = np.zeros((n_groups, width, k))
    present = np.zeros((n_groups, width, k), dtype=bool)
    pres = v.present[rows]
    contrib = np.where(pres, v.values[rows], 0.0)
    slots = gidx * width + bidx
    sorted_slots = np.sort(slots)  # (np.unique is very slow on integer arrays with numpy 2.4)
    if not bool(np.any(sorted_slots[1:] == sorted_slots[:-1])):
        count[gidx, bidx] = contrib
        present[gidx, bidx] = pres
    else:  # several series with the same bound (e.g. le="0.2" and le="2e-1"): merged by sum
        np.add.at(count, (gidx, bidx), contrib)
        np.logical_or.at(present, (gidx, bidx), pres)
    nvalid = present.sum(axis=1).astype(np.int64)
    if (nvalid == width).all():
        upper = np.broadcast_to(upper_static[:, :, None], count.shape)
    else:
        # Compact: present buckets first, keeping the ascending bound order.
        perm = np.argsort(~present, axis=1, kind="stable")
        upper = np.take_along_axis(np.broadcast_to(upper_static[:, :, None], count.shape), perm, axis=1)
        count = np.take_along_axis(count, perm, axis=1)
    labels = list(group_of)
    return ClassicHistograms(labels, upper, count, nvalid, np.asarray(ctx.step_times, dtype=np.int64))


def _almost_equal(a: F64, b: F64, eps: float) -> BoolArr:
    """Prometheus' ``util/almost.Equal`` (stale markers never reach functions)."""
    with np.errstate(all="ignore"):
        both_nan = np.isnan(a) & np.isnan(b)
        abs_sum = np.abs(a) + np.abs(b)
        diff = np.abs(a - b)
        tiny = (a == 0) | (b == 0) | (abs_sum < _MIN_NORMAL)
        rel = diff / np.minimum(abs_sum, np.finfo(np.float64).max)
        res: BoolArr = both_nan | (a == b) | np.where(tiny, diff < eps * _MIN_NORMAL, rel < eps)
    return res


@dataclass
class _Monotonicity:
    forced: BoolArr  # (G, k)
    min_bucket: F64
    max_bucket: F64
    max_diff: F64


def _ensure_monotonic(h: ClassicHistograms) -> tuple[F64, _Monotonicity]:
    count = h.count.copy()
    g_n, width, k = count.shape
    forced = np.zeros((g_n, k), dtype=bool)
    min_b = np.full((g_n, k), np.inf)
    max_b = np.full((g_n, k), -np.inf)
    max_diff = np.zeros((g_n, k))
    if width == 0:
        return count, _Monotonicity(forced, min_b, max_b, max_diff)
    prev = count[:, 0, :].copy()
    with np.errstate(all="ignore"):
        for p in range(1, width):
            active = p < h.nvalid
            curr = count[:, p, :].copy()
            same = curr == prev
            near = ~same & _almost_equal(prev, curr, SMALL_DELTA_TOLERANCE)
            lower = ~same & ~near & (curr < prev)
            fix = active & (near | lower)
            count[:, p, :] = np.where(fix, prev, curr)
            lw = active & lower
            ub = h.upper[:, p, :]
            forced |= lw
            min_b = np.where(lw & (ub < min_b), ub, min_b)
            max_b = np.where(lw & (ub > max_b), ub, max_b)
            d = prev - curr
            max_diff = np.where(lw & (d > max_diff), d, max_diff)
            advance = active & ~same & ~near & ~lower
            prev = np.where(advance, curr, prev)
    return count, _Monotonicity(forced, min_b, max_b, max_diff)


def bucket_quantile(q: F64, h: ClassicHistograms) -> tuple[F64, _Monotonicity]:
    """Prometheus' ``BucketQuantile`` for every histogram and step; ``q`` has shape (k,)."""
    g_n, width, k = h.count.shape
    count, mono = _ensure_monotonic(h)
    res = np.full((g_n, k), np.nan)
    nv = h.nvalid
    if g_n == 0 or width == 0:
        return res, mono
    gi, ji = np.meshgrid(np.arange(g_n), np.arange(k), indexing="ij")
    last = np.maximum(nv - 1, 0)
    last_ub = h.upper[gi, last, ji]
    ok = (nv >= 2) & np.isposinf(last_ub)
    obs = count[gi, last, ji]
    qq = np.broadcast_to(q[None, :], (g_n, k))
    with np.errstate(all="ignore"):
        ok &= obs != 0
        rank = qq * obs
        # first bucket b in [0, nvalid-1) whose count >= rank, else nvalid-1
        b = last.copy()
        found = np.zeros((g_n, k), dtype=bool)
        for p in range(width - 1):
            hit = ~found & (p < nv - 1) & (count[:, p, :] >= rank)
            b = np.where(hit, p, b)
            found |= hit
        ub_b = h.upper[gi, b, ji]
        c_b = count[gi, b, ji]
        prev_i = np.maximum(b - 1, 0)
        start = np.where(b > 0, h.upper[gi, prev_i, ji], 0.0)
        c_prev = np.where(b > 0, count[gi, prev_i, ji], 0.0)
        interp = start + (ub_b - start) * ((rank - c_prev) / (c_b - c_prev))
        second_last = h.upper[gi, np.maximum(nv - 2, 0), ji]
        val = np.where(b == nv - 1, second_last, np.where((b == 0) & (h.upper[:, 0, :] <= 0), h.upper[:, 0, :], interp))
        res = np.where(ok, val, np.nan)
    has = nv > 0
    res = np.where(has & np.isnan(qq), np.nan, res)
    res = np.where(has & (qq < 0), -np.inf, res)
    res = np.where(has & (qq > 1), np.inf, res)
    # Prometheus returns before the monotonicity fix for q out of range.
    valid_q = ~np.isnan(qq) & (qq >= 0) & (qq <= 1)
    mono.forced &= valid_q & np.isposinf(last_ub) & has
    return res, mono


def _monotonicity_annotations(ctx: FuncContext, h: ClassicHistograms, monos: list[_Monotonicity]) -> None:
    """One info per metric name, merged over histograms, steps and quantiles like Prometheus'
    ``histogramQuantileForcedMonotonicityErr.Merge``."""
    by_name: dict[str, list[tuple[int, int, int]]] = {}
    for mi, mono in enumerate(monos):
        for g, j in zip(*np.nonzero(mono.forced), strict=True):
            by_name.setdefault(metric_name_of(h.labels[g]), []).append((mi, int(g), int(j)))
    for name, hits in by_name.items():
        min_b = min(float(monos[mi].min_bucket[g, j]) for mi, g, j in hits)
        max_b = max(float(monos[mi].max_bucket[g, j]) for mi, g, j in hits)
        max_d = max(float(monos[mi].max_diff[g, j]) for mi, g, j in hits)
        ts = h.step_ts[np.asarray([j for _, _, j in hits])]
        base = MONOTONICITY_INFO + (f" for metric name {_go_quote(name)}" if name else "")
        ctx.annotations.info(
            f"{base}, from buckets {go_format_g(min_b)} to {go_format_g(max_b)}, with a max diff of "
            f"{go_format_g(max_d, 2)}, over {len(hits)} samples from {_rfc3339(int(ts.min()))} "
            f"to {_rfc3339(int(ts.max()))}"
        )


def _rfc3339(ms: int) -> str:
    secs = ms // 1000 if ms >= 0 else -((-ms) // 1000)
    t = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=secs)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _warn_quantiles(ctx: FuncContext, q: F64) -> None:
    for x in sorted({go_format_g(float(x)) for x in q if not (0 <= x <= 1)}):
        ctx.annotations.warn(invalid_quantile_warning(float(x)))


def fn_histogram_quantile(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 1, "histogram_quantile")
    k = v.values.shape[1]
    q = arg_scalar(args, 0, "histogram_quantile", k)
    _warn_quantiles(ctx, q)
    h = group_buckets(ctx, v)
    res, mono = bucket_quantile(q, h)
    _monotonicity_annotations(ctx, h, [mono])
    return vector_result(h.labels, res, h.nvalid > 0, drop_all(len(h.labels)))


def fn_histogram_quantiles(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "histogram_quantiles")
    k = v.values.shape[1]
    label = arg_string(args, 1, "histogram_quantiles")
    qs = [arg_scalar(args, i, "histogram_quantiles", k) for i in range(2, len(args))]
    for q in qs:
        _warn_quantiles(ctx, q)
    h = group_buckets(ctx, v)
    labels: list[Labels] = []
    vals: list[F64] = []
    present: list[BoolArr] = []
    monos: list[_Monotonicity] = []
    has = h.nvalid > 0
    for q in qs:
        res, mono = bucket_quantile(q, h)
        monos.append(mono)
        # One output series per histogram and distinct quantile text (q may vary per step).
        texts = [format_openmetrics_float(float(x)) for x in q]
        for qtext in dict.fromkeys(texts):
            at = np.asarray([t == qtext for t in texts], dtype=bool)
            labels.extend(with_label(lbls, label, qtext) for lbls in h.labels)
            vals.append(res)
            present.append(has & at[None, :])
    _monotonicity_annotations(ctx, h, monos)
    if not labels:
        return VectorSteps.empty(k)
    out = vector_result(labels, np.vstack(vals), np.vstack(present), drop_all(len(labels)))
    # Identical labels (a repeated quantile, or a quantile label overwriting a distinguishing
    # label) are an error where they share a step, as in Prometheus.
    return merge_same_labelset(list(out.labels), out, drop_all(out.num_series))


def bucket_fraction(lower: F64, upper: F64, h: ClassicHistograms) -> F64:
    """Prometheus' ``BucketFraction`` for every histogram and step (``lower``/``upper`` (k,))."""
    g_n, width, k = h.count.shape
    res = np.full((g_n, k), np.nan)
    if g_n == 0 or width == 0:
        return res
    nv = h.nvalid
    gi, ji = np.meshgrid(np.arange(g_n), np.arange(k), indexing="ij")
    last = np.maximum(nv - 1, 0)
    total = h.count[gi, last, ji]
    lo = np.broadcast_to(lower[None, :], (g_n, k))
    hi = np.broadcast_to(upper[None, :], (g_n, k))
    valid = (nv > 0) & np.isposinf(h.upper[gi, last, ji])
    with np.errstate(all="ignore"):
        nan_res = valid & ((total == 0) | np.isnan(lo) | np.isnan(hi))
        zero_res = valid & ~nan_res & (lo >= hi)
        rank = np.zeros((g_n, k))
        lower_rank = np.zeros((g_n, k))
        upper_rank = np.zeros((g_n, k))
        lower_set = np.zeros((g_n, k), dtype=bool)
        upper_set = np.zeros((g_n, k), dtype=bool)
        done = ~valid | nan_res | zero_res
        lower_bound = np.where(h.upper[:, 0, :] <= 0, -np.inf, 0.0)
        for p in range(width):
            act = ~done & (p < nv)
            if not act.any():
                break
            if p > 0:
                lower_bound = h.upper[:, p - 1, :]
            ub = h.upper[:, p, :]
            bc = h.count[:, p, :]

            def interp(x: F64, lb: F64 = lower_bound, ub: F64 = ub, bc: F64 = bc, rk: F64 = rank) -> F64:
                lin = rk + (bc - rk) * (x - lb) / (ub - lb)
                out: F64 = np.where(np.isneginf(lb), bc, lin)
                return out

            s1 = act & ~lower_set & (lower_bound >= lo)
            lower_rank = np.where(s1, rank, lower_rank)
            lower_set |= s1
            s2 = act & ~upper_set & (lower_bound >= hi)
            upper_rank = np.where(s2, rank, upper_rank)
            upper_set |= s2
            act &= ~(lower_set & upper_set)
            s3 = act & ~lower_set & (lower_bound < lo) & (ub > lo)
            lower_rank = np.where(s3, interp(lo), lower_rank)
            lower_set |= s3
            s4 = act & ~upper_set & (lower_bound < hi) & (ub > hi)
            upper_rank = np.where(s4, interp(hi), upper_rank)
            upper_set |= s4
            act &= ~(lower_set & upper_set)
            done |= ~act & (p < nv)
            rank = np.where(act, bc, rank)
        lower_rank = np.where(~lower_set | (lower_rank > total), total, lower_rank)
        upper_rank = np.where(~upper_set | (upper_rank > total), total, upper_rank)
        frac = (upper_rank - lower_rank) / total
    res = np.where(valid, frac, np.nan)
    res = np.where(nan_res, np.nan, res)
    res = np.where(zero_res, 0.0, res)
    return res


def fn_histogram_fraction(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 2, "histogram_fraction")
    k = v.values.shape[1]
    lower = arg_scalar(args, 0, "histogram_fraction", k)
    upper = arg_scalar(args, 1, "histogram_fraction", k)
    h = group_buckets(ctx, v)
    res = bucket_fraction(lower, upper, h)
    return vector_result(h.labels, res, h.nvalid > 0, drop_all(len(h.labels)))


def fn_native_only(ctx: FuncContext, args: list[Value]) -> Value:
    """histogram_count/sum/avg/stddev/stdvar only read native histograms: float samples are
    skipped, so with float-only data the result is empty."""
    v = arg_vector(args, 0, "histogram function")
    return VectorSteps.empty(v.values.shape[1])
