"""Binary operators on native histogram samples (Prometheus' ``vectorElemBinop``).

The vectorized float code in ``binops`` computes every cell as if both operands were floats;
``fix_cells`` then recomputes the cells where an operand is a histogram, one by one:

- histogram ``*`` float (either side), histogram ``/`` float: scaled histogram;
- histogram ``</`` float, histogram ``>/`` float: the histogram trimmed at the float
  (:func:`clearsight.model.histogram_math.trim_buckets`); a float-float cell of a trim operator
  is dropped as incompatible;
- histogram ``+``/``-`` histogram (the difference is a gauge histogram), ``==``/``!=`` compare
  histograms exactly (the result keeps the left histogram);
- everything else is an incompatible combination: the sample is dropped with the info
  "incompatible sample types encountered for binary operator".

Errors and warnings (conflicting counter resets, exponential mixed with custom buckets) drop the
sample as in Prometheus; "mismatched custom buckets were reconciled" is an info on a kept sample.
"""

from __future__ import annotations

import math

import numpy as np

from clearsight.model.histogram import CounterResetHint, FloatHistogram, IncompatibleSchemaError
from clearsight.model.histogram_math import trim_buckets
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
