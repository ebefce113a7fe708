"""PromQL's per-histogram math on :class:`FloatHistogram` (Prometheus' semantics, no I/O).

``histogram_count/sum/avg/stddev/stdvar/fraction/quantile`` for one histogram each, and the
conversion of classic ``le`` buckets to a native histogram with custom buckets (NHCB) as
promqltest's ``load_with_nhcb`` and Prometheus' ``convertnhcb`` do it.

Annotations are returned as :class:`HistInfo` flags; the engine turns them into messages with the
expression's position (e.g. ``QUANTILE_NAN_RESULT`` -> "PromQL info: histogram_quantile() ..."),
because only it knows the metric name and the position.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from enum import Flag, auto

import numpy as np

from clearsight.model.histogram import (
    CUSTOM_BUCKETS_SCHEMA,
    F64,
    FloatHistogram,
    fdiv,
    kahan_inc,
)
from clearsight.model.labels import Labels


class HistInfo(Flag):
    NONE = 0
    #: histogram_quantile hit NaN observations: the result is NaN.
    QUANTILE_NAN_RESULT = auto()
    #: histogram_quantile: NaN observations skew the result.
    QUANTILE_NAN_SKEW = auto()
    #: histogram_fraction: NaN observations are not counted in any bucket.
    FRACTION_NANS = auto()


def histogram_count(h: FloatHistogram) -> float:
    return h.count


def histogram_sum(h: FloatHistogram) -> float:
    return h.sum


def histogram_avg(h: FloatHistogram) -> float:
    return fdiv(h.sum, h.count)


def histogram_stdvar(h: FloatHistogram) -> float:
    """Estimated variance of the observations: bucket midpoints (geometric mean for exponential
    buckets, arithmetic for custom buckets, 0 for the zero bucket) weighted by counts."""
    mean = fdiv(h.sum, h.count)
    b = h.all_buckets()
    custom = h.uses_custom_buckets
    var = 0.0
    comp = 0.0
    with np.errstate(all="ignore"):
        if custom:
            vals = (b.upper + b.lower) / 2.0
        else:
            vals = np.sqrt(b.upper * b.lower)
            vals = np.where(b.upper < 0, -vals, vals)
            vals = np.where((b.lower <= 0) & (b.upper >= 0), 0.0, vals)
        for val, c in zip(vals.tolist(), b.count.tolist(), strict=True):
            if c == 0:
                continue
            delta = val - mean
            var, comp = kahan_inc(c * delta * delta, var, comp)
    var += comp
    return fdiv(var, h.count)


def histogram_stddev(h: FloatHistogram) -> float:
    v = histogram_stdvar(h)
    if math.isnan(v) or v < 0:
        return math.nan
    return math.sqrt(v)


def histogram_quantile(q: float, h: FloatHistogram) -> tuple[float, HistInfo]:
    """Prometheus' ``HistogramQuantile`` for one native histogram.

    Interpolates linearly in custom buckets and in the zero bucket, exponentially (linearly in
    log2 space) in exponential buckets; iterates from the top for q >= 0.5 (unless the sum is NaN).
    """
    if q < 0:
        return -math.inf, HistInfo.NONE
    if q > 1:
        return math.inf, HistInfo.NONE
    if h.count == 0 or math.isnan(q):
        return math.nan, HistInfo.NONE
    info = HistInfo.NONE
    b = h.all_buckets()
    lo_l, up_l, c_l = b.lower.tolist(), b.upper.tolist(), b.count.tolist()
    forward = math.isnan(h.sum) or q < 0.5
    if forward:
        order = list(range(len(c_l)))
        rank = q * h.count
    else:
        order = list(range(len(c_l) - 1, -1, -1))
        rank = (1 - q) * h.count
    count = 0.0
    lower = upper = bcount = 0.0
    pos = -1
    for pos_i, k in enumerate(order):
        pos = pos_i
        lower, upper, bcount = lo_l[k], up_l[k], c_l[k]
        if bcount == 0:
            continue
        count += bcount
        if count >= rank:
            break
    custom = h.uses_custom_buckets
    if not custom and lower < 0 and upper > 0:
        nneg, npos = len(h.negative), len(h.positive)
        if nneg == 0 and npos > 0:
            lower = 0.0
        elif npos == 0 and nneg > 0:
            upper = 0.0
    elif custom:
        if lower == -math.inf:
            if upper <= 0:
                return upper, info
            lower = 0.0
        elif upper == math.inf:
            return lower, info
    count = min(count, h.count)
    if count < rank:
        if math.isnan(h.sum):
            return math.nan, HistInfo.QUANTILE_NAN_RESULT
        return upper, info
    if forward:
        rank -= count - bcount
    else:
        rank = count - rank
    if math.isnan(h.sum):
        for k in order[pos + 1 :]:
            count += c_l[k]
        if count < h.count:
            info |= HistInfo.QUANTILE_NAN_SKEW
    fraction = fdiv(rank, bcount)
    if custom or (lower <= 0 and upper >= 0):
        return lower + (upper - lower) * fraction, info
    with np.errstate(all="ignore"):
        log_lower = float(np.log2(abs(lower)))
        log_upper = float(np.log2(abs(upper)))
        if lower > 0:
            return float(np.exp2(log_lower + (log_upper - log_lower) * fraction)), info
        return -float(np.exp2(log_upper + (log_lower - log_upper) * (1 - fraction))), info


def _fraction_below(v: float, lower: float, upper: float, linear: bool) -> float:
    with np.errstate(all="ignore"):
        if linear:
            return float((np.float64(v) - lower) / (np.float64(upper) - lower))
        log_lower = float(np.log2(abs(lower)))
        log_upper = float(np.log2(abs(upper)))
        log_v = float(np.log2(abs(v)))
        if v > 0:
            return float(np.float64(log_v - log_lower) / np.float64(log_upper - log_lower))
        return 1 - float(np.float64(log_v - log_upper) / np.float64(log_lower - log_upper))


def _interp_rank(v: float, rank: float, lower: float, upper: float, count: float, linear: bool) -> float:
    """Cumulative count estimated at ``v`` (strictly inside this bucket; ``rank`` is below it)."""
    if linear:
        if lower == -math.inf:
            # No interpolation in a bucket reaching -Inf: it counts fully (it is the first bucket).
            return count
        return rank + count * _fraction_below(v, lower, upper, True)
    return rank + count * _fraction_below(v, lower, upper, False)


def histogram_fraction(lower: float, upper: float, h: FloatHistogram) -> tuple[float, HistInfo]:
    """Estimated fraction of observations in ``[lower, upper]`` (Prometheus' ``HistogramFraction``)."""
    if h.count == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan, HistInfo.NONE
    if lower >= upper:
        return 0.0, HistInfo.NONE
    info = HistInfo.NONE
    b = h.all_buckets()
    lo_l, up_l, c_l = b.lower.tolist(), b.upper.tolist(), b.count.tolist()
    custom = h.uses_custom_buckets
    nneg, npos = len(h.negative), len(h.positive)
    count = rank = lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    k = -1
    for k in range(len(c_l)):
        blo, bup, bc = lo_l[k], up_l[k], c_l[k]
        count += bc
        zero_bucket = False
        if blo <= 0 and bup >= 0:
            zero_bucket = True
            if nneg == 0 and npos > 0:
                blo = 0.0
            elif npos == 0 and nneg > 0:
                bup = 0.0

        if not lower_set and blo >= lower:
            lower_rank = rank
            lower_set = True
        if not upper_set and blo >= upper:
            upper_rank = rank
            upper_set = True
        if lower_set and upper_set:
            break
        if not lower_set and blo < lower < bup:
            lower_rank = _interp_rank(lower, rank, blo, bup, bc, custom or zero_bucket)
            lower_set = True
        if not upper_set and blo < upper < bup:
            upper_rank = _interp_rank(upper, rank, blo, bup, bc, custom or zero_bucket)
            upper_set = True
        if lower_set and upper_set:
            break
        rank += bc
    if math.isnan(h.sum):
        for kk in range(k + 1, len(c_l)):
            count += c_l[kk]
        if count < h.count:
            info |= HistInfo.FRACTION_NANS
    else:
        count = h.count
    if not lower_set or lower_rank > count:
        lower_rank = count
    if not upper_set or upper_rank > count:
        upper_rank = count
    return fdiv(upper_rank - lower_rank, h.count), info


# ------------------------------------------------------------------------------ classic -> NHCB


class NHCBConversionError(ValueError):
    pass


class ClassicHistogramBuilder:
    """Collects one classic histogram's ``le`` buckets, count and sum at one timestamp and converts
    them to an NHCB (Prometheus' ``convertnhcb.TempHistogram``).

    Bucket counts are cumulative; the +Inf bucket is added from the count if missing; without a
    ``_count`` series the highest bucket gives the count.
    """

    def __init__(self) -> None:
        self.les: list[float] = []
        self.counts: list[float] = []
        self.count = 0.0
        self.sum = 0.0
        self.has_count = False
        self.err: str | None = None

    def set_bucket_count(self, le: float, count: float) -> None:
        if self.err is not None:
            return
        if math.isnan(le):
            self.err = "bucket boundary must not be NaN"
            return
        if count < 0:
            self.err = f"bucket count must be non-negative: le={le:g}, count={count:g}"
            return
        i = bisect.bisect_left(self.les, le)
        if i < len(self.les) and self.les[i] == le:
            return  # first value for a boundary wins
        if i > 0 and count < self.counts[i - 1]:
            self.err = f"count is not cumulative: {count:g} < {self.counts[i - 1]:g}"
            return
        if i < len(self.les) and count > self.counts[i]:
            self.err = f"count is not cumulative: {count:g} > {self.counts[i]:g}"
            return
        self.les.insert(i, le)
        self.counts.insert(i, count)

    def set_count(self, count: float) -> None:
        if self.err is not None:
            return
        if count < 0:
            self.err = f"count must be non-negative: count={count:g}"
            return
        self.count = count
        self.has_count = True

    def set_sum(self, total: float) -> None:
        if self.err is None:
            self.sum = total

    def convert(self) -> FloatHistogram:
        """The NHCB (compacted), or :class:`NHCBConversionError`."""
        if self.err is not None:
            raise NHCBConversionError(self.err)
        les = list(self.les)
        counts = list(self.counts)
        count = self.count
        if not self.has_count and les:
            count = counts[-1]
        if not les or les[-1] != math.inf:
            les.append(math.inf)
            counts.append(count)
        if count != counts[-1]:
            raise NHCBConversionError(
                f"count mismatch: count={count:g} != le={les[-1]:g} count={counts[-1]:g}"
            )
        deltas: list[float] = []
        prev = 0.0
        for c in counts:
            deltas.append(c - prev)
            prev = c
        h = FloatHistogram.build(
            schema=CUSTOM_BUCKETS_SCHEMA,
            count=count,
            sum=self.sum,
            positive=dict(enumerate(deltas)),
            custom_values=les[:-1],
        )
        return h.compact()


def classic_to_nhcb(
    buckets: dict[float, float], count: float | None = None, total: float = 0.0
) -> FloatHistogram:
    """Convert cumulative ``{le: count}`` (+ optional ``_count``, ``_sum``) to an NHCB."""
    b = ClassicHistogramBuilder()
    for le, c in buckets.items():
        b.set_bucket_count(le, c)
    if count is not None:
        b.set_count(count)
    b.set_sum(total)
    return b.convert()


def histogram_base_name(metric_name: str) -> tuple[str, str]:
    """``("bucket"|"sum"|"count"|"", base name)`` for a classic histogram series name."""
    for suffix in ("_bucket", "_sum", "_count"):
        if metric_name.endswith(suffix):
            return suffix[1:], metric_name[: -len(suffix)]
    return "", metric_name


def _go_parse_float(s: str) -> float | None:
    """Go's ``strconv.ParseFloat`` for label values (None when it would fail)."""
    if "_" in s or s != s.strip() or not s:
        return None
    try:
        return float(s)
    except ValueError:
        pass
    if s.lower().lstrip("+-").startswith("0x"):
        try:
            return float.fromhex(s)
        except ValueError:
            return None
    return None


def nhcb_series_from_classic(
    series: Iterable[tuple[Labels, Iterable[tuple[int, float]]]],
) -> list[tuple[Labels, list[tuple[int, FloatHistogram]]]]:
    """What promqltest's ``load_with_nhcb`` adds: one NHCB series per classic histogram.

    ``series`` are the float series of one load (labels, ``(timestamp, value)`` samples, no
    omitted points). ``<name>_bucket`` series with a parseable, non-NaN ``le`` label, and
    ``<name>_count`` / ``<name>_sum`` series, are grouped by their labels with ``__name__`` set to
    ``<name>`` and ``le`` removed; at every timestamp where any of them has a sample one NHCB is
    built (:class:`ClassicHistogramBuilder`). Raises :class:`NHCBConversionError` like the load
    fails in Prometheus. The results are sorted by labels, samples by time.
    """
    groups: dict[Labels, dict[int, ClassicHistogramBuilder]] = {}
    for labels, samples in series:
        name = next((v for n, v in labels if n == "__name__"), "")
        kind, base = histogram_base_name(name)
        if not kind:
            continue
        le: float | None = None
        if kind == "bucket":
            raw = next((v for n, v in labels if n == "le"), None)
            if raw is None:
                raise NHCBConversionError(f"expected bucket label in metric {labels}")
            le = _go_parse_float(raw)
            if le is None or math.isnan(le):
                continue
        key = tuple(sorted((n, base if n == "__name__" else v) for n, v in labels if n != "le"))
        by_ts = groups.setdefault(key, {})
        for t, v in samples:
            b = by_ts.get(t)
            if b is None:
                b = by_ts[t] = ClassicHistogramBuilder()
            if kind == "bucket":
                assert le is not None
                b.set_bucket_count(le, v)
            elif kind == "count":
                b.set_count(v)
            else:
                b.set_sum(v)
    out: list[tuple[Labels, list[tuple[int, FloatHistogram]]]] = []
    for key in sorted(groups):
        by_ts = groups[key]
        out.append((key, [(t, by_ts[t].convert()) for t in sorted(by_ts)]))
    return out


# ------------------------------------------------------------------------------ trim operators


def _fraction_in_bucket(v: float, lower: float, upper: float, count: float, linear: bool) -> float:
    """Observations of a bucket estimated at or below ``v``."""
    if v <= lower:
        return 0.0
    if v >= upper:
        return count
    return count * _fraction_below(v, lower, upper, linear)


def _midpoint(lower: float, upper: float, positive: bool, linear: bool) -> float:
    """Representative value of the surviving part ``[lower, upper]`` of a bucket."""
    if math.isinf(lower):
        if math.isinf(upper):
            return 0.0
        return upper / 2 if upper > 0 else upper
    if math.isinf(upper):
        return lower
    if linear:
        return (lower + upper) / 2
    g = math.sqrt(abs(lower * upper))
    return g if positive else -g


def _trim_infinite_bucket(
    upper_trim: bool, lower: float, upper: float, count: float, rhs: float
) -> tuple[float, float]:
    """(kept count, midpoint) for a custom bucket reaching -Inf or +Inf (no interpolation there)."""

    def finite_or_zero(x: float) -> float:
        return 0.0 if math.isinf(x) else x

    if lower == -math.inf:
        if upper_trim:
            if rhs >= upper:
                return count, 0.0
            if rhs > 0 and upper > 0 and not math.isinf(upper):
                return count * rhs / upper, rhs / 2
            if upper <= 0:
                return count, rhs
            return 0.0, finite_or_zero(upper)
        if rhs <= lower:
            return count, 0.0
        if rhs >= 0 and upper > rhs and not math.isinf(upper):
            return count * (1 - rhs / upper), (rhs + upper) / 2
        return 0.0, finite_or_zero(upper)
    # upper == +Inf
    if upper_trim:
        return 0.0, finite_or_zero(lower)
    if rhs >= lower:
        return count, rhs
    return 0.0, finite_or_zero(lower)


def trim_buckets(h: FloatHistogram, rhs: float, upper: bool) -> FloatHistogram:
    """The trim operators: ``h </ rhs`` (``upper=True``: keep observations below ``rhs``) and
    ``h >/ rhs`` (keep those above). A bucket cut by ``rhs`` keeps the interpolated part
    (exponentially in exponential buckets, linearly in custom buckets and the zero bucket); when
    anything is cut, count and sum are re-estimated from bucket midpoints and the result is
    compacted, otherwise the histogram is returned unchanged (Prometheus' ``TrimBuckets``; the
    engine's ``</`` and ``>/`` operators call this). Divisions follow IEEE-754 as in Go: a NaN
    ``rhs`` against a zero bucket of width 0 yields NaN counts, not ZeroDivisionError."""
    custom = h.uses_custom_buckets
    total_count = 0.0
    total_sum = 0.0
    trimmed = False
    has_pos = has_neg = False
    new_sides: list[F64] = []
    for buckets, positive in ((h.positive_buckets(), True), (h.negative_buckets(), False)):
        counts = buckets.count.copy()
        for k, (lo, up, c) in enumerate(
            zip(buckets.lower.tolist(), buckets.upper.tolist(), buckets.count.tolist(), strict=True)
        ):
            if c == 0:
                continue
            if positive:
                has_pos = True
            else:
                has_neg = True
            fully_kept = up <= rhs if upper else lo >= rhs
            partly_kept = lo < rhs if upper else up > rhs
            if fully_kept:
                total_count += c
                total_sum += _midpoint(lo, up, positive, custom) * c
            elif partly_kept:
                if math.isinf(lo) or math.isinf(up):
                    keep, mid = _trim_infinite_bucket(upper, lo, up, c, rhs)
                else:
                    below = _fraction_in_bucket(rhs, lo, up, c, custom)
                    if upper:
                        keep, mid = below, _midpoint(lo, rhs, positive, custom)
                    else:
                        keep, mid = c - below, _midpoint(rhs, up, positive, custom)
                total_count += keep
                total_sum += mid * keep
                if c != keep:
                    counts[k] = keep
                    trimmed = True
            else:
                counts[k] = 0.0
                trimmed = True
        new_sides.append(counts)
    zero_count = h.zero_count
    if h.zero_count > 0:
        lo, up = -h.zero_threshold, h.zero_threshold
        if has_neg and not has_pos:
            up = 0.0
        if has_pos and not has_neg:
            lo = 0.0
        if upper:
            if rhs <= lo:
                keep, mid = 0.0, 0.0
            elif rhs >= up:
                keep, mid = h.zero_count, (lo + up) / 2
            else:
                keep, mid = h.zero_count * fdiv(rhs - lo, up - lo), (lo + rhs) / 2
        elif rhs <= lo:
            keep, mid = h.zero_count, (lo + up) / 2
        elif rhs >= up:
            keep, mid = 0.0, 0.0
        else:
            keep, mid = h.zero_count * fdiv(up - rhs, up - lo), (rhs + up) / 2
        if keep != h.zero_count:
            zero_count = keep
            trimmed = True
        total_sum += mid * keep
        total_count += keep
    if not trimmed:
        return h
    res = FloatHistogram(
        schema=h.schema,
        count=total_count,
        sum=total_sum,
        zero_threshold=h.zero_threshold,
        zero_count=zero_count,
        positive_index=h.positive_index,
        positive=new_sides[0],
        negative_index=h.negative_index,
        negative=new_sides[1],
        custom_values=h.custom_values,
        counter_reset_hint=h.counter_reset_hint,
    )
    return res.compact()
