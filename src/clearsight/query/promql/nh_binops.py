"""Binary operators on native histogram samples (Prometheus' ``vectorElemBinop``).

The vectorized float code in ``binops`` computes every cell as if both operands were floats;
``fix_cells`` then recomputes the cells where an operand is a histogram, one by one:

- histogram ``*`` float (either side), histogram ``/`` float: scaled histogram;
- histogram ``+``/``-`` histogram (the difference is a gauge histogram), ``==``/``!=`` compare
  histograms exactly (the result keeps the left histogram);
- everything else is an incompatible combination: the sample is dropped with the info
  "incompatible sample types encountered for binary operator".

Errors and warnings (conflicting counter resets, exponential mixed with custom buckets) drop the
sample as in Prometheus; "mismatched custom buckets were reconciled" is an info on a kept sample.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from clearsight.model.histogram import CounterResetHint, FloatHistogram, IncompatibleSchemaError
from clearsight.query.promql import nh_common as nc
from clearsight.query.promql.values import Annotations, BoolArr, ObjArr

TRIM_OPS = frozenset({"</", ">/"})
_F = "float"
_H = "histogram"


class _Res:
    __slots__ = ("err", "f", "h", "info", "keep")

    def __init__(self, f: float = 0.0, h: FloatHistogram | None = None, keep: bool = True,
                 info: str | None = None, err: tuple[str, str] | None = None) -> None:
        self.f = f
        self.h = h
        self.keep = keep
        self.info = info
        self.err = err  # (kind "warn"/"info", message)


def _incompatible(lt: str, op: str, rt: str) -> _Res:
    return _Res(keep=False, err=("info", nc.incompatible_types_binop(lt, op, rt)))


def _midpoint(lo: float, up: float, positive: bool, linear: bool) -> float:
    if math.isinf(lo):
        if math.isinf(up):
            return 0.0
        return up / 2 if up > 0 else up
    if math.isinf(up):
        return lo
    if linear:
        return (lo + up) / 2
    g = math.sqrt(abs(lo * up))
    return g if positive else -g


def _fraction_below(v: float, lo: float, up: float, linear: bool) -> float:
    with np.errstate(all="ignore"):
        if linear:
            return float((np.float64(v) - lo) / (np.float64(up) - lo))
        ll = float(np.log2(abs(lo)))
        lu = float(np.log2(abs(up)))
        lv = float(np.log2(abs(v)))
        if v > 0:
            return float(np.float64(lv - ll) / np.float64(lu - ll))
        return 1 - float(np.float64(lv - lu) / np.float64(ll - lu))


def _zinf(x: float) -> float:
    return 0.0 if math.isinf(x) else x


def _infinite_bucket(upper_trim: bool, lo: float, up: float, count: float, rhs: float) -> tuple[float, float]:
    if math.isinf(lo) and lo < 0:
        if upper_trim:
            if rhs >= up:
                return count, 0.0
            if rhs > 0 and up > 0 and not math.isinf(up):
                return count * rhs / up, rhs / 2
            if up <= 0:
                return count, rhs
            return 0.0, _zinf(up)
        if rhs <= lo:
            return count, 0.0
        if rhs >= 0 and up > rhs and not math.isinf(up):
            return count * (1 - rhs / up), (rhs + up) / 2
        return 0.0, _zinf(up)
    if upper_trim:
        return 0.0, _zinf(lo)
    if rhs >= lo:
        return count, rhs
    return 0.0, _zinf(lo)


def _bucket_trim(lo: float, up: float, count: float, rhs: float, upper_trim: bool, positive: bool,
                 linear: bool) -> tuple[float, float]:
    if (math.isinf(lo) and lo < 0) or (math.isinf(up) and up > 0):
        return _infinite_bucket(upper_trim, lo, up, count, rhs)
    if rhs <= lo:
        under = 0.0
    elif rhs >= up:
        under = count
    else:
        under = count * _fraction_below(rhs, lo, up, linear)
    if upper_trim:
        return under, _midpoint(lo, rhs, positive, linear)
    return count - under, _midpoint(rhs, up, positive, linear)


def trim_buckets(h: FloatHistogram, rhs: float, upper_trim: bool) -> FloatHistogram:
    """``h </ rhs`` (``upper_trim``: keep observations below ``rhs``) or ``h >/ rhs``: buckets
    beyond the trim point are emptied, the bucket containing it is interpolated, and count and
    sum are re-estimated from bucket midpoints (Prometheus' ``TrimBuckets``)."""
    custom = h.uses_custom_buckets
    new_count = 0.0
    new_sum = 0.0
    trimmed = False
    has = {True: False, False: False}
    sides: dict[bool, np.ndarray] = {}
    for positive in (True, False):
        bk = h.positive_buckets() if positive else h.negative_buckets()
        counts = np.array(h.positive if positive else h.negative, dtype=np.float64, copy=True)
        for i, (lo, up, c) in enumerate(zip(bk.lower.tolist(), bk.upper.tolist(), bk.count.tolist(), strict=True)):
            if c == 0:
                continue
            has[positive] = True
            keep_all = up <= rhs if upper_trim else lo >= rhs
            partial = lo < rhs if upper_trim else up > rhs
            if keep_all:
                new_count += c
                new_sum += _midpoint(lo, up, positive, custom) * c
            elif partial:
                kc, mid = _bucket_trim(lo, up, c, rhs, upper_trim, positive, custom)
                new_count += kc
                new_sum += mid * kc
                if counts[i] != kc:
                    counts[i] = kc
                    trimmed = True
            else:
                counts[i] = 0.0
                trimmed = True
        sides[positive] = counts
    zc = h.zero_count
    if zc > 0:
        lo, up = -h.zero_threshold, h.zero_threshold
        if has[False] and not has[True]:
            up = 0.0
        if has[True] and not has[False]:
            lo = 0.0
        if upper_trim:
            if rhs <= lo:
                kc, mid = 0.0, 0.0
            elif rhs >= up:
                kc, mid = zc, (lo + up) / 2
            else:
                kc, mid = zc * (rhs - lo) / (up - lo), (lo + rhs) / 2
        elif rhs <= lo:
            kc, mid = zc, (lo + up) / 2
        elif rhs >= up:
            kc, mid = 0.0, 0.0
        else:
            kc, mid = zc * (up - rhs) / (up - lo), (rhs + up) / 2
        if kc != zc:
            zc = kc
            trimmed = True
        new_sum += mid * kc
        new_count += kc
    if not trimmed:
        return h
    return replace(h, count=new_count, sum=new_sum, zero_count=zc, positive=sides[True],
                   negative=sides[False]).compact()


def elem_binop(op: str, lf: float, rf: float, lh: FloatHistogram | None, rh: FloatHistogram | None) -> _Res:
    """One cell where at least one operand is a histogram."""
    if lh is None and rh is not None:
        if op == "*":
            return _Res(h=rh.mul(lf).compact())
        return _incompatible(_F, op, _H)
    if lh is not None and rh is None:
        if op in ("</", ">/"):
            return _Res(h=trim_buckets(lh, rf, op == "</"))
        if op == "*":
            return _Res(h=lh.mul(rf).compact())
        if op == "/":
            return _Res(h=lh.div(rf).compact())
        return _incompatible(_H, op, _F)
    assert lh is not None and rh is not None
    if op in ("+", "-"):
        try:
            r = lh.add(rh) if op == "+" else lh.sub(rh)
        except IncompatibleSchemaError:
            return _Res(keep=False, err=("warn", nc.incompatible_layout_binop(op)))
        h = r.histogram
        if op == "-":
            h = h.with_hint(CounterResetHint.GAUGE)
        info = nc.mismatched_custom("addition" if op == "+" else "subtraction") if r.nhcb_bounds_reconciled else None
        if r.counter_reset_collision:
            return _Res(keep=False, info=info,
                        err=("warn", nc.counter_reset_collision("addition" if op == "+" else "subtraction")))
        return _Res(h=h.compact(), info=info)
    if op == "==":
        return _Res(h=lh, keep=lh.equals(rh))
    if op == "!=":
        return _Res(h=lh, keep=not lh.equals(rh))
    return _incompatible(_H, op, _H)


def fix_cells(op: str, lv: np.ndarray, rv: np.ndarray, lh: ObjArr | None, rh: ObjArr | None,
              vals: np.ndarray, pres: BoolArr, run: BoolArr, return_bool: bool, ann: Annotations | None,
              keep_side: str = "left") -> tuple[np.ndarray, BoolArr, ObjArr | None]:
    """Recomputes the cells of ``vals``/``pres`` (shape of ``run``) whose operands include a
    histogram. ``keep_side`` names the operand a filtering comparison keeps (vector-scalar
    comparisons keep the vector side). Returns new arrays and the histogram cells (or None)."""
    shape = run.shape
    hm = np.zeros(shape, dtype=bool)
    if lh is not None:
        hm |= np.asarray(np.broadcast_to(lh, shape) != None)  # noqa: E711
    if rh is not None:
        hm |= np.asarray(np.broadcast_to(rh, shape) != None)  # noqa: E711
    cells = np.argwhere(hm & run)
    if op in TRIM_OPS:
        ff = run & ~hm
        if ff.any():
            pres = np.array(pres, dtype=bool, copy=True)
            pres[ff] = False
            if ann is not None:
                ann.info(nc.incompatible_types_binop(_F, op, _F))
    if cells.size == 0:
        return vals, pres, None
    vals = np.array(vals, dtype=np.float64, copy=True)
    pres = np.array(pres, dtype=bool, copy=True)
    out_h = np.full(shape, None, dtype=object)
    lvb = np.broadcast_to(lv, shape)
    rvb = np.broadcast_to(rv, shape)
    lhb = np.broadcast_to(lh, shape) if lh is not None else None
    rhb = np.broadcast_to(rh, shape) if rh is not None else None
    for c in cells:
        idx = tuple(int(x) for x in c)
        a = lhb[idx] if lhb is not None else None
        b = rhb[idx] if rhb is not None else None
        r = elem_binop(op, float(lvb[idx]), float(rvb[idx]), a, b)
        if ann is not None:
            if r.info:
                ann.info(r.info)
            if r.err:
                (ann.warn if r.err[0] == "warn" else ann.info)(r.err[1])
        if r.err:
            pres[idx] = False
            continue
        if return_bool:
            vals[idx] = 1.0 if r.keep else 0.0
            pres[idx] = True
            continue
        if not r.keep:
            pres[idx] = False
            continue
        h = r.h
        if op in ("==", "!="):
            h = a if keep_side == "left" else b
            if h is None:
                vals[idx] = float(lvb[idx]) if keep_side == "left" else float(rvb[idx])
        pres[idx] = True
        out_h[idx] = h
        if h is not None:
            vals[idx] = math.nan
    if not bool((out_h != None).any()):  # noqa: E711
        return vals, pres, None
    return vals, pres, out_h
