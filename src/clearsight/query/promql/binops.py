"""Binary operators over step-vectorized values: arithmetic, comparisons, set operators, vector
matching (on/ignoring, group_left/group_right) and fill modifiers.

Every operator works on whole (series x steps) arrays; Python loops run per series or per match
group, never per sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clearsight.model.labels import Labels
from clearsight.query.promql.ast import (
    ARITHMETIC_OPS,
    COMPARISON_OPS,
    SET_OPS,
    BinaryExpr,
    Cardinality,
    VectorMatching,
)
from clearsight.query.promql.nh_binops import TRIM_OPS, fix_cells
from clearsight.query.promql.values import (
    F64,
    Annotations,
    BoolArr,
    ObjArr,
    QueryError,
    ScalarSteps,
    Value,
    VectorSteps,
)
from clearsight.query.promql.vecutil import labels_string, merge_rows, stack

ArithFn = Callable[[F64, F64], F64]


def _arith(op: str, a: F64, b: F64) -> F64:
    if op in TRIM_OPS:  # only defined for histograms (nh_binops); float cells are dropped there
        return np.full(np.broadcast_shapes(np.shape(a), np.shape(b)), np.nan)
    with np.errstate(all="ignore"):
        if op == "+":
            return np.add(a, b)
        if op == "-":
            return np.subtract(a, b)
        if op == "*":
            return np.multiply(a, b)
        if op == "/":
            return np.divide(a, b)
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
    raise QueryError(f"operator {op!r} not allowed for arithmetic")


def _compare(op: str, a: F64, b: F64) -> BoolArr:
    with np.errstate(invalid="ignore"):
        if op == "==":
            return np.equal(a, b)
        if op == "!=":
            return np.not_equal(a, b)
        if op == ">":
            return np.greater(a, b)
        if op == "<":
            return np.less(a, b)
        if op == ">=":
            return np.greater_equal(a, b)
        if op == "<=":
            return np.less_equal(a, b)
    raise QueryError(f"operator {op!r} is not a comparison")


def scalar_op(op: str, a: F64, b: F64) -> F64:
    if op in COMPARISON_OPS:
        return _compare(op, a, b).astype(np.float64)
    return _arith(op, a, b)


def _cells(op: str, lv: F64, rv: F64, run: BoolArr, return_bool: bool) -> tuple[F64, BoolArr]:
    """The values and presence of matched cells ``lv op rv`` where ``run`` holds: a comparison
    filters (or, with ``bool``, answers 0/1 everywhere ``run`` holds), arithmetic computes."""
    if op in COMPARISON_OPS:
        cond = _compare(op, lv, rv)
        if return_bool:
            return cond.astype(np.float64), run
        return lv, run & cond
    return _arith(op, lv, rv), run


# The matching of an operator written without on/ignoring (never modified: shared by every query).
_DEFAULT_MATCHING = VectorMatching(card=Cardinality.ONE_TO_ONE)
_SET_MATCHING = VectorMatching(card=Cardinality.MANY_TO_MANY)


def evaluate_binary(e: BinaryExpr, lhs: Value, rhs: Value, strict: bool,
                    ann: Annotations | None = None) -> Value:
    """``ann`` receives the annotations of operations on native histogram samples."""
    op = e.op
    if isinstance(lhs, ScalarSteps) and isinstance(rhs, ScalarSteps):
        return ScalarSteps(scalar_op(op, lhs.values, rhs.values))
    if isinstance(lhs, VectorSteps) and isinstance(rhs, ScalarSteps):
        return _vector_scalar(op, lhs, rhs.values, False, e.return_bool, ann)
    if isinstance(lhs, ScalarSteps) and isinstance(rhs, VectorSteps):
        return _vector_scalar(op, rhs, lhs.values, True, e.return_bool, ann)
    if isinstance(lhs, VectorSteps) and isinstance(rhs, VectorSteps):
        matching = e.matching or (_SET_MATCHING if op in SET_OPS else _DEFAULT_MATCHING)
        if op in SET_OPS:
            return _set_op(op, lhs, rhs, matching, strict)
        return _vector_vector(op, lhs, rhs, matching, e.return_bool, strict, ann)
    raise QueryError(f"binary operator {op!r} is not defined between these operand types")


def _vector_scalar(op: str, vec: VectorSteps, sc: F64, swap: bool, return_bool: bool,
                   ann: Annotations | None = None) -> VectorSteps:
    v = vec.values
    if op in TRIM_OPS or vec.hist is not None:  # fix_cells takes both sides at full shape
        s = np.broadcast_to(sc[None, :], v.shape)
    else:
        s = sc[None, :]  # the ufuncs broadcast the one row (np.broadcast_to costs more than they do)
    a, b = (s, v) if swap else (v, s)
    n = vec.num_series
    if op in TRIM_OPS:
        lh, rh = (None, vec.hist) if swap else (vec.hist, None)
        vals, pres, hist = fix_cells(op, a, b, lh, rh, np.full(v.shape, np.nan), vec.present, vec.present, False,
                                     ann)
        return VectorSteps(vec.labels, vals, pres, vec.drop_name, None, hist)
    if vec.has_hist():
        out = _vector_scalar(op, VectorSteps(vec.labels, vec.values, vec.present, vec.drop_name), sc, swap,
                             return_bool)
        lh, rh = (None, vec.hist) if swap else (vec.hist, None)
        vals, pres, hist = fix_cells(op, a, b, lh, rh, out.values, out.present, vec.present, return_bool, ann,
                                     keep_side="right" if swap else "left")
        return VectorSteps(out.labels, vals, pres, out.drop_name, None, hist)
    if op in COMPARISON_OPS:
        cond = _compare(op, a, b)
        if return_bool:
            return VectorSteps(vec.labels, cond.astype(np.float64), vec.present.copy(),
                               np.ones(n, dtype=bool), None)
        return VectorSteps(vec.labels, v, vec.present & cond, vec.drop_name, None)
    return VectorSteps(vec.labels, _arith(op, a, b), vec.present.copy(), np.ones(n, dtype=bool), None)


def _signature(labels: Labels, matching: VectorMatching) -> Labels:
    names = matching.labels
    if matching.on:
        return tuple(p for p in labels if p[0] in names)
    return tuple(p for p in labels if p[0] not in names and p[0] != "__name__")


def _sig_ids(labels: list[Labels], matching: VectorMatching, table: dict[Labels, int]) -> list[int]:
    out = []
    for lbl in labels:
        sig = _signature(lbl, matching)
        sid = table.get(sig)
        if sid is None:
            sid = len(table)
            table[sig] = sid
        out.append(sid)
    return out


def _set_op(op: str, lhs: VectorSteps, rhs: VectorSteps, matching: VectorMatching, strict: bool) -> VectorSteps:
    k = lhs.values.shape[1]
    table: dict[Labels, int] = {}
    lsig = np.asarray(_sig_ids(lhs.labels, matching, table), dtype=np.int64)
    rsig = np.asarray(_sig_ids(rhs.labels, matching, table), dtype=np.int64)
    nsig = len(table)
    if op in ("and", "unless"):
        rp = np.zeros((nsig, k), dtype=bool)
        if rhs.num_series:
            np.logical_or.at(rp, rsig, rhs.present)
        if lhs.num_series == 0:
            return VectorSteps.empty(k)
        matched = rp[lsig]
        present = lhs.present & matched if op == "and" else lhs.present & ~matched
        return VectorSteps(lhs.labels, lhs.values, present, lhs.drop_name, None, lhs.hist)
    # or
    lp = np.zeros((nsig, k), dtype=bool)
    if lhs.num_series:
        np.logical_or.at(lp, lsig, lhs.present)
    rhs_part = VectorSteps(rhs.labels, rhs.values,
                           rhs.present & ~lp[rsig] if rhs.num_series else rhs.present,
                           rhs.drop_name, None, rhs.hist)
    both = stack([VectorSteps(lhs.labels, lhs.values, lhs.present, lhs.drop_name, None, lhs.hist), rhs_part], k)
    return merge_rows(both, strict)


def _result_labels(ls: Labels, rs: Labels, op: str, matching: VectorMatching) -> Labels:
    d = dict(ls)
    if op in ARITHMETIC_OPS:
        for m in ("__name__", "__type__", "__unit__"):
            d.pop(m, None)
    if matching.card is Cardinality.ONE_TO_ONE:
        if matching.on:
            keep = set(matching.labels)
            d = {n: v for n, v in d.items() if n in keep}
        else:
            for n in matching.labels:
                d.pop(n, None)
    if matching.include:
        rd = dict(rs)
        for n in matching.include:
            val = rd.get(n, "")
            if val:
                d[n] = val
            else:
                d.pop(n, None)
    return tuple(sorted(d.items()))


def _match_labels(labels: Labels, matching: VectorMatching) -> Labels:
    if matching.on:
        return tuple(p for p in labels if p[0] in matching.labels)
    return tuple(p for p in labels if p[0] not in matching.labels and p[0] != "__name__")


def _vector_vector(op: str, lhs: VectorSteps, rhs: VectorSteps, matching: VectorMatching,
                   return_bool: bool, strict: bool, ann: Annotations | None = None) -> VectorSteps:
    k = lhs.values.shape[1]
    swap = matching.card is Cardinality.ONE_TO_MANY
    fill_l, fill_r = matching.fill_left, matching.fill_right
    if (fill_l is None and fill_r is None and lhs.hist is None and rhs.hist is None and op not in TRIM_OPS
            and lhs.num_series == rhs.num_series):
        aligned = _vector_vector_aligned(op, lhs, rhs, matching, return_bool, swap, strict)
        if aligned is not None:
            return aligned
    # Steps where the operation runs at all (Prometheus short-circuits empty sides without fill).
    l_any = lhs.present.any(axis=0) if lhs.num_series else np.zeros(k, dtype=bool)
    r_any = rhs.present.any(axis=0) if rhs.num_series else np.zeros(k, dtype=bool)
    if fill_l is None and fill_r is None:
        active = l_any & r_any
    else:
        active = l_any | r_any
    many, one = (rhs, lhs) if swap else (lhs, rhs)
    # As in Prometheus, fill values apply after the group_right swap: fill_right fills the 'one'
    # side and fill_left the 'many' side.
    fill_one = fill_r
    fill_many = fill_l
    table: dict[Labels, int] = {}
    msig = _sig_ids(many.labels, matching, table)
    osig = _sig_ids(one.labels, matching, table)
    groups_one: dict[int, list[int]] = {}
    for i, s in enumerate(osig):
        groups_one.setdefault(s, []).append(i)
    # Duplicate check on the 'one' side (a group of one series has none).
    for rows in groups_one.values():
        if len(rows) == 1:
            continue
        p = one.present[rows]
        cnt = p.sum(axis=0)
        bad = (cnt > 1) & active
        if bad.any():
            j = int(np.argmax(bad))
            dup = [one.labels[r] for r in rows if one.present[r, j]][:2]
            a, b = sorted(labels_string(x) for x in dup)
            side = "left" if swap else "right"
            ml = _match_labels(dup[0], matching)
            raise QueryError(
                f"found duplicate series for the match group {labels_string(ml)} on the {side} hand-side "
                f"of the operation: [{a}, {b}];many-to-many matching not allowed: matching labels must be "
                f"unique on one side")

    if fill_one is None and fill_many is None and all(len(r) == 1 for r in groups_one.values()):
        return _vector_vector_unique(op, many, one, msig, groups_one, np.asarray(active, dtype=bool), matching,
                                     return_bool, swap,
                                     strict, ann)
    one_present_by_sig = {s: np.asarray(one.present[rows].any(axis=0)) for s, rows in groups_one.items()}

    out_labels: list[Labels] = []
    out_vals: list[F64] = []
    out_pres: list[BoolArr] = []
    out_hist: list[ObjArr | None] = []
    out_sig: list[int] = []
    out_matched: list[BoolArr] = []  # where the op ran (for the one-to-one duplicate check)

    def emit(ml: Labels, ol: Labels, mv: F64, ov: F64, run: BoolArr, sig: int,
             mh: ObjArr | None = None, oh: ObjArr | None = None) -> None:
        lv, rv = (ov, mv) if swap else (mv, ov)
        vals, pres = _cells(op, lv, rv, run, return_bool)
        hist = None
        if mh is not None or oh is not None or op in TRIM_OPS:
            lh, rh = (oh, mh) if swap else (mh, oh)
            vals, pres, hist = fix_cells(op, lv, rv, lh, rh, vals, pres, run, return_bool, ann)
        out_hist.append(hist)
        out_labels.append(_result_labels(ml, ol, op, matching))
        out_vals.append(vals)
        out_pres.append(pres)
        out_sig.append(sig)
        out_matched.append(run)

    for i, ml in enumerate(many.labels):
        s = msig[i]
        mp = many.present[i] & active
        if not mp.any():
            continue
        rows = groups_one.get(s, [])
        for r in rows:
            run = mp & one.present[r]
            if run.any():
                emit(ml, one.labels[r], many.values[i], one.values[r], run, s,
                     many.hist[i] if many.hist is not None else None, one.hist[r] if one.hist is not None else None)
        if fill_one is not None:
            unmatched = mp & ~one_present_by_sig.get(s, np.zeros(k, dtype=bool))
            if unmatched.any():
                emit(ml, _match_labels(ml, matching), many.values[i], np.full(k, fill_one), unmatched, s,
                     many.hist[i] if many.hist is not None else None)
    if fill_many is not None:
        matched_by_sig: dict[int, BoolArr] = {}
        for s_, m_ in zip(out_sig, out_matched, strict=True):
            prev = matched_by_sig.get(s_)
            matched_by_sig[s_] = m_ if prev is None else (prev | m_)
        for r, ol in enumerate(one.labels):
            s = osig[r]
            op_ = one.present[r] & active
            done = matched_by_sig.get(s)
            if done is not None:
                op_ = op_ & ~done
            if op_.any():
                emit(_match_labels(ol, matching), ol, np.full(k, fill_many), one.values[r], op_, s, None,
                     one.hist[r] if one.hist is not None else None)

    if not out_labels:
        return VectorSteps.empty(k)
    # Duplicate checks per step.
    if matching.card is Cardinality.ONE_TO_ONE:
        by_sig: dict[int, list[int]] = {}
        for idx, s in enumerate(out_sig):
            by_sig.setdefault(s, []).append(idx)
        for idxs in by_sig.values():
            if len(idxs) > 1:
                cnt = np.sum([out_matched[x] for x in idxs], axis=0)
                if (cnt > 1).any():
                    raise QueryError("multiple matches for labels: many-to-one matching must be explicit "
                                     "(group_left/group_right)")
    else:
        by_key: dict[tuple[int, Labels], list[int]] = {}
        for idx, (s, lbl) in enumerate(zip(out_sig, out_labels, strict=True)):
            by_key.setdefault((s, lbl), []).append(idx)
        for idxs in by_key.values():
            if len(idxs) > 1:
                cnt = np.sum([out_matched[x] for x in idxs], axis=0)
                if (cnt > 1).any():
                    raise QueryError("multiple matches for labels: grouping labels must ensure unique matches")
    n = len(out_labels)
    drop = np.full(n, return_bool, dtype=bool)
    hist_rows = None
    if any(h is not None for h in out_hist):
        hist_rows = np.vstack([h if h is not None else np.full(k, None, dtype=object) for h in out_hist])
    res = VectorSteps(out_labels, np.vstack(out_vals), np.vstack(out_pres), drop, None, hist_rows)
    return merge_rows(res, strict)


def _vector_vector_aligned(op: str, lhs: VectorSteps, rhs: VectorSteps, matching: VectorMatching,
                           return_bool: bool, swap: bool, strict: bool) -> VectorSteps | None:
    """The commonest case of all (``a - b``, ``x / on(instance) group_left y`` on one instance):
    both sides have the same match signatures, unique, in the same order, so row ``i`` of one side
    matches row ``i`` of the other and nothing else. None when they do not line up (the general
    path then runs). The answer is ``_vector_vector_unique``'s without its index arrays, step
    masks and duplicate checks: with unique signatures on both sides no check can fail, and a cell
    where both sides are present lies in a step where both sides have a row."""
    n = lhs.num_series
    if n == 0:
        return None
    labels = matching.labels
    if matching.on:
        lsig = [tuple(p for p in lbl if p[0] in labels) for lbl in lhs.labels]
        rsig = [tuple(p for p in lbl if p[0] in labels) for lbl in rhs.labels]
    else:
        lsig = [tuple(p for p in lbl if p[0] not in labels and p[0] != "__name__") for lbl in lhs.labels]
        rsig = [tuple(p for p in lbl if p[0] not in labels and p[0] != "__name__") for lbl in rhs.labels]
    if lsig != rsig or (n > 1 and len(set(lsig)) != n):
        return None
    vals, pres = _cells(op, lhs.values, rhs.values, lhs.present & rhs.present, return_bool)
    many, one = (rhs, lhs) if swap else (lhs, rhs)
    out_labels = [_result_labels(a, b, op, matching) for a, b in zip(many.labels, one.labels, strict=True)]
    drop = np.full(n, return_bool, dtype=bool)
    return merge_rows(VectorSteps(out_labels, vals, pres, drop, None, None), strict)


def _vector_vector_unique(op: str, many: VectorSteps, one: VectorSteps, msig: list[int],
                          groups_one: dict[int, list[int]], active: BoolArr, matching: VectorMatching,
                          return_bool: bool, swap: bool, strict: bool,
                          ann: Annotations | None = None) -> VectorSteps:
    """The common case: every match group has exactly one series on the 'one' side, no fill.
    All pairs are computed in one vectorized operation."""
    k = many.values.shape[1]
    pair_many = []
    pair_one = []
    for i, sg in enumerate(msig):
        rows = groups_one.get(sg)
        if rows is not None:
            pair_many.append(i)
            pair_one.append(rows[0])
    if not pair_many:
        return VectorSteps.empty(k)
    mi = np.asarray(pair_many, dtype=np.int64)
    oi = np.asarray(pair_one, dtype=np.int64)
    run = many.present[mi] & one.present[oi] & active[None, :]
    mv, ov = many.values[mi], one.values[oi]
    lv, rv = (ov, mv) if swap else (mv, ov)
    vals, pres = _cells(op, lv, rv, run, return_bool)
    hist = None
    if many.hist is not None or one.hist is not None or op in TRIM_OPS:
        mh = many.hist[mi] if many.hist is not None else None
        oh = one.hist[oi] if one.hist is not None else None
        lh, rh = (oh, mh) if swap else (mh, oh)
        vals, pres, hist = fix_cells(op, lv, rv, lh, rh, vals, pres, run, return_bool, ann)
    cache: dict[tuple[Labels, Labels], Labels] = {}
    out_labels: list[Labels] = []
    for a, b in zip(pair_many, pair_one, strict=True):
        key = (many.labels[a], one.labels[b])
        lbl = cache.get(key)
        if lbl is None:
            lbl = _result_labels(key[0], key[1], op, matching)
            cache[key] = lbl
        out_labels.append(lbl)
    sig_of_pair = np.asarray([msig[a] for a in pair_many], dtype=np.int64)
    if matching.card is Cardinality.ONE_TO_ONE:
        if len(set(sig_of_pair.tolist())) != len(pair_many):
            cnt = np.zeros((int(sig_of_pair.max()) + 1, k), dtype=np.int64)
            np.add.at(cnt, sig_of_pair, run.astype(np.int64))
            if (cnt > 1).any():
                raise QueryError("multiple matches for labels: many-to-one matching must be explicit "
                                 "(group_left/group_right)")
    else:
        ids: dict[tuple[int, Labels], int] = {}
        key_ids = np.asarray([ids.setdefault((int(sg), lbl), len(ids))
                              for sg, lbl in zip(sig_of_pair.tolist(), out_labels, strict=True)], dtype=np.int64)
        if len(ids) != len(pair_many):
            cnt = np.zeros((len(ids), k), dtype=np.int64)
            np.add.at(cnt, key_ids, run.astype(np.int64))
            if (cnt > 1).any():
                raise QueryError("multiple matches for labels: grouping labels must ensure unique matches")
    drop = np.full(len(out_labels), return_bool, dtype=bool)
    return merge_rows(VectorSteps(out_labels, vals, pres, drop, None, hist), strict)


def negate(v: VectorSteps) -> VectorSteps:
    hist = None
    if v.hist is not None:
        hist = np.full(v.hist.shape, None, dtype=object)
        for i, j in zip(*np.nonzero(v.hist_mask()), strict=True):
            hist[i, j] = v.hist[i, j].neg()
    return VectorSteps(v.labels, -v.values, v.present, np.ones(v.num_series, dtype=bool), None, hist)

