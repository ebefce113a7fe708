"""Aggregation operators over step-vectorized vectors.

Groups are computed once per query (labels do not change between steps). Running aggregates
(Kahan sum, incremental mean, Welford variance, min/max) are updated one *rank* at a time: rank r
holds the r-th member of every group, so a Python loop runs max(group size) times, each iteration
a numpy update over (groups x steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from clearsight.model.labels import Labels
from clearsight.query.budget import checkpoint, reserve_current
from clearsight.query.promql import agg_fold
from clearsight.query.promql.agg_fold import (
    LANES,
    SCALAR_SUM_MAX_ROWS,
    Count,
    MinMax,
    SumAvg,
    group_key,
    group_keys,
    ranks,
)
from clearsight.query.promql.values import (
    F64,
    I64,
    Annotations,
    BoolArr,
    QueryError,
    ScalarSteps,
    VectorSteps,
)
from clearsight.query.promql.vecutil import format_float, go_quote

MIN_INT64 = -9223372036854775808.0
MAX_INT64 = 9223372036854774784.0


def _groups(labels: list[Labels], grouping: list[str], without: bool) -> tuple[list[Labels], list[int]]:
    """The groups' keys in order of first appearance, and each row's group."""
    keys: dict[Labels, int] = {}
    gid = [keys.setdefault(key, len(keys)) for key in group_keys(labels, grouping, without)]  # a new key: the next id
    return list(keys), gid


def aggregate(op: str, v: VectorSteps, param: ScalarSteps | str | None, grouping: list[str],
              without: bool, annotations: Annotations, instant: bool) -> VectorSteps:
    if v.has_hist() and op != "count_values":
        from clearsight.query.promql.nh_aggregations import aggregate_with_histograms

        return aggregate_with_histograms(op, v, param, grouping, without, annotations, instant, aggregate)
    k = v.values.shape[1]
    if op in ("topk", "bottomk", "limitk", "limit_ratio"):
        assert isinstance(param, ScalarSteps)
        return _aggregate_k(op, v, param.values, grouping, without, annotations, instant)
    if op == "count_values":
        assert isinstance(param, str)
        return _count_values(v, param, grouping, without)
    if op == "quantile":
        assert isinstance(param, ScalarSteps)
        q = param.values
        if np.isnan(q).any():
            annotations.warn("PromQL warning: quantile value should be between 0 and 1, got NaN")
        if q.size and np.nanmax(q) > 1 if not np.isnan(q).all() else False:
            annotations.warn(f"PromQL warning: quantile value should be between 0 and 1, got {_g(np.nanmax(q))}")
        if q.size and np.nanmin(q) < 0 if not np.isnan(q).all() else False:
            annotations.warn(f"PromQL warning: quantile value should be between 0 and 1, got {_g(np.nanmin(q))}")
    keys, gid = _groups(v.labels, grouping, without)
    G = len(keys)
    if G == 0:
        return VectorSteps.empty(k)
    vals = v.values
    pres = v.present
    gdrop: BoolArr | None = None
    if v.drop_name is not None and v.drop_name.any():  # the groups of flagged rows are flagged
        gdrop = np.zeros(G, dtype=bool)
        gdrop[np.asarray(gid, dtype=np.int64)[v.drop_name]] = True
    seen: BoolArr
    result: F64
    one_step = _ONE_STEP.get(op) if k == 1 else None
    in_one_step = one_step is not None and len(gid) <= one_step[0]
    native_sum_avg = (op == "sum" or op == "avg") and agg_fold._aggfold is not None
    if in_one_step and not native_sum_avg:
        assert one_step is not None
        result, seen = one_step[1](op, vals, pres, gid, G)  # Python floats: no numpy call per step
    elif native_sum_avg and (in_one_step or (len(gid) <= 2 * LANES and len(column_blocks(len(gid), k)) == 1)):
        # few rows (no group large enough for lanes), one block of steps, or the one step of an
        # instant query whose rows one lane sums (``_ONE_STEP``): the single-lane fold and its
        # finish in one compiled call (``agg_fold.SumAvg``'s operations, its state in C; the one-step
        # Python functions perform the same operations, ~1 us of Python per row where this takes
        # ~0.05: 24 rows 9.2 against 2.8 us)
        result, seen = agg_fold._aggfold.sum_avg(np.ascontiguousarray(vals, dtype=np.float64),
                                        np.ascontiguousarray(pres, dtype=np.bool_).view(np.uint8),
                                        np.asarray(gid, dtype=np.int64), G, op == "avg")
    else:
        if op not in _COLUMN_OPS:
            raise QueryError(f"unknown aggregation {op!r}")
        gid_a = np.asarray(gid, dtype=np.int64)
        qs = param.values if isinstance(param, ScalarSteps) else None
        with np.errstate(all="ignore"):
            lanes = LANES if op in ("sum", "avg") and int(np.bincount(gid_a).max()) > 2 * LANES else 1
            result, seen, overflowed = _fold_by_columns(op, vals, pres, gid_a, G, qs, lanes)
            if overflowed and lanes > 1:
                result, seen, _ = _fold_by_columns(op, vals, pres, gid_a, G, qs, 1)
    return VectorSteps(keys, result, seen, gdrop, None)


_COLUMN_OPS = frozenset({"sum", "avg", "stddev", "stdvar", "min", "max", "count", "group", "quantile"})

# Cells (rows x steps) aggregated between two checkpoints: steps are independent, so a wide
# vector is aggregated a block of steps at a time with the query's checkpoint between blocks
# (deadline, cancellation, the pause for writes: query/write_priority.py).
COLUMN_BLOCK_CELLS = 1 << 17


def column_blocks(rows: int, k: int) -> list[slice]:
    """Consecutive blocks of the ``k`` steps of about ``COLUMN_BLOCK_CELLS`` cells each (at least
    one step each)."""
    width = max(1, COLUMN_BLOCK_CELLS // max(rows, 1))
    return [slice(a, min(k, a + width)) for a in range(0, k, width)] or [slice(0, 0)]


def _fold_by_columns(op: str, vals: F64, pres: BoolArr, gid: np.ndarray, G: int, q: F64 | None,
                     lanes: int) -> tuple[F64, BoolArr, bool]:
    """``_fold`` over blocks of steps, with a checkpoint between blocks: (result, seen, whether a
    ``sum``/``avg`` lane overflowed in any block)."""
    k = vals.shape[1]
    blocks = column_blocks(vals.shape[0], k)
    if len(blocks) == 1:
        return _fold(op, vals, pres, gid, G, q, lanes)
    result = np.empty((G, k))
    seen = np.empty((G, k), dtype=bool)
    overflowed = False
    for i, c in enumerate(blocks):
        if i:
            checkpoint()
        result[:, c], seen[:, c], over = _fold(op, vals[:, c], pres[:, c], gid, G, None if q is None else q[c], lanes)
        overflowed |= over
    return result, seen, overflowed


def _fold(op: str, vals: F64, pres: BoolArr, gid: np.ndarray, G: int, q: F64 | None,
          lanes: int) -> tuple[F64, BoolArr, bool]:
    """Aggregation ``op`` of the rows ``vals``/``pres`` into ``G`` groups (``gid`` per row): every
    step on its own. (result, seen, whether a ``sum``/``avg`` lane overflowed)."""
    k = vals.shape[1]
    if op in ("sum", "avg"):
        return _sum_avg(op, vals, pres, gid, G, lanes)
    seen = np.zeros((G, k), dtype=bool)
    result: F64
    if op in ("stddev", "stdvar"):
        acc = np.zeros((G, k))
        mean = np.zeros((G, k))
        cnt = np.zeros((G, k))
        for rows, gi in ranks(gid.tolist()):
            x = vals[rows]
            p = pres[rows]
            first = p & ~seen[gi]
            rest = p & seen[gi]
            A, M, N = acc[gi], mean[gi], cnt[gi]
            N = np.where(p, N + 1, N)
            delta = x - M
            M2 = M + delta / N
            A2 = A + delta * (x - M2)
            A = np.where(first, np.where(np.isnan(x) | np.isinf(x), np.nan, 0.0), np.where(rest, A2, A))
            M = np.where(first, x, np.where(rest, M2, M))
            acc[gi], mean[gi], cnt[gi] = A, M, N
            seen[gi] |= p
        result = acc / cnt
        if op == "stddev":
            result = np.sqrt(result)
    elif op in ("min", "max"):
        # Prometheus replaces a NaN running value by any number: fmin/fmax semantics.
        mm = MinMax(op, k)
        mm.add(vals, pres, gid, G)
        result, seen = mm.finish()
    elif op in ("count", "group"):
        counter = Count(op, k)
        counter.add(pres, gid, G)
        result, seen = counter.finish()
    else:  # quantile
        assert q is not None
        result = np.full((G, k), np.nan)
        for g in range(G):
            rows = np.nonzero(gid == g)[0]
            p = pres[rows]
            seen[g] = p.any(axis=0)
            result[g] = _quantile(q, vals[rows], p)
    return result, seen, False


def _avg_one_step(op: str, vals: F64, pres: BoolArr, gid: list[int], G: int) -> tuple[F64, BoolArr]:
    """``avg`` per group of a single step in Python floats, as the single-lane ``SumAvg`` computes
    it (``_aggfold.fold_sum_avg`` then ``finish``): the compensated direct sum until it would
    overflow, then Prometheus' incremental mean. Only for groups the single lane sums (at most
    ``2 * LANES`` rows). The value of a group without members is NaN (never read)."""
    s = [0.0] * G
    c = [0.0] * G
    mean = [0.0] * G
    cnt = [0.0] * G
    incr = [False] * G
    for x, g in _present(vals, pres, gid):
        n = cnt[g] + 1
        cnt[g] = n
        if n == 1.0:
            s[g], c[g], mean[g] = x, 0.0, x
            continue
        t, nc = _kahan(x, s[g], c[g])
        if not incr[g]:
            if not math.isinf(t):
                s[g], c[g] = t, nc
                continue
            mean[g] = s[g] / (n - 1)
            c[g] = c[g] / (n - 1)
            incr[g] = True
        q = (n - 1) / n
        mean[g], c[g] = _kahan(x / n, q * mean[g], q * c[g])
    out = [math.nan if not n else (mean[g] + c[g] if incr[g] else s[g] / n + c[g] / n) for g, n in enumerate(cnt)]
    return np.asarray(out)[:, None], np.asarray([n > 0 for n in cnt])[:, None]


def _present(vals: F64, pres: BoolArr, gid: list[int]) -> list[tuple[float, int]]:
    """(value, group) of the rows present at the single step, in row order."""
    return [(x, g) for x, p, g in zip(vals[:, 0].tolist(), pres[:, 0].tolist(), gid, strict=True) if p]


def _kahan(inc: float, s: float, c: float) -> tuple[float, float]:
    """Prometheus' kahansum.Inc on Python floats (``agg_fold.kahan_inc`` on one cell)."""
    t = s + inc
    comp = (s - t) + inc if abs(s) >= abs(inc) else (inc - t) + s
    return t, 0.0 if math.isinf(t) else c + comp


def _count_one_step(op: str, vals: F64, pres: BoolArr, gid: list[int], G: int) -> tuple[F64, BoolArr]:
    """``count``/``group`` per group of a single step (``agg_fold.Count`` on one column)."""
    cnt = [0.0] * G
    for p, g in zip(pres[:, 0].tolist(), gid, strict=True):
        if p:
            cnt[g] += 1.0
    seen = np.asarray([n > 0 for n in cnt])[:, None]
    return (np.asarray(cnt)[:, None] if op == "count" else np.ones((G, 1))), seen


def _sum_one_step(op: str, vals: F64, pres: BoolArr, gid: list[int], G: int) -> tuple[F64, BoolArr]:
    """Kahan-Neumaier sum per group of a single step: members added in row order, the first one
    taken as is (Prometheus' kahansum over a group, as ``_sum_avg`` computes it with one lane)."""
    s = [0.0] * G
    c = [0.0] * G
    seen = [False] * G
    for x, g in _present(vals, pres, gid):
        if not seen[g]:
            s[g], c[g], seen[g] = x, 0.0, True
            continue
        s[g], c[g] = _kahan(x, s[g], c[g])
    return np.asarray([a + b for a, b in zip(s, c, strict=True)])[:, None], np.asarray(seen)[:, None]


# One-step (instant) aggregations over at most so many rows computed in Python floats, with the
# same IEEE operations in the same order as the vectorized path.
_ONE_STEP: dict[str, tuple[int, Callable[[str, F64, BoolArr, list[int], int], tuple[F64, BoolArr]]]] = {
    "sum": (SCALAR_SUM_MAX_ROWS, _sum_one_step),
    "avg": (2 * LANES, _avg_one_step),  # more rows may make a group large enough for lanes
    "count": (SCALAR_SUM_MAX_ROWS, _count_one_step),
    "group": (SCALAR_SUM_MAX_ROWS, _count_one_step),
}


def _sum_avg(op: str, vals: F64, pres: BoolArr, gid: np.ndarray, G: int, lanes: int) -> tuple[F64, BoolArr, bool]:
    """Compensated sum / mean per group. Returns (result, seen, overflowed-to-incremental-mean)."""
    acc = SumAvg(op, lanes, vals.shape[1], G)
    acc.add(vals, pres, gid, G)
    return acc.finish()


def _g(x: float) -> str:
    """Go's %g for the common cases."""
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    return repr(float(x))


def _quantile(q: F64, vals: F64, present: BoolArr) -> F64:
    """Per column: Prometheus' quantile over the present values (NaN sorts first)."""
    k = vals.shape[1]
    n = present.sum(axis=0)
    cls = np.where(present, np.where(np.isnan(vals), 0, 1), 2)
    filled = np.where(present & ~np.isnan(vals), vals, 0.0)
    order = np.lexsort((filled, cls), axis=0)
    srt = np.take_along_axis(vals, order, axis=0)
    out = np.full(k, np.nan)
    with np.errstate(all="ignore"):
        nf = n.astype(np.float64)
        rank = q * (nf - 1)
        lo = np.maximum(0, np.floor(rank))
        hi = np.minimum(nf - 1, lo + 1)
        w = rank - np.floor(rank)
        ok = (n > 0) & ~np.isnan(q) & (q >= 0) & (q <= 1)
        loi = np.where(ok, lo, 0).astype(np.int64)
        hii = np.where(ok, hi, 0).astype(np.int64)
        cols = np.arange(k)
        val = srt[loi, cols] * (1 - w) + srt[hii, cols] * w
        out = np.where(ok, val, out)
        out = np.where((n > 0) & (q < 0), -np.inf, out)
        out = np.where((n > 0) & (q > 1), np.inf, out)
    return out


def _aggregate_k(op: str, v: VectorSteps, param: F64, grouping: list[str], without: bool,
                 annotations: Annotations, instant: bool) -> VectorSteps:
    k = v.values.shape[1]
    n = v.num_series
    if op == "limit_ratio":
        if (param == 0).all():
            return VectorSteps.empty(k)
        if np.isnan(param).any():
            raise QueryError("Ratio value is NaN")
        if param.max() > 1.0:
            annotations.warn(f"PromQL warning: ratio value should be between -1 and 1, got {_g(param.max())}, "
                             "capping to 1")
        if param.min() < -1.0:
            annotations.warn(f"PromQL warning: ratio value should be between -1 and 1, got {_g(param.min())}, "
                             "capping to -1")
        r = np.clip(param, -1.0, 1.0)
        offs = np.asarray([ratio_offset(lbl) for lbl in v.labels], dtype=np.float64).reshape(n, 1)
        sel = np.where(r[None, :] >= 0, offs < r[None, :], offs >= 1.0 + r[None, :])
        present = v.present & sel & (r[None, :] != 0)
        return VectorSteps(v.labels, v.values, present, v.drop_name, None)
    if not np.isnan(param).any() and param.max() < 1:
        return VectorSteps.empty(k)
    if np.isnan(param).any():
        raise QueryError("Parameter value is NaN")
    if param.min() <= MIN_INT64:
        raise QueryError(f"Scalar value {_g(param.min())} underflows int64")
    if param.max() >= MAX_INT64:
        raise QueryError(f"Scalar value {_g(param.max())} overflows int64")
    if n == 0:
        return VectorSteps.empty(k)
    kk = np.minimum(np.trunc(param), n)
    keys, gid = _groups(v.labels, grouping, without)
    gid_a = np.asarray(gid)
    present = np.zeros_like(v.present)
    pos_all = np.zeros((n, k), dtype=np.int64)
    members = [np.nonzero(gid_a == g)[0] for g in range(len(keys))]
    # Only an instant query reads the ranks (its rows come out in rank order).
    ranked_cells = op != "limitk" and not (instant and k == 1)
    for i, c in enumerate(column_blocks(n, k)):  # steps are ranked independently
        if i:
            checkpoint()
        for rows in members:
            p = v.present[rows, c]
            if ranked_cells:  # which cells make the top, without every cell's rank
                present[rows, c] = _top_cells(op, p, v.values[rows, c], kk[c])
                continue
            if op == "limitk":
                pos = np.cumsum(p, axis=0) - 1
            else:
                pos = _ranks(op, p, v.values[rows, c])
            present[rows, c] = p & (pos < kk[None, c])
            pos_all[rows, c] = pos
    res = VectorSteps(v.labels, v.values, present, v.drop_name, None)
    if instant and k == 1:
        order_rows = sorted(range(n), key=lambda i: (gid[i], int(pos_all[i, 0])))
        idx = np.asarray(order_rows, dtype=np.int64)
        res = VectorSteps([v.labels[i] for i in order_rows], v.values[idx], present[idx],
                          v.drop_name[idx] if v.drop_name is not None else None, None)
    return res


def _ranks(op: str, p: BoolArr, x: F64) -> I64:
    """``topk``/``bottomk``: each cell's rank in its column among the rows of one group (present
    numbers first, the largest for ``topk``, then present NaNs, then absent cells; ties in row
    order)."""
    isnan = np.isnan(x)
    cls = np.where(p, np.where(isnan, 1, 0), 2)
    key = np.where(p & ~isnan, -x if op == "topk" else x, 0.0)
    order = np.lexsort((key, cls), axis=0)
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(p.shape[0])[:, None].repeat(p.shape[1], axis=1), axis=0)
    return pos


def _top_cells(op: str, p: BoolArr, x: F64, kk: F64) -> BoolArr:
    """``topk``/``bottomk`` over the rows of one group: the cells ``p`` whose rank in their
    column is below ``kk`` (that column's k), the ranks ordering the present numbers first (the
    largest for ``topk``, the smallest for ``bottomk``), then the present NaNs, ties in row order:
    The numbers are ranked by one stable
    argsort (non-numbers sort last as NaN) and only the first ``max(kk)`` ranks are looked at; a
    present NaN is in when the column's numbers and the NaNs above it leave room. The same cells
    as ``p & (_ranks(op, p, x) < kk)``."""
    m, width = p.shape
    isnan = np.isnan(x)
    num = p & ~isnan
    order = np.argsort(np.where(num, -x if op == "topk" else x, np.nan), axis=0, kind="stable")
    numbers = num.sum(axis=0)
    top = np.zeros((m, width), dtype=bool)
    kmax = min(m, int(kk.max())) if width else 0
    if kmax > 0:
        rank = np.arange(kmax)[:, None]
        take = (rank < kk[None, :]) & (rank < numbers[None, :])
        top[order[:kmax][take], np.nonzero(take)[1]] = True
    nans = p & isnan
    if nans.any():
        top |= nans & (np.cumsum(nans, axis=0) - 1 + numbers[None, :] < kk[None, :])
    return top


def _count_values(v: VectorSteps, label: str, grouping: list[str], without: bool) -> VectorSteps:
    if not _valid_label_name(label):
        raise QueryError(f"invalid label name {go_quote(label)}")
    k = v.values.shape[1]
    grp = list(grouping)
    if not without:
        grp.append(label)
    rows, cols = np.nonzero(v.present)
    if rows.size == 0:
        return VectorSteps.empty(k)
    vals = v.values[rows, cols]
    # Format each distinct value once (by bit pattern: -0 and 0 print differently).
    ubits, inv = np.unique(vals.view(np.uint64), return_inverse=True)
    strings = [format_float(float(x)) for x in ubits.view(np.float64)]
    sid_table: dict[str, int] = {}
    sid_of_u = np.asarray([sid_table.setdefault(x, len(sid_table)) for x in strings], dtype=np.int64)
    sids = sid_of_u[inv.reshape(-1)]
    if v.hist is not None:
        # Histogram samples count by their text (Prometheus' FloatHistogram.String()).
        from clearsight.model.histogram_text import format_histogram_brief

        cells = v.hist[rows, cols]
        for n_, h in enumerate(cells.tolist()):
            if h is not None:
                sids[n_] = sid_table.setdefault(format_histogram_brief(h), len(sid_table))
    names = list(sid_table)
    # One output key per distinct (row, value string) pair.
    pair = rows.astype(np.int64) * len(names) + sids
    upairs, pinv = np.unique(pair, return_inverse=True)
    key_ids: dict[Labels, int] = {}
    order: list[Labels] = []
    key_of_pair = np.empty(upairs.size, dtype=np.int64)
    for n_, p_ in enumerate(upairs.tolist()):
        if n_ % 4096 == 4095:
            checkpoint()
        row, sid = divmod(p_, len(names))
        lbl = dict(v.labels[row])
        lbl[label] = names[sid]
        key = group_key(tuple(sorted(lbl.items())), grp, without)
        kid = key_ids.get(key)
        if kid is None:
            kid = len(order)
            key_ids[key] = kid
            order.append(key)
        key_of_pair[n_] = kid
    # One output series per distinct value: up to series x steps of them, each with k points.
    reserve_current(len(order) * k, "count_values")
    counts = np.zeros((len(order), k))
    np.add.at(counts, (key_of_pair[pinv.reshape(-1)], cols), 1.0)
    return VectorSteps(order, counts, counts > 0, None, None)


def _valid_label_name(name: str) -> bool:
    return bool(name) and all(ch.isprintable() for ch in name)


# ---- limit_ratio sampling: xxhash64 of the label set, as Prometheus' labels.Hash ----

_P1 = 11400714785074694791
_P2 = 14029467366897019727
_P3 = 1609587929392839161
_P4 = 9650029242287828579
_P5 = 2870177450012600261
_M = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _M
    acc = _rotl(acc, 31)
    return (acc * _P1) & _M


def _merge(acc: int, val: int) -> int:
    acc ^= _round(0, val)
    return (acc * _P1 + _P4) & _M


def xxhash64(data: bytes, seed: int = 0) -> int:
    """XXH64 (public-domain algorithm specification)."""
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & _M
        v2 = (seed + _P2) & _M
        v3 = seed & _M
        v4 = (seed - _P1) & _M
        while i + 32 <= n:
            v1 = _round(v1, int.from_bytes(data[i:i + 8], "little"))
            v2 = _round(v2, int.from_bytes(data[i + 8:i + 16], "little"))
            v3 = _round(v3, int.from_bytes(data[i + 16:i + 24], "little"))
            v4 = _round(v4, int.from_bytes(data[i + 24:i + 32], "little"))
            i += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i:i + 8], "little"))
        h = (_rotl(h, 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i:i + 4], "little") * _P1) & _M
        h = (_rotl(h, 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M
        h = (_rotl(h, 11) * _P1) & _M
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M
    h ^= h >> 29
    h = (h * _P3) & _M
    h ^= h >> 32
    return h


def labels_hash(labels: Labels) -> int:
    """Prometheus' labels.Hash: xxhash64 over name 0xff value 0xff ... ."""
    buf = bytearray()
    for name, value in labels:
        buf += name.encode()
        buf.append(0xFF)
        buf += value.encode()
        buf.append(0xFF)
    return xxhash64(bytes(buf))


def ratio_offset(labels: Labels) -> float:
    return float(labels_hash(labels)) / float(_M)


Aggregator = Callable[..., VectorSteps]
