"""Shared machinery for the PromQL function library (``functions.py`` and the ``fn_*`` modules).

The range functions work on all series and all steps at once:

- ``flatten`` concatenates the raw samples of every series of a ``MatrixSteps`` into two flat
  arrays, and ``window_index`` finds, with one ``np.searchsorted``, the flat index range
  ``[lo, hi)`` of every (series, step) window.
- Functions that Prometheus computes with a sequential algorithm (Kahan/Neumaier sums, running
  means, regressions) are replayed over all windows together by ``RaggedWindows``: windows are
  ordered by length, and position ``p`` of every window still that long is processed in one
  vectorized operation. The loop runs over window *positions*, never over samples, and each
  window sees its samples in time order, so results equal Prometheus' bit for bit (barring
  fused multiply-adds the Go compiler may emit).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np

from clearsight.model.labels import METRIC_NAME, Labels, get
from clearsight.query.budget import checkpoint
from clearsight.query.promql.values import (
    F64,
    I64,
    BoolArr,
    MatrixSteps,
    QueryError,
    ScalarSteps,
    Value,
    VectorSteps,
)

# ---------------------------------------------------------------------------------------------
# argument helpers


def arg_vector(args: list[Value], i: int, func: str) -> VectorSteps:
    a = args[i]
    if not isinstance(a, VectorSteps):
        raise QueryError(f"expected instant vector as argument {i + 1} of {func}(), got {type(a).__name__}")
    return a


def arg_matrix(args: list[Value], i: int, func: str) -> MatrixSteps:
    a = args[i]
    if not isinstance(a, MatrixSteps):
        raise QueryError(f"expected range vector as argument {i + 1} of {func}(), got {type(a).__name__}")
    return a


def arg_scalar(args: list[Value], i: int, func: str, k: int) -> F64:
    """The per-step values of scalar argument ``i``, shape (k,)."""
    a = args[i]
    if not isinstance(a, ScalarSteps):
        raise QueryError(f"expected scalar as argument {i + 1} of {func}(), got {type(a).__name__}")
    vals = np.asarray(a.values, dtype=np.float64)
    if vals.shape == (1,) and k != 1:
        vals = np.full(k, vals[0])
    if vals.shape != (k,):
        raise QueryError(f"scalar argument {i + 1} of {func}() has {vals.shape[0]} steps, expected {k}")
    return vals


def arg_string(args: list[Value], i: int, func: str) -> str:
    a = args[i]
    if not isinstance(a, str):
        raise QueryError(f"expected string as argument {i + 1} of {func}(), got {type(a).__name__}")
    return a


def metric_name_of(labels: Labels) -> str:
    # Labels are sorted by name, so __name__ is nearly always first.
    if labels and labels[0][0] == METRIC_NAME:
        return labels[0][1]
    return get(labels, METRIC_NAME)


def is_valid_label_name(name: str) -> bool:
    """Prometheus 3 (UTF-8 validation): any non-empty valid UTF-8 string."""
    if name == "":
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. an undecodable byte kept by the parser
        return False
    return True


# ---------------------------------------------------------------------------------------------
# output helpers


def vector_result(
    labels: list[Labels],
    values: F64,
    present: BoolArr,
    drop_name: BoolArr | None,
    keep_empty: bool = False,
) -> VectorSteps:
    """Builds a VectorSteps, dropping series that have no value at any step."""
    k = values.shape[1] if values.ndim == 2 else 0
    if k and len(labels) > 0 and present.all():  # (most results: nothing to drop, nothing to blank)
        return VectorSteps(labels, values, present, drop_name)
    if not keep_empty and len(labels) > 0:
        rows = present.any(axis=1)
        if not rows.all():
            idx = np.flatnonzero(rows)
            labels = [labels[i] for i in idx]
            values = values[idx]
            present = present[idx]
            if drop_name is not None:
                drop_name = drop_name[idx]
    if not labels:
        return VectorSteps.empty(k)
    values = np.where(present, values, np.nan) if not present.all() else values
    return VectorSteps(labels, values, present, drop_name)


def drop_all(n: int) -> BoolArr:
    return np.ones(n, dtype=bool)


def input_drop_name(v: VectorSteps) -> BoolArr:
    if v.drop_name is None:
        return np.zeros(v.num_series, dtype=bool)
    return np.asarray(v.drop_name, dtype=bool)


# ---------------------------------------------------------------------------------------------
# Go-compatible number formatting (annotations and label values must match Prometheus' text)


def go_format_g(x: float, prec: int = -1) -> str:
    """Formats like Go's ``strconv.FormatFloat(x, 'g', prec, 64)`` (``%g`` when prec == -1)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    if prec < 0:
        sign, digits, exp = Decimal(repr(x)).as_tuple()
        ds = "".join(str(d) for d in digits).rstrip("0") or "0"
        # Decimal exponent of the leading digit.
        assert isinstance(exp, int)
        lead_exp = exp + len(digits) - 1
        eprec = 6
    else:
        p = max(prec, 1)
        s = f"{abs(x):.{p - 1}e}"
        mant, e = s.split("e")
        ds = mant.replace(".", "").rstrip("0") or "0"
        lead_exp = int(e)
        sign = 1 if x < 0 else 0
        eprec = p
        if eprec > len(ds) and len(ds) >= lead_exp + 1:
            eprec = len(ds)
    neg = "-" if sign else ""
    if lead_exp < -4 or lead_exp >= eprec:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        es = f"{abs(lead_exp):02d}"
        return f"{neg}{mant}e{'-' if lead_exp < 0 else '+'}{es}"
    if lead_exp < 0:
        return f"{neg}0.{'0' * (-lead_exp - 1)}{ds}"
    int_part = ds[: lead_exp + 1].ljust(lead_exp + 1, "0")
    frac = ds[lead_exp + 1 :]
    return f"{neg}{int_part}{'.' + frac if frac else ''}"


def format_openmetrics_float(x: float) -> str:
    """Prometheus' ``labels.FormatOpenMetricsFloat``."""
    if x == 1:
        return "1.0"
    if x == 0:
        return "0.0"
    if x == -1:
        return "-1.0"
    s = go_format_g(x)
    if math.isnan(x) or math.isinf(x) or "e" in s or "." in s:
        return s
    return s + ".0"


def parse_go_float(s: str) -> float:
    """Parses like Go's ``strconv.ParseFloat(s, 64)``; raises ValueError when Go would fail."""
    if s == "" or s != s.strip() or "_" in s:
        raise ValueError(s)
    low = s.lower().lstrip("+-")
    if low.startswith("0x"):
        return float.fromhex(s)
    if low in ("inf", "infinity", "nan") or all(c in "0123456789.e+-" for c in low):
        return float(s)
    raise ValueError(s)


# ---------------------------------------------------------------------------------------------
# Neumaier-compensated summation, as Prometheus' util/kahansum.Inc (vectorized)


def kahan_inc(inc: F64, s: F64, c: F64) -> tuple[F64, F64]:
    with np.errstate(invalid="ignore", over="ignore"):
        t = s + inc
        big = np.abs(s) >= np.abs(inc)
        corr = np.where(big, (s - t) + inc, (inc - t) + s)
        c2 = np.where(np.isinf(t), 0.0, c + corr)
    return t, c2


# ---------------------------------------------------------------------------------------------
# flat sample arrays and windows


@dataclass
class Flat:
    """All samples of a MatrixSteps, concatenated. ``starts[i]:ends[i]`` is series ``i``."""

    t: I64
    v: F64
    starts: I64
    ends: I64
    # search keys cached by ``window_index``: (tmin, span, keys)
    _keys: tuple[int, int, I64] | None = None

    @property
    def size(self) -> int:
        return int(self.t.shape[0])


def flatten(m: MatrixSteps) -> Flat:
    """The samples of ``m`` concatenated (computed once per MatrixSteps)."""
    if isinstance(m.flat_cache, Flat):
        return m.flat_cache
    n = m.num_series
    lengths = np.array(list(map(len, m.timestamps)), dtype=np.int64)
    ends = np.cumsum(lengths, dtype=np.int64)
    starts = ends - lengths
    if n == 0:
        flat = Flat(np.zeros(0, np.int64), np.zeros(0, np.float64), starts, ends)
    else:
        t = np.concatenate(m.timestamps, dtype=np.int64, casting="same_kind")
        v = np.concatenate(m.values, dtype=np.float64, casting="same_kind")
        flat = Flat(t, v, starts, ends)
    m.flat_cache = flat
    return flat


# Keys of different series are placed in disjoint bands; the band width is fixed generously so
# one set of keys serves every bound of a query (bounds may reach a lookback beyond the data).
_BAND_MARGIN = 1 << 40  # ~35 years of milliseconds


def window_index(flat: Flat, bound: I64, side_right: bool = True) -> I64:
    """For every series ``i`` and step ``j``: the flat index of the first sample of series ``i``
    with ``t > bound[j]`` (``side_right``) or ``t >= bound[j]``. Shape (n, k)."""
    n = flat.starts.shape[0]
    k = bound.shape[0]
    side: Literal["left", "right"] = "right" if side_right else "left"
    if n == 0 or k == 0:
        return np.zeros((n, k), dtype=np.int64)
    if flat.size == 0:
        return np.repeat(flat.starts[:, None], k, axis=1)
    if k >= _PER_SERIES_MIN_STEPS:
        return _window_index_per_series(flat, bound, side)
    if flat._keys is None:
        tmin = int(flat.t.min()) - _BAND_MARGIN
        span = int(flat.t.max()) + _BAND_MARGIN - tmin + 1
        if span * (n + 1) < (1 << 62):
            sid = np.repeat(np.arange(n, dtype=np.int64), flat.ends - flat.starts)
            flat._keys = (tmin, span, (flat.t - tmin) + sid * span)
        else:
            flat._keys = (0, 0, flat.t)
    tmin, span, keys = flat._keys
    bmin, bmax = int(bound.min()), int(bound.max())
    if span and tmin <= bmin and bmax < tmin + span:
        # One global search over all series.
        q = (bound - tmin)[None, :] + (np.arange(n, dtype=np.int64) * span)[:, None]
        return np.searchsorted(keys, q.ravel(), side=side).reshape(n, k).astype(np.int64)
    return _window_index_per_series(flat, bound, side)


# With many steps, searching each series' own (cache-resident) timestamps beats one search over
# all series' keys; with few steps the global search avoids a Python call per series.
_PER_SERIES_MIN_STEPS = 512


def _window_index_per_series(flat: Flat, bound: I64, side: Literal["left", "right"]) -> I64:
    n = flat.starts.shape[0]
    out = np.empty((n, bound.shape[0]), dtype=np.int64)
    t = flat.t
    for i, (s, e) in enumerate(zip(flat.starts.tolist(), flat.ends.tolist(), strict=True)):
        out[i] = s + np.searchsorted(t[s:e], bound, side=side)
    return out


def series_start_matrix(flat: Flat, k: int) -> I64:
    return np.repeat(flat.starts[:, None], k, axis=1)


class RaggedWindows:
    """Replays a sequential per-window algorithm over many windows at once.

    Windows are given by flat start index ``lo`` and length ``cnt`` (1-D, one entry per window).
    Iterating yields ``(p, a, idx)``: at position ``p``, the first ``a`` windows in ``order``
    (those with ``cnt > p``) have their ``p``-th sample at flat index ``idx``. State arrays
    must be kept in ``order``; ``unsort`` maps them back.
    """

    def __init__(self, lo: I64, cnt: I64) -> None:
        self.order = np.argsort(-cnt, kind="stable")
        self.lo = lo[self.order]
        self.cnt = cnt[self.order]
        self.size = int(lo.shape[0])
        self.max_len = int(self.cnt[0]) if self.size else 0
        # number of windows with cnt > p, for p = 0..max_len-1
        neg = -self.cnt
        self._active = np.searchsorted(neg, -np.arange(self.max_len, dtype=np.int64), side="left")

    def __iter__(self) -> Iterator[tuple[int, int, I64]]:
        for p in range(self.max_len):
            if p % 256 == 255:
                checkpoint()  # the running query's deadline and cancellation
            a = int(self._active[p])
            yield p, a, self.lo[:a] + p

    def unsort(self, arr: F64) -> F64:
        out: F64 = np.empty_like(arr)
        out[self.order] = arr
        return out


# Elements of one chunk of padded windows (2 MiB of float64): with a checkpoint per chunk, a query
# thread reaches its next checkpoint within a few ms (writes first, query/write_priority.py).
WINDOW_CHUNK_ELEMS = 1 << 18


def padded_windows(v: F64, lo: I64, cnt: I64, max_elems: int = WINDOW_CHUNK_ELEMS) -> Iterator[tuple[slice, F64]]:
    """Yields chunks ``(rows, X)`` where ``X[r, p]`` is sample ``p`` of window ``rows[r]`` (NaN
    padded beyond the window's length)."""
    w = int(lo.shape[0])
    if w == 0:
        return
    width = max(int(cnt.max()), 1)
    step = max(1, max_elems // width)
    vext = np.append(v, np.nan)
    pos = np.arange(width, dtype=np.int64)
    for s in range(0, w, step):
        checkpoint()  # the running query's deadline and cancellation
        rows = slice(s, min(w, s + step))
        idx = lo[rows, None] + pos[None, :]
        valid = pos[None, :] < cnt[rows, None]
        idx = np.where(valid, idx, v.shape[0])
        yield rows, vext[idx]
