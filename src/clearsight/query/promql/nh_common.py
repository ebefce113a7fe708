"""Shared pieces of the engine's native histogram support: annotation texts, stripping histogram
samples for float-only operators, and per-window bookkeeping over range vectors.

Histogram samples travel beside the float values (``VectorSteps.hist``, ``MatrixSteps.hists``);
the float code paths never see them: the engine strips them (``floats_only_value``) before calling
an operator that works on floats only, and the ``nh_*`` modules handle the histogram part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.query.promql.fn_common import Flat, flatten, window_index
from clearsight.query.promql.values import I64, BoolArr, MatrixSteps, ObjArr, Value, VectorSteps
from clearsight.query.promql.vecutil import floats_only, go_quote

W = "PromQL warning: "
I = "PromQL info: "  # noqa: E741


def metric_name(labels: Labels) -> str:
    for n, v in labels:
        if n == "__name__":
            return v
    return ""


def mixed_floats_histograms(name: str) -> str:
    return f"{W}encountered a mix of histograms and floats for metric name {go_quote(name)}"


MIXED_FLOATS_HISTOGRAMS_AGG = f"{W}encountered a mix of histograms and floats for aggregation"


def not_counter(name: str) -> str:
    return f"{W}this native histogram metric is not a counter: {go_quote(name)}"


def not_gauge(name: str) -> str:
    return f"{W}this native histogram metric is not a gauge: {go_quote(name)}"


def mixed_exp_custom(name: str) -> str:
    return (f"{W}vector contains a mix of histograms with exponential and custom buckets schemas for metric "
            f"name {go_quote(name)}")


def ignored_in_mixed_range(name: str) -> str:
    return f"{I}ignored histograms in a range containing both floats and histograms for metric name {go_quote(name)}"


def ignored_in_aggregation(op: str) -> str:
    return f"{I}ignored histogram in {op} aggregation"


def counter_reset_collision(operation: str) -> str:
    return f"{W}conflicting counter resets during histogram {operation}"


def mismatched_custom(operation: str) -> str:
    return f"{I}mismatched custom buckets were reconciled during {operation}"


def incompatible_types_binop(lhs: str, op: str, rhs: str) -> str:
    return f'{I}incompatible sample types encountered for binary operator "{op}": {lhs} {op} {rhs}'


def incompatible_layout_binop(op: str) -> str:
    return f"{W}incompatible bucket layout encountered for binary operator {op}"


def _with_name(msg: str, name: str) -> str:
    return f"{msg} for metric name {go_quote(name)}" if name else msg


def quantile_nan_result(name: str) -> str:
    return _with_name(f"{I}input to histogram_quantile has NaN observations, result is NaN", name)


def quantile_nan_skew(name: str) -> str:
    return _with_name(f"{I}input to histogram_quantile has NaN observations, result is skewed higher", name)


def fraction_nans(name: str) -> str:
    return _with_name(f"{I}input to histogram_fraction has NaN observations, which are excluded from all fractions",
                      name)


# ------------------------------------------------------------------------------------------ stripping


def strip_matrix(m: MatrixSteps) -> MatrixSteps:
    """``m`` without histogram samples (series left without samples are dropped)."""
    if m.hists is None:
        return m
    labels: list[Labels] = []
    tss: list[I64] = []
    vals: list[np.ndarray] = []
    for i, lbl in enumerate(m.labels):
        h = m.hists[i]
        ts, vs = m.timestamps[i], m.values[i]
        if h is not None:
            keep = h == None  # noqa: E711
            ts, vs = ts[keep], vs[keep]
        if ts.size == 0:
            continue
        labels.append(lbl)
        tss.append(ts)
        vals.append(vs)
    return MatrixSteps(labels, tss, vals, m.window_end, m.range_ms, m.anchored, m.smoothed, m.lookback_ms, None)


def floats_only_value(v: Value) -> Value:
    if isinstance(v, VectorSteps):
        return floats_only(v)
    if isinstance(v, MatrixSteps):
        return strip_matrix(v)
    return v


def has_histograms(v: Value) -> bool:
    if isinstance(v, VectorSteps):
        return v.has_hist()
    if isinstance(v, MatrixSteps):
        return v.has_hist()
    return False


# ------------------------------------------------------------------------------------------ windows


@dataclass
class HWin:
    """Windows ``(end - range, end]`` of a range vector with the float/histogram split per window.

    ``lo``/``hi`` (n, k) are flat sample indices (``flat.t[lo:hi]`` is the window), ``nh``/``nf``
    the number of histogram / float samples in it; ``fh`` the flat histogram column."""

    m: MatrixSteps
    flat: Flat
    lo: I64
    hi: I64
    fh: ObjArr
    is_h: BoolArr
    nh: I64
    nf: I64

    @property
    def shape(self) -> tuple[int, int]:
        return self.lo.shape[0], self.lo.shape[1]

    def hists(self, i: int, j: int) -> tuple[I64, list[FloatHistogram]]:
        a, b = int(self.lo[i, j]), int(self.hi[i, j])
        return self.flat.t[a:b], list(self.fh[a:b])


def hwindows(m: MatrixSteps, extended: bool = False) -> HWin:
    """Per-step windows; ``extended``: Prometheus' anchored/smoothed fetch range, i.e. the window
    start moved back by the lookback (and, when smoothed, its end forward by it)."""
    flat = flatten(m)
    e = np.asarray(m.window_end, dtype=np.int64)
    if extended:
        lb = int(m.lookback_ms)
        lo = window_index(flat, e - int(m.range_ms) - lb)
        hi = window_index(flat, e + (lb if m.smoothed else 0))
    else:
        lo = window_index(flat, e - int(m.range_ms))
        hi = window_index(flat, e)
    if m.anchored and flat.size and not extended:
        # The anchor: the last sample at or before the range start (within the lookback), kept
        # only when some sample follows it inside the range.
        starts = flat.starts[:, None]
        prev = np.maximum(lo - 1, 0)
        has_anchor = (lo - 1 >= starts) & (flat.t[prev] > (e - int(m.range_ms) - int(m.lookback_ms))[None, :])
        lo = np.where(has_anchor & (hi > lo), lo - 1, lo)
        lo = np.where(hi > lo, lo, hi)
    parts: list[ObjArr] = []
    for i in range(m.num_series):
        h = m.hist_of(i)
        parts.append(h if h is not None else np.full(len(m.timestamps[i]), None, dtype=object))
    fh = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    is_h = np.asarray(fh != None, dtype=bool)  # noqa: E711
    cum = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(is_h, dtype=np.int64)])
    nh = cum[hi] - cum[lo]
    nf = (hi - lo) - nh
    return HWin(m, flat, lo, hi, fh, is_h, nh, nf)


@dataclass
class Out:
    """An (n, k) result being assembled from a float part and a histogram part."""

    labels: list[Labels]
    values: np.ndarray
    present: BoolArr
    hist: ObjArr

    @staticmethod
    def new(labels: list[Labels], k: int) -> Out:
        n = len(labels)
        return Out(list(labels), np.full((n, k), np.nan), np.zeros((n, k), dtype=bool),
                   np.full((n, k), None, dtype=object))

    def take_floats(self, fout: Value | None, allow: BoolArr | None) -> None:
        """Copies the float result rows (matched by labels) where ``allow`` (n, k) holds."""
        if not isinstance(fout, VectorSteps):
            return
        row_of = {lbl: i for i, lbl in enumerate(self.labels)}
        for r, lbl in enumerate(fout.labels):
            i = row_of.get(lbl)
            if i is None:
                continue
            take = fout.present[r].copy()
            if allow is not None:
                take &= allow[i]
            if fout.hist is not None:
                take &= fout.hist[r] == None  # noqa: E711
            self.values[i, take] = fout.values[r, take]
            self.present[i, take] = True

    def set_hist(self, i: int, j: int, h: FloatHistogram) -> None:
        self.hist[i, j] = h
        self.present[i, j] = True
        self.values[i, j] = np.nan

    def set_float(self, i: int, j: int, f: float) -> None:
        self.values[i, j] = f
        self.present[i, j] = True

    def result(self, drop_name: bool) -> VectorSteps:
        from clearsight.query.promql.vecutil import compact

        n = len(self.labels)
        hist = self.hist if bool((self.hist != None).any()) else None  # noqa: E711
        return compact(VectorSteps(self.labels, self.values, self.present, np.full(n, drop_name), None, hist))


# ------------------------------------------------------------------------------ stats decoding


def stats_selectors(expr: object) -> set[int]:
    """ids of the vector selectors Prometheus reads with its ``HistogramStatsIterator``: those
    below ``histogram_count``/``histogram_sum``/``histogram_avg`` with no subquery, trim operator
    or ``histogram_quantile(s)``/``histogram_fraction`` in between (``detectHistogramStatsDecoding``).
    """
    from clearsight.query.promql.ast import BinaryExpr, Call, SubqueryExpr, VectorSelector
    from clearsight.query.promql.engine import walk_nodes

    out: set[int] = set()
    parents: dict[int, object] = {}
    root = expr
    for node in walk_nodes(root):  # type: ignore[arg-type]
        for child in _child_nodes(node):
            parents[id(child)] = node
    for node in walk_nodes(root):  # type: ignore[arg-type]
        if not isinstance(node, VectorSelector):
            continue
        skip = False
        p = parents.get(id(node))
        while p is not None:
            if isinstance(p, SubqueryExpr):
                skip = False
                break
            if isinstance(p, Call):
                if p.func in ("histogram_count", "histogram_sum", "histogram_avg"):
                    skip = True
                elif p.func in ("histogram_quantile", "histogram_quantiles", "histogram_fraction"):
                    skip = False
                    break
            if isinstance(p, BinaryExpr) and p.op in ("</", ">/"):
                skip = False
                break
            p = parents.get(id(p))
        if skip:
            out.add(id(node))
    return out


def _child_nodes(node: object) -> list[object]:
    fields = getattr(node, "__dataclass_fields__", None)
    if fields is None:
        return []
    out: list[object] = []
    for name in fields:
        c = getattr(node, name, None)
        if isinstance(c, list):
            out.extend(x for x in c if hasattr(x, "__dataclass_fields__"))
        elif hasattr(c, "__dataclass_fields__"):
            out.append(c)
    return out


def stats_decode(hs: ObjArr) -> ObjArr:
    """One series' histogram samples (in time order) as the stats iterator returns them: only
    schema, count and sum, with an unknown counter reset hint replaced by the result of reset
    detection against the previous histogram read (none for the first)."""
    from dataclasses import replace as _replace

    from clearsight.model.histogram import CounterResetHint

    out = np.full(hs.shape, None, dtype=object)
    last: FloatHistogram | None = None
    for i, h in enumerate(hs.tolist()):
        if h is None:
            continue
        hint = h.counter_reset_hint
        if hint == CounterResetHint.UNKNOWN and last is not None:
            hint = CounterResetHint.RESET if h.detect_reset(last) else CounterResetHint.NOT_RESET
        out[i] = FloatHistogram(schema=h.schema, count=h.count, sum=h.sum, counter_reset_hint=hint,
                                custom_values=h.custom_values)
        last = _replace(h, counter_reset_hint=hint)
    return out
