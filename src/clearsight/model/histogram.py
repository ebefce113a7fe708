"""Native histograms (Prometheus' ``FloatHistogram``) as a pure data model: no I/O.

A :class:`FloatHistogram` has a schema (``-4..8`` exponential, or ``-53`` for custom bucket bounds
given by ``custom_values``), a zero bucket (``zero_threshold``, ``zero_count``), the total ``count``
and ``sum`` of observations, and sparse positive/negative buckets with *absolute* float counts.

Representation: instead of Prometheus' spans + dense bucket slices, each side keeps two parallel
numpy arrays: the bucket *indices* (int64, strictly increasing) and their counts (float64). A
Prometheus span layout maps one-to-one onto this (``spans()`` / ``from_spans()`` convert), except
for pathological zero-length spans, which carry no information. Buckets with a zero count are kept
until :meth:`FloatHistogram.compact` drops them, exactly as Prometheus keeps them until ``Compact``
(it matters: e.g. ``histogram_quantile`` looks at whether negative buckets exist at all).

Histograms are treated as immutable values: every operation returns a new histogram and never
modifies its inputs (arrays may be shared between histograms; never write into them). ``==`` is
identity: compare with :meth:`FloatHistogram.equals` (exact, PromQL's ``==``) or
``histogram_text.promqltest_equal`` (tolerant, as promqltest compares results).

Bucket index ``i`` of an exponential schema ``s`` is the interval ``(2^((i-1)/2^s), 2^(i/2^s)]``
for positive buckets and its mirror ``[-2^(i/2^s), -2^((i-1)/2^s))`` for negative ones. For the
custom-buckets schema, positive bucket ``i`` is ``(custom_values[i-1], custom_values[i]]`` with
``custom_values[-1] = -Inf`` and ``custom_values[len] = +Inf``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from enum import IntEnum
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

CUSTOM_BUCKETS_SCHEMA = -53
EXPONENTIAL_SCHEMA_MIN = -4
EXPONENTIAL_SCHEMA_MAX = 8
MAX_FLOAT = sys.float_info.max
INF = math.inf

_EMPTY_F: F64 = np.zeros(0, dtype=np.float64)
_EMPTY_I: I64 = np.zeros(0, dtype=np.int64)
_EMPTY_F.flags.writeable = False
_EMPTY_I.flags.writeable = False


class CounterResetHint(IntEnum):
    UNKNOWN = 0
    RESET = 1
    NOT_RESET = 2
    GAUGE = 3


class HistogramError(ValueError):
    """An operation Prometheus refuses (its error text is the message)."""


class IncompatibleSchemaError(HistogramError):
    def __init__(self) -> None:
        super().__init__(
            "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
        )


def is_custom_schema(schema: int) -> bool:
    return schema == CUSTOM_BUCKETS_SCHEMA


def is_exponential_schema(schema: int) -> bool:
    return EXPONENTIAL_SCHEMA_MIN <= schema <= EXPONENTIAL_SCHEMA_MAX


def is_valid_schema(schema: int) -> bool:
    return is_custom_schema(schema) or is_exponential_schema(schema)


# ------------------------------------------------------------------------------------------ bounds


@lru_cache(maxsize=16)
def _fractions(schema: int) -> F64:
    """Bucket bounds within [0.5, 1) for schema >= 0: 2^(i/2^schema) / 2.

    Prometheus uses a precomputed table whose entries differ from the correctly rounded values by
    at most one ulp for some schemas; quantile/fraction results agree far within test tolerance.
    """
    n = 1 << schema
    out = np.array([math.exp2(i / n) / 2 for i in range(n)], dtype=np.float64)
    out.flags.writeable = False
    return out


def exponential_bound(idx: int, schema: int) -> float:
    """Upper bound of positive bucket ``idx`` in an exponential schema."""
    if schema < 0:
        exp = idx << -schema
        if exp == 1024:
            # The last bucket counting regular numbers ends at MaxFloat64; the next one is +Inf.
            return MAX_FLOAT
        if exp > 1024:
            return INF
        if exp < -1100:
            return 0.0
        return math.ldexp(1.0, exp)
    frac = float(_fractions(schema)[idx & ((1 << schema) - 1)])
    exp = (idx >> schema) + 1
    if frac == 0.5 and exp == 1025:
        return MAX_FLOAT
    if exp >= 1025:
        return INF
    if exp < -1100:
        return 0.0
    return math.ldexp(frac, exp)


def exponential_bounds(idx: I64, schema: int) -> F64:
    """Vectorized :func:`exponential_bound`."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return np.zeros(0, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        if schema < 0:
            exp = idx << np.int64(-schema)
            frac: F64 | float = 1.0
            is_max = exp == 1024
            over = exp > 1024
        else:
            frac = _fractions(schema)[idx & ((1 << schema) - 1)]
            exp = (idx >> np.int64(schema)) + 1
            is_max = (frac == 0.5) & (exp == 1025)
            over = exp > 1025
        out = np.ldexp(frac, np.minimum(np.maximum(exp, -1200), 1100).astype(np.int32))
        if is_max.any():
            out[is_max] = MAX_FLOAT
        if over.any():
            out[over] = INF
    return np.asarray(out, dtype=np.float64)


def bound(idx: int, schema: int, custom_values: F64 | None) -> float:
    """Upper bound of positive bucket ``idx`` (Prometheus' ``getBound``)."""
    if is_custom_schema(schema):
        cv = custom_values if custom_values is not None else _EMPTY_F
        n = len(cv)
        if idx == n:
            return INF
        if idx == -1:
            return -INF
        if idx > n or idx < -1:
            raise HistogramError(f"index {idx} out of bounds for custom bounds of length {n}")
        return float(cv[idx])
    return exponential_bound(idx, schema)


def bounds(idx: I64, schema: int, custom_values: F64 | None) -> F64:
    """Vectorized :func:`bound`."""
    if is_custom_schema(schema):
        cv = custom_values if custom_values is not None else _EMPTY_F
        n = len(cv)
        if idx.size and (int(idx.min()) < -1 or int(idx.max()) > n):
            raise HistogramError(f"bucket index out of bounds for custom bounds of length {n}")
        ext = np.concatenate(([-INF], cv, [INF]))
        return ext[np.asarray(idx, dtype=np.int64) + 1]
    return exponential_bounds(idx, schema)


def target_index(idx: I64 | int, origin_schema: int, target_schema: int) -> I64:
    """Index in ``target_schema`` (<= origin) of the bucket containing bucket ``idx``."""
    return ((np.asarray(idx, dtype=np.int64) - 1) >> np.int64(origin_schema - target_schema)) + 1


def reduce_buckets(idx: I64, counts: F64, origin_schema: int, target_schema: int) -> tuple[I64, F64]:
    """Merge buckets into the coarser ``target_schema`` (sums of merged counts)."""
    if origin_schema == target_schema or idx.size == 0:
        return idx, counts
    t = target_index(idx, origin_schema, target_schema)
    starts = np.flatnonzero(np.concatenate(([True], t[1:] != t[:-1])))
    # Sequential (left-to-right) sums per group, as Prometheus accumulates them.
    sums = np.array([_seq_sum(counts[a:b]) for a, b in _groups(starts, len(t))])
    return t[starts], sums.astype(np.float64)


def _groups(starts: npt.NDArray[np.intp], n: int) -> list[tuple[int, int]]:
    ends = [*starts[1:].tolist(), n]
    return list(zip(starts.tolist(), ends, strict=True))


def _seq_sum(a: F64) -> float:
    s = 0.0
    first = True
    for v in a.tolist():
        if first:
            s = v
            first = False
        else:
            s += v
    return s


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """Prometheus' Kahan-Neumaier step: returns the new (sum, compensation)."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def fdiv(a: float, b: float) -> float:
    """IEEE-754 division (Python raises on division by zero; Go and PromQL do not)."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        neg = (a < 0) != (math.copysign(1.0, b) < 0)
        return -INF if neg else INF
    return a / b


# --------------------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Bucket:
    lower: float
    upper: float
    lower_inclusive: bool
    upper_inclusive: bool
    count: float
    index: int


@dataclass(frozen=True, slots=True)
class Buckets:
    """A run of buckets as columns (ascending by value unless stated otherwise)."""

    lower: F64
    upper: F64
    count: F64
    is_zero_bucket: npt.NDArray[np.bool_]


class OpResult(NamedTuple):
    """Result of :meth:`FloatHistogram.add` / :meth:`FloatHistogram.sub`.

    ``counter_reset_collision``: one operand said reset, the other not_reset (Prometheus warns
    "conflicting counter resets"). ``nhcb_bounds_reconciled``: custom bounds differed and were
    intersected (Prometheus adds the info "mismatched custom buckets were reconciled during ...").
    """

    histogram: FloatHistogram
    counter_reset_collision: bool
    nhcb_bounds_reconciled: bool


def _arr_f(v: object) -> F64:
    a = np.asarray(v, dtype=np.float64)
    return a.reshape(-1) if a.ndim != 1 else a


def _arr_i(v: object) -> I64:
    a = np.asarray(v, dtype=np.int64)
    return a.reshape(-1) if a.ndim != 1 else a


@dataclass(frozen=True, slots=True, eq=False)
class FloatHistogram:
    schema: int = 0
    count: float = 0.0
    sum: float = 0.0
    zero_threshold: float = 0.0
    zero_count: float = 0.0
    positive_index: I64 = field(default_factory=lambda: _EMPTY_I)
    positive: F64 = field(default_factory=lambda: _EMPTY_F)
    negative_index: I64 = field(default_factory=lambda: _EMPTY_I)
    negative: F64 = field(default_factory=lambda: _EMPTY_F)
    custom_values: F64 | None = None
    counter_reset_hint: CounterResetHint = CounterResetHint.UNKNOWN
    # Lazily computed bucket bounds (the histogram is immutable, so they never go stale).
    _all_buckets: Buckets | None = field(default=None, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ construction

    @staticmethod
    def build(
        *,
        schema: int = 0,
        count: float = 0.0,
        sum: float = 0.0,
        zero_threshold: float = 0.0,
        zero_count: float = 0.0,
        positive: dict[int, float] | None = None,
        negative: dict[int, float] | None = None,
        custom_values: list[float] | F64 | None = None,
        counter_reset_hint: CounterResetHint = CounterResetHint.UNKNOWN,
    ) -> FloatHistogram:
        """Convenience constructor from ``{bucket index: count}`` maps."""
        p = sorted((positive or {}).items())
        n = sorted((negative or {}).items())
        return FloatHistogram(
            schema=schema,
            count=float(count),
            sum=float(sum),
            zero_threshold=float(zero_threshold),
            zero_count=float(zero_count),
            positive_index=_arr_i([k for k, _ in p]),
            positive=_arr_f([v for _, v in p]),
            negative_index=_arr_i([k for k, _ in n]),
            negative=_arr_f([v for _, v in n]),
            custom_values=None if custom_values is None else _arr_f(custom_values),
            counter_reset_hint=counter_reset_hint,
        )

    @staticmethod
    def from_spans(
        *,
        schema: int = 0,
        count: float = 0.0,
        sum: float = 0.0,
        zero_threshold: float = 0.0,
        zero_count: float = 0.0,
        positive_spans: list[tuple[int, int]] | None = None,
        positive_buckets: list[float] | F64 | None = None,
        negative_spans: list[tuple[int, int]] | None = None,
        negative_buckets: list[float] | F64 | None = None,
        custom_values: list[float] | F64 | None = None,
        counter_reset_hint: CounterResetHint = CounterResetHint.UNKNOWN,
    ) -> FloatHistogram:
        """From Prometheus' layout: spans ``(offset, length)`` and absolute bucket counts."""
        pb = _arr_f(positive_buckets if positive_buckets is not None else [])
        nb = _arr_f(negative_buckets if negative_buckets is not None else [])
        return FloatHistogram(
            schema=schema,
            count=float(count),
            sum=float(sum),
            zero_threshold=float(zero_threshold),
            zero_count=float(zero_count),
            positive_index=spans_to_indices(positive_spans or [], len(pb)),
            positive=pb,
            negative_index=spans_to_indices(negative_spans or [], len(nb)),
            negative=nb,
            custom_values=None if custom_values is None else _arr_f(custom_values),
            counter_reset_hint=counter_reset_hint,
        )

    def positive_spans(self) -> list[tuple[int, int]]:
        return indices_to_spans(self.positive_index)

    def negative_spans(self) -> list[tuple[int, int]]:
        return indices_to_spans(self.negative_index)

    @property
    def uses_custom_buckets(self) -> bool:
        return self.schema == CUSTOM_BUCKETS_SCHEMA

    def with_hint(self, hint: CounterResetHint) -> FloatHistogram:
        return self if hint == self.counter_reset_hint else replace(self, counter_reset_hint=hint)

    def validate(self) -> None:
        """Raise :class:`HistogramError` for an inconsistent histogram (Prometheus' ``Validate``)."""
        for name, idx, cnt in (
            ("positive", self.positive_index, self.positive),
            ("negative", self.negative_index, self.negative),
        ):
            if len(idx) != len(cnt):
                raise HistogramError(f"{name} side: spans need {len(idx)} buckets, have {len(cnt)} buckets")
            if idx.size > 1 and bool(np.any(np.diff(idx) <= 0)):
                raise HistogramError(f"{name} side: bucket indices must be strictly increasing")
            if bool(np.any(cnt < 0)):
                raise HistogramError(
                    f"{name} side: histogram has a bucket whose observation count is negative"
                )
        if self.uses_custom_buckets:
            cv = self.custom_values if self.custom_values is not None else _EMPTY_F
            if cv.size > 1 and bool(np.any(np.diff(cv) <= 0)):
                raise HistogramError("custom buckets: custom bounds must be in strictly increasing order")
            if self.positive_index.size and (
                int(self.positive_index[0]) < 0 or int(self.positive_index[-1]) > len(cv)
            ):
                raise HistogramError("custom buckets: custom bounds are insufficient to cover the spans")
            if self.zero_count != 0:
                raise HistogramError("custom buckets: must have zero count of 0")
            if self.zero_threshold != 0:
                raise HistogramError("custom buckets: must have zero threshold of 0")
            if self.negative_index.size:
                raise HistogramError("custom buckets: must not have negative buckets")
        elif is_exponential_schema(self.schema):
            if self.zero_count < 0:
                raise HistogramError("histogram has a bucket whose observation count is negative")
            if self.custom_values is not None and len(self.custom_values):
                raise HistogramError("histogram with exponential schema must not have custom bounds")
        else:
            raise HistogramError(
                f"histogram has an invalid schema, which must be between -4 and 8, got schema {self.schema}"
            )
        if self.count < 0:
            raise HistogramError("histogram has an observation count that is negative")

    # ---------------------------------------------------------------------- scalar math

    def mul(self, factor: float) -> FloatHistogram:
        """Scale counts, sum and buckets; a negative factor makes it a gauge histogram."""
        with np.errstate(all="ignore"):
            return replace(
                self,
                count=self.count * factor,
                sum=self.sum * factor,
                zero_count=self.zero_count * factor,
                positive=self.positive * factor,
                negative=self.negative * factor,
                counter_reset_hint=CounterResetHint.GAUGE if factor < 0 else self.counter_reset_hint,
            )

    def div(self, scalar: float) -> FloatHistogram:
        """Like :meth:`mul` with ``1/scalar``; dividing by zero also drops all buckets."""
        if scalar == 0:
            return replace(
                self,
                count=fdiv(self.count, scalar),
                sum=fdiv(self.sum, scalar),
                zero_count=fdiv(self.zero_count, scalar),
                positive_index=_EMPTY_I,
                positive=_EMPTY_F,
                negative_index=_EMPTY_I,
                negative=_EMPTY_F,
            )
        with np.errstate(all="ignore"):
            return replace(
                self,
                count=self.count / scalar,
                sum=self.sum / scalar,
                zero_count=self.zero_count / scalar,
                positive=self.positive / scalar,
                negative=self.negative / scalar,
                counter_reset_hint=CounterResetHint.GAUGE if scalar < 0 else self.counter_reset_hint,
            )

    def neg(self) -> FloatHistogram:
        return self.mul(-1.0)

    # ---------------------------------------------------------------------- layout

    def compact(self) -> FloatHistogram:
        """Drop buckets whose count is zero (Prometheus' ``Compact(0)``; NaN counts stay)."""
        pk = self.positive != 0
        nk = self.negative != 0
        if bool(pk.all()) and bool(nk.all()):
            return self
        return replace(
            self,
            positive_index=self.positive_index[pk],
            positive=self.positive[pk],
            negative_index=self.negative_index[nk],
            negative=self.negative[nk],
        )

    def copy_to_schema(self, target_schema: int) -> FloatHistogram:
        """Reduce resolution to ``target_schema`` (<= schema), merging buckets."""
        if target_schema == self.schema:
            return self
        if self.uses_custom_buckets:
            raise HistogramError(f"cannot reduce resolution to {target_schema} when there are custom buckets")
        if is_custom_schema(target_schema):
            raise HistogramError("cannot reduce resolution to custom buckets schema")
        if target_schema > self.schema:
            raise HistogramError(f"cannot copy from schema {self.schema} to {target_schema}")
        pi, pc = reduce_buckets(self.positive_index, self.positive, self.schema, target_schema)
        ni, nc = reduce_buckets(self.negative_index, self.negative, self.schema, target_schema)
        return replace(
            self,
            schema=target_schema,
            positive_index=pi,
            positive=pc,
            negative_index=ni,
            negative=nc,
            counter_reset_hint=CounterResetHint.UNKNOWN,
        )

    # ---------------------------------------------------------------------- buckets

    def positive_buckets(self, schema: int | None = None) -> Buckets:
        """Positive buckets ascending (optionally merged into a coarser exponential schema)."""
        idx, cnt, s = self.positive_index, self.positive, self.schema
        if schema is not None and schema != s:
            idx, cnt = reduce_buckets(idx, cnt, s, schema)
            s = schema
        both = bounds(np.concatenate((idx - 1, idx)), s, self.custom_values)
        k = len(idx)
        return Buckets(both[:k], both[k:], cnt, np.zeros(k, dtype=bool))

    def negative_buckets(self, schema: int | None = None) -> Buckets:
        """Negative buckets in *descending* value order (index ascending, away from zero)."""
        idx, cnt, s = self.negative_index, self.negative, self.schema
        if schema is not None and schema != s:
            idx, cnt = reduce_buckets(idx, cnt, s, schema)
            s = schema
        both = -bounds(np.concatenate((idx - 1, idx)), s, None)
        k = len(idx)
        return Buckets(both[k:], both[:k], cnt, np.zeros(k, dtype=bool))

    def all_buckets(self) -> Buckets:
        """Negative, zero (if populated) and positive buckets in ascending value order.

        Like Prometheus' ``AllBucketIterator``: a negative/positive bucket overlapping the zero
        bucket gets its bound clamped to the zero threshold. Computed once per histogram; the
        arrays are read-only.
        """
        if self._all_buckets is not None:
            return self._all_buckets
        n = self.negative_buckets()
        p = self.positive_buckets()
        zt = self.zero_threshold
        n_lo, n_up, n_c = n.lower[::-1], n.upper[::-1].copy(), n.count[::-1]
        p_lo, p_up = p.lower.copy(), p.upper
        if zt > 0:
            m = (n_up < 0) & (n_up > -zt)
            n_up[m] = -zt
            m = (p_lo > 0) & (p_lo < zt)
            p_lo[m] = zt
        parts_lo = [n_lo]
        parts_up = [n_up]
        parts_c = [n_c]
        parts_z = [np.zeros(len(n_c), dtype=bool)]
        if self.zero_count > 0:
            parts_lo.append(np.array([-zt]))
            parts_up.append(np.array([zt]))
            parts_c.append(np.array([self.zero_count]))
            parts_z.append(np.ones(1, dtype=bool))
        parts_lo.append(p_lo)
        parts_up.append(p_up)
        parts_c.append(p.count)
        parts_z.append(np.zeros(len(p.count), dtype=bool))
        res = Buckets(
            np.concatenate(parts_lo).astype(np.float64),
            np.concatenate(parts_up).astype(np.float64),
            np.concatenate(parts_c).astype(np.float64),
            np.concatenate(parts_z),
        )
        for a in (res.lower, res.upper, res.count, res.is_zero_bucket):
            a.flags.writeable = False
        object.__setattr__(self, "_all_buckets", res)
        return res

    def iter_buckets(self) -> list[Bucket]:
        """All buckets ascending as :class:`Bucket` tuples with Prometheus' inclusiveness."""
        out: list[Bucket] = []
        b = self.all_buckets()
        custom = self.uses_custom_buckets
        nneg = len(self.negative_index)
        for k, (lo, up, c, z) in enumerate(
            zip(b.lower.tolist(), b.upper.tolist(), b.count.tolist(), b.is_zero_bucket.tolist(), strict=True)
        ):
            if z:
                out.append(Bucket(lo, up, True, True, c, 0))
                continue
            if k < nneg:
                index = int(self.negative_index[nneg - 1 - k])
            else:
                index = int(self.positive_index[k - (len(b.count) - len(self.positive_index))])
            if custom:
                out.append(Bucket(lo, up, index == 0, True, c, index))
            else:
                out.append(Bucket(lo, up, lo < 0, up > 0, c, index))
        return out

    def cumulative_buckets(self) -> tuple[F64, F64]:
        """(upper bounds, cumulative counts) over :meth:`all_buckets` (for classic-style use)."""
        b = self.all_buckets()
        return b.upper, np.cumsum(b.count)

    # ---------------------------------------------------------------------- zero bucket

    def zero_count_for_larger_threshold(self, larger: float) -> tuple[float, float]:
        """(zero count, threshold) this histogram would have with zero threshold ``larger``.

        If ``larger`` falls inside a populated bucket the threshold moves up to that bucket's
        upper bound (in absolute value) and its count is included.
        """
        if larger == self.zero_threshold:
            return self.zero_count, larger
        if larger < self.zero_threshold:
            raise HistogramError(f"new threshold {larger} is less than old threshold {self.zero_threshold}")
        p = self.positive_buckets()
        n = self.negative_buckets()
        while True:
            zc = self.zero_count
            for lo, up, c in zip(p.lower.tolist(), p.upper.tolist(), p.count.tolist(), strict=True):
                if lo >= larger:
                    break
                zc += c
                if up > larger:
                    if c != 0:
                        larger = up
                    break
            redo = False
            for lo, up, c in zip(n.lower.tolist(), n.upper.tolist(), n.count.tolist(), strict=True):
                if up <= -larger:
                    break
                zc += c
                if lo < -larger:
                    if c != 0:
                        larger = -lo
                        redo = True
                    break
            if not redo:
                return zc, larger

    def _with_larger_zero_threshold(self, threshold: float) -> FloatHistogram:
        """Widen the zero bucket to (at least) ``threshold`` and trim the buckets it swallows.

        As in Prometheus, trimming compacts the histogram (drops all empty buckets).
        """
        zc, thr = self.zero_count_for_larger_threshold(threshold)
        p_up = bounds(self.positive_index - 1, self.schema, None)  # lower bounds
        n_lo = bounds(self.negative_index - 1, self.schema, None)  # abs of upper bounds
        pos = self.positive.copy()
        neg = self.negative.copy()
        pos[p_up < thr] = 0.0
        neg[n_lo < thr] = 0.0
        return replace(self, zero_count=zc, zero_threshold=thr, positive=pos, negative=neg).compact()

    # ---------------------------------------------------------------------- arithmetic

    def add(self, other: FloatHistogram) -> OpResult:
        return self._add_sub(other, negate=False)

    def sub(self, other: FloatHistogram) -> OpResult:
        """``self - other``. Like Prometheus' ``Sub`` the counter reset hint follows the rules of
        ``add``; the PromQL ``-`` operator must set the result's hint to gauge itself."""
        return self._add_sub(other, negate=True)

    def _add_sub(self, other: FloatHistogram, *, negate: bool) -> OpResult:
        if self.uses_custom_buckets != other.uses_custom_buckets:
            raise IncompatibleSchemaError()
        hint, collision = adjust_counter_reset(self.counter_reset_hint, other.counter_reset_hint)
        sign = -1.0 if negate else 1.0
        if self.uses_custom_buckets:
            count = self.count - other.count if negate else self.count + other.count
            total = self.sum - other.sum if negate else self.sum + other.sum
            if custom_bounds_match(self.custom_values, other.custom_values):
                pi, pc = _merge(
                    self.positive_index, self.positive, other.positive_index, other.positive, sign
                )
                res = replace(
                    self, count=count, sum=total, positive_index=pi, positive=pc, counter_reset_hint=hint
                )
                return OpResult(res, collision, False)
            inter = intersect_custom_bounds(self.custom_values, other.custom_values)
            pi, pc = _add_custom_mismatched(self, other, inter, negate)
            res = replace(
                self,
                count=count,
                sum=total,
                positive_index=pi,
                positive=pc,
                custom_values=inter,
                counter_reset_hint=hint,
            )
            return OpResult(res, collision, True)

        h = self
        # Reconcile zero buckets: both end up with the larger threshold (moved out of populated
        # buckets if needed); h's swallowed buckets are trimmed, other's are skipped below.
        o_zc, o_thr = other.zero_count, other.zero_threshold
        while o_thr != h.zero_threshold:
            if h.zero_threshold > o_thr:
                o_zc, o_thr = other.zero_count_for_larger_threshold(h.zero_threshold)
            if o_thr > h.zero_threshold:
                h = h._with_larger_zero_threshold(o_thr)
        zero_count = h.zero_count - o_zc if negate else h.zero_count + o_zc
        count = h.count - other.count if negate else h.count + other.count
        total = h.sum - other.sum if negate else h.sum + other.sum

        schema = min(h.schema, other.schema)
        hpi, hpc = reduce_buckets(h.positive_index, h.positive, h.schema, schema)
        hni, hnc = reduce_buckets(h.negative_index, h.negative, h.schema, schema)
        opi, opc = reduce_buckets(other.positive_index, other.positive, other.schema, schema)
        oni, onc = reduce_buckets(other.negative_index, other.negative, other.schema, schema)
        thr = h.zero_threshold
        if thr > 0:
            keep = exponential_bounds(opi, schema) > thr
            # Only the leading run is within the zero bucket (bounds grow with the index).
            opi, opc = opi[keep], opc[keep]
            keep = exponential_bounds(oni, schema) > thr
            oni, onc = oni[keep], onc[keep]
        pi, pc = _merge(hpi, hpc, opi, opc, sign)
        ni, nc = _merge(hni, hnc, oni, onc, sign)
        res = FloatHistogram(
            schema=schema,
            count=count,
            sum=total,
            zero_threshold=thr,
            zero_count=zero_count,
            positive_index=pi,
            positive=pc,
            negative_index=ni,
            negative=nc,
            custom_values=None,
            counter_reset_hint=hint,
        )
        return OpResult(res, collision, False)

    def __add__(self, other: FloatHistogram) -> FloatHistogram:
        return self.add(other).histogram

    def __sub__(self, other: FloatHistogram) -> FloatHistogram:
        return self.sub(other).histogram

    def __mul__(self, factor: float) -> FloatHistogram:
        return self.mul(factor)

    __rmul__ = __mul__

    def __truediv__(self, scalar: float) -> FloatHistogram:
        return self.div(scalar)

    def __neg__(self) -> FloatHistogram:
        return self.neg()

    # ---------------------------------------------------------------------- counter resets

    def detect_reset(self, previous: FloatHistogram) -> bool:
        """Whether ``self`` (the later sample) implies a counter reset since ``previous``.

        Honors the hints reset/not_reset; otherwise compares counts (not the sum), the zero
        bucket and every bucket (after bringing ``previous`` to this schema and threshold).
        """
        if self.counter_reset_hint == CounterResetHint.RESET:
            return True
        if self.counter_reset_hint == CounterResetHint.NOT_RESET:
            return False
        if self.count < previous.count:
            return True
        if self.uses_custom_buckets:
            if not previous.uses_custom_buckets:
                return True
            if not custom_bounds_match(self.custom_values, previous.custom_values):
                return _reset_with_mismatched_bounds(self, previous)
        elif previous.uses_custom_buckets:
            return True
        if self.schema > previous.schema:
            return True
        if self.zero_threshold < previous.zero_threshold:
            return True
        prev_zc, new_thr = previous.zero_count_for_larger_threshold(self.zero_threshold)
        if new_thr != self.zero_threshold:
            return True
        if self.zero_count < prev_zc:
            return True
        for side in ("positive", "negative"):
            ci, cc = _side_above(self, side, self.zero_threshold, self.schema)
            pi, pc = _side_above(previous, side, self.zero_threshold, self.schema)
            if _detect_reset_side(ci, cc, pi, pc):
                return True
        return False

    # ---------------------------------------------------------------------- misc

    def equals(self, other: FloatHistogram) -> bool:
        """Exact data equality (Prometheus' ``Equals``, used by PromQL's ``==``/``!=``): same
        schema, bit-identical counts and sum, same bucket layout (empty buckets included), same
        custom bounds; the counter reset hint is ignored."""
        if self.schema != other.schema:
            return False
        if _bits(self.count) != _bits(other.count) or _bits(self.sum) != _bits(other.sum):
            return False
        if self.uses_custom_buckets and not custom_bounds_match(self.custom_values, other.custom_values):
            return False
        if self.zero_threshold != other.zero_threshold or _bits(self.zero_count) != _bits(other.zero_count):
            return False
        for ai, ac, bi, bc in (
            (self.negative_index, self.negative, other.negative_index, other.negative),
            (self.positive_index, self.positive, other.positive_index, other.positive),
        ):
            if len(ai) != len(bi) or not bool(np.all(ai == bi)):
                return False
            if not bool(np.all(ac.view(np.uint64) == bc.view(np.uint64))):
                return False
        return True

    def has_overflow(self) -> bool:
        vals = [self.zero_count, self.count, self.sum]
        if any(math.isinf(v) for v in vals):
            return True
        arrays = [self.positive, self.negative]
        if self.custom_values is not None:
            arrays.append(self.custom_values)
        return any(bool(np.isinf(a).any()) for a in arrays)

    def __repr__(self) -> str:
        from clearsight.model.histogram_text import format_histogram

        return f"FloatHistogram({format_histogram(self)})"


# ------------------------------------------------------------------------------------------ helpers


STALE_NAN_BITS = 0x7FF0000000000002


def is_stale_histogram(h: FloatHistogram) -> bool:
    """Prometheus marks a stale histogram sample by a sum with the stale-NaN bit pattern."""
    return _bits(h.sum) == STALE_NAN_BITS


def stale_histogram() -> FloatHistogram:
    """A histogram stale marker (all else empty)."""
    return FloatHistogram(sum=float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0]))


def _bits(v: float) -> int:
    return int(np.float64(v).view(np.uint64))


def spans_to_indices(spans: list[tuple[int, int]], n_buckets: int) -> I64:
    out: list[int] = []
    idx = 0
    for k, (offset, length) in enumerate(spans):
        if k > 0 and offset < 0:
            raise HistogramError(
                f"span number {k + 1} with offset {offset}: histogram has a span whose offset is negative"
            )
        idx += offset
        for _ in range(length):
            out.append(idx)
            idx += 1
    if len(out) != n_buckets:
        raise HistogramError(f"spans need {len(out)} buckets, have {n_buckets} buckets")
    return _arr_i(out)


def indices_to_spans(idx: I64) -> list[tuple[int, int]]:
    """Prometheus span layout for ascending indices (a new span at every gap)."""
    spans: list[list[int]] = []
    prev = 0
    for i in idx.tolist():
        if spans and i == prev + 1:
            spans[-1][1] += 1
        else:
            spans.append([i if not spans else i - prev - 1, 1])
        prev = i
    return [(o, n) for o, n in spans]


def adjust_counter_reset(a: CounterResetHint, b: CounterResetHint) -> tuple[CounterResetHint, bool]:
    """Hint of the sum of histograms with hints ``a`` and ``b``, and whether they collided."""
    if a == b:
        return a, False
    if a == CounterResetHint.GAUGE:
        return a, False
    if b == CounterResetHint.GAUGE:
        return CounterResetHint.GAUGE, False
    if a == CounterResetHint.UNKNOWN or b == CounterResetHint.UNKNOWN:
        return CounterResetHint.UNKNOWN, False
    return CounterResetHint.UNKNOWN, True


def custom_bounds_match(a: F64 | None, b: F64 | None) -> bool:
    a = a if a is not None else _EMPTY_F
    b = b if b is not None else _EMPTY_F
    return len(a) == len(b) and bool(np.all(a == b))


def intersect_custom_bounds(a: F64 | None, b: F64 | None) -> F64 | None:
    if a is None or b is None or len(a) == 0 or len(b) == 0:
        return None
    res = np.intersect1d(a, b, assume_unique=True)
    return res.astype(np.float64) if res.size else None


def _merge(ai: I64, ac: F64, bi: I64, bc: F64, sign: float) -> tuple[I64, F64]:
    """Union of two sparse bucket sets, ``a + sign*b`` on shared indices."""
    if bi.size == 0:
        return ai, ac
    b_vals = bc * sign if sign != 1.0 else bc
    if ai.size == 0:
        return bi, b_vals.astype(np.float64)
    if ai.size == bi.size and bool(np.all(ai == bi)):
        with np.errstate(all="ignore"):
            return ai, ac + b_vals
    idx = np.union1d(ai, bi)
    out = np.zeros(len(idx), dtype=np.float64)
    pa = np.searchsorted(idx, ai)
    pb = np.searchsorted(idx, bi)
    out[pa] = ac
    in_a = np.zeros(len(idx), dtype=bool)
    in_a[pa] = True
    with np.errstate(all="ignore"):
        shared = in_a[pb]
        out[pb[shared]] = out[pb[shared]] + b_vals[shared]
        out[pb[~shared]] = b_vals[~shared]
    return idx, out


def _add_custom_mismatched(
    h: FloatHistogram, other: FloatHistogram, inter: F64 | None, negate: bool
) -> tuple[I64, F64]:
    """Map both NHCB histograms onto the intersected bounds and add (or subtract)."""
    inter_l = [] if inter is None else inter.tolist()
    n = len(inter_l) + 1
    tgt = [0.0] * n
    comp = [0.0] * n

    def map_side(src: FloatHistogram, neg: bool) -> None:
        cv = [] if src.custom_values is None else src.custom_values.tolist()
        k = 0
        for i, v in zip(src.positive_index.tolist(), src.positive.tolist(), strict=True):
            t = n - 1
            if i < len(cv):
                b = cv[i]
                while k < len(inter_l):
                    if inter_l[k] >= b:
                        t = k
                        break
                    k += 1
            tgt[t], comp[t] = kahan_inc(-v if neg else v, tgt[t], comp[t])

    map_side(h, False)
    map_side(other, negate)
    idx = [i for i in range(n) if not (tgt[i] == 0 and comp[i] == 0)]
    return _arr_i(idx), _arr_f([tgt[i] for i in idx])


def _side_above(h: FloatHistogram, side: str, abs_start: float, schema: int) -> tuple[list[int], list[float]]:
    """Buckets of one side in ``schema`` skipping the leading ones with |upper| <= abs_start."""
    idx, cnt = (h.positive_index, h.positive) if side == "positive" else (h.negative_index, h.negative)
    if not h.uses_custom_buckets:
        idx, cnt = reduce_buckets(idx, cnt, h.schema, schema)
        if abs_start != 0 and idx.size:
            keep = exponential_bounds(idx, schema) > abs_start
            idx, cnt = idx[keep], cnt[keep]
    return idx.tolist(), cnt.tolist()


def _detect_reset_side(ci: list[int], cc: list[float], pi: list[int], pc: list[float]) -> bool:
    cur = dict(zip(ci, cc, strict=True))
    for i, c in zip(pi, pc, strict=True):
        if i in cur:
            if cur[i] < c:
                return True
        elif c != 0:
            return True
    return False


def _reset_with_mismatched_bounds(h: FloatHistogram, prev: FloatHistogram) -> bool:
    """Compare cumulative-in-range counts at each bound both custom layouts share."""
    cb = [] if h.custom_values is None else h.custom_values.tolist()
    pb = [] if prev.custom_values is None else prev.custom_values.tolist()
    shared = [b for b in cb if b in set(pb)] + [INF]
    hc = h.positive_buckets()
    pcb = prev.positive_buckets()

    def rolled(bk: Buckets) -> list[float]:
        out: list[float] = []
        k = 0
        ups = bk.upper.tolist()
        cs = bk.count.tolist()
        for b in shared:
            s = 0.0
            while k < len(ups) and ups[k] <= b:
                s += cs[k]
                k += 1
            out.append(s)
        return out

    return any(c < p for c, p in zip(rolled(hc), rolled(pcb), strict=True))


# ------------------------------------------------------------------------------ Kahan summation


class KahanHistogramSum:
    """Sum of histograms with Kahan-Neumaier compensation per field and bucket, as Prometheus'
    ``sum``/``avg`` aggregations do (``FloatHistogram.KahanAdd``, then adding the compensation).

    ``add`` returns ``(counter_reset_collision, nhcb_bounds_reconciled)`` and raises
    :class:`IncompatibleSchemaError` when exponential and custom buckets mix.
    """

    __slots__ = ("c_count", "c_neg", "c_pos", "c_sum", "c_zero", "h")

    def __init__(self, first: FloatHistogram) -> None:
        self.h = first
        self.c_count = 0.0
        self.c_sum = 0.0
        self.c_zero = 0.0
        self.c_pos: list[float] = [0.0] * len(first.positive)
        self.c_neg: list[float] = [0.0] * len(first.negative)

    def add(self, other: FloatHistogram) -> tuple[bool, bool]:
        h = self.h
        if h.uses_custom_buckets != other.uses_custom_buckets:
            raise IncompatibleSchemaError()
        hint, collision = adjust_counter_reset(h.counter_reset_hint, other.counter_reset_hint)
        reconciled = False
        if not h.uses_custom_buckets:
            o_zc, o_thr = other.zero_count, other.zero_threshold
            while o_thr != h.zero_threshold:
                if h.zero_threshold > o_thr:
                    o_zc, o_thr = other.zero_count_for_larger_threshold(h.zero_threshold)
                if o_thr > h.zero_threshold:
                    h = self._widen_zero(h, o_thr)
            zc, self.c_zero = kahan_inc(o_zc, h.zero_count, self.c_zero)
            h = replace(h, zero_count=zc)
        count, self.c_count = kahan_inc(other.count, h.count, self.c_count)
        total, self.c_sum = kahan_inc(other.sum, h.sum, self.c_sum)

        if h.uses_custom_buckets:
            if custom_bounds_match(h.custom_values, other.custom_values):
                pi, pc, self.c_pos = _kahan_merge(
                    h.positive_index, h.positive, self.c_pos, other.positive_index, other.positive, None
                )
                cv = h.custom_values
            else:
                reconciled = True
                cv = intersect_custom_bounds(h.custom_values, other.custom_values)
                pi, pc, self.c_pos = _kahan_custom_mismatched(h, self.c_pos, other, cv)
            self.h = replace(
                h,
                count=count,
                sum=total,
                positive_index=pi,
                positive=pc,
                custom_values=cv,
                counter_reset_hint=hint,
            )
            return collision, reconciled

        schema = min(h.schema, other.schema)
        hpi, hpc, self.c_pos = _kahan_reduce(h.positive_index, h.positive, self.c_pos, h.schema, schema)
        hni, hnc, self.c_neg = _kahan_reduce(h.negative_index, h.negative, self.c_neg, h.schema, schema)
        opi, opc, ocp = _kahan_reduce(
            other.positive_index, other.positive, [0.0] * len(other.positive), other.schema, schema
        )
        oni, onc, ocn = _kahan_reduce(
            other.negative_index, other.negative, [0.0] * len(other.negative), other.schema, schema
        )
        thr = h.zero_threshold
        if thr > 0:
            keep = exponential_bounds(opi, schema) > thr
            opi, opc, ocp = opi[keep], opc[keep], [c for c, k in zip(ocp, keep.tolist(), strict=True) if k]
            keep = exponential_bounds(oni, schema) > thr
            oni, onc, ocn = oni[keep], onc[keep], [c for c, k in zip(ocn, keep.tolist(), strict=True) if k]
        pi, pc, self.c_pos = _kahan_merge(hpi, hpc, self.c_pos, opi, opc, ocp)
        ni, nc, self.c_neg = _kahan_merge(hni, hnc, self.c_neg, oni, onc, ocn)
        self.h = replace(
            h,
            schema=schema,
            count=count,
            sum=total,
            positive_index=pi,
            positive=pc,
            negative_index=ni,
            negative=nc,
            counter_reset_hint=hint,
        )
        return collision, reconciled

    def _widen_zero(self, h: FloatHistogram, threshold: float) -> FloatHistogram:
        """Zero bucket widened to ``threshold`` with compensated counts; trims and compacts."""
        p = h.positive_buckets()
        n = h.negative_buckets()
        larger = threshold
        while True:
            zc, cz = h.zero_count, self.c_zero
            for k, (lo, up, c) in enumerate(
                zip(p.lower.tolist(), p.upper.tolist(), p.count.tolist(), strict=True)
            ):
                if lo >= larger:
                    break
                zc, cz = kahan_inc(c, zc, cz)
                zc, cz = kahan_inc(self.c_pos[k], zc, cz)
                if up > larger:
                    if c != 0:
                        larger = up
                    break
            redo = False
            for k, (lo, up, c) in enumerate(
                zip(n.lower.tolist(), n.upper.tolist(), n.count.tolist(), strict=True)
            ):
                if up <= -larger:
                    break
                zc, cz = kahan_inc(c, zc, cz)
                zc, cz = kahan_inc(self.c_neg[k], zc, cz)
                if lo < -larger:
                    if c != 0:
                        larger = -lo
                        redo = True
                    break
            if not redo:
                break
        self.c_zero = cz
        pos = h.positive.copy()
        neg = h.negative.copy()
        cp = list(self.c_pos)
        cn = list(self.c_neg)
        for k, lo in enumerate(p.lower.tolist()):
            if lo < larger:
                pos[k] = 0.0
                cp[k] = 0.0
        for k, up in enumerate(n.upper.tolist()):
            if -up < larger:
                neg[k] = 0.0
                cn[k] = 0.0
        kp = [not (v == 0 and c == 0) for v, c in zip(pos.tolist(), cp, strict=True)]
        kn = [not (v == 0 and c == 0) for v, c in zip(neg.tolist(), cn, strict=True)]
        self.c_pos = [c for c, k in zip(cp, kp, strict=True) if k]
        self.c_neg = [c for c, k in zip(cn, kn, strict=True) if k]
        mp = np.array(kp, dtype=bool)
        mn = np.array(kn, dtype=bool)
        return replace(
            h,
            zero_count=zc,
            zero_threshold=larger,
            positive_index=h.positive_index[mp] if mp.size else h.positive_index,
            positive=pos[mp] if mp.size else pos,
            negative_index=h.negative_index[mn] if mn.size else h.negative_index,
            negative=neg[mn] if mn.size else neg,
        )

    def compensation(self) -> FloatHistogram:
        h = self.h
        return replace(
            h,
            count=self.c_count,
            sum=self.c_sum,
            zero_count=self.c_zero,
            positive=_arr_f(self.c_pos),
            negative=_arr_f(self.c_neg),
        )

    def result(self) -> FloatHistogram:
        """The compensated sum (Prometheus adds the compensation histogram at the end)."""
        return self.h.add(self.compensation()).histogram


def _kahan_reduce(
    idx: I64, cnt: F64, comp: list[float], origin: int, target: int
) -> tuple[I64, F64, list[float]]:
    if origin == target or idx.size == 0:
        return idx, cnt, comp
    t = target_index(idx, origin, target).tolist()
    out_i: list[int] = []
    out_c: list[float] = []
    out_k: list[float] = []
    for ti, v, c in zip(t, cnt.tolist(), comp, strict=True):
        if out_i and out_i[-1] == ti:
            out_c[-1], out_k[-1] = kahan_inc(v, out_c[-1], out_k[-1])
            out_c[-1], out_k[-1] = kahan_inc(c, out_c[-1], out_k[-1])
        else:
            out_i.append(ti)
            out_c.append(v)
            out_k.append(c)
    return _arr_i(out_i), _arr_f(out_c), out_k


def _kahan_merge(
    ai: I64, ac: F64, ak: list[float], bi: I64, bc: F64, bk: list[float] | None
) -> tuple[I64, F64, list[float]]:
    a = {i: (v, k) for i, v, k in zip(ai.tolist(), ac.tolist(), ak, strict=True)}
    bks = bk if bk is not None else [0.0] * len(bc)
    for i, v, k in zip(bi.tolist(), bc.tolist(), bks, strict=True):
        if i in a:
            s, c = a[i]
            s, c = kahan_inc(v, s, c)
            if k != 0:
                s, c = kahan_inc(k, s, c)
            a[i] = (s, c)
        else:
            a[i] = (v, k)
    keys = sorted(a)
    return _arr_i(keys), _arr_f([a[i][0] for i in keys]), [a[i][1] for i in keys]


def _kahan_custom_mismatched(
    h: FloatHistogram, hc: list[float], other: FloatHistogram, inter: F64 | None
) -> tuple[I64, F64, list[float]]:
    inter_l = [] if inter is None else inter.tolist()
    n = len(inter_l) + 1
    tgt = [0.0] * n
    comp = [0.0] * n
    for src, src_c in ((h, hc), (other, None)):
        cv = [] if src.custom_values is None else src.custom_values.tolist()
        k = 0
        for j, (i, v) in enumerate(zip(src.positive_index.tolist(), src.positive.tolist(), strict=True)):
            t = n - 1
            if i < len(cv):
                while k < len(inter_l):
                    if inter_l[k] >= cv[i]:
                        t = k
                        break
                    k += 1
            tgt[t], comp[t] = kahan_inc(v, tgt[t], comp[t])
            if src_c is not None:
                tgt[t], comp[t] = kahan_inc(src_c[j], tgt[t], comp[t])
    keep = [i for i in range(n) if not (tgt[i] == 0 and comp[i] == 0)]
    return _arr_i(keep), _arr_f([tgt[i] for i in keep]), [comp[i] for i in keep]


def storage_hints(samples: list[FloatHistogram]) -> list[FloatHistogram]:
    """The counter reset hints a query reads back from Prometheus' TSDB for one series'
    histograms appended in time order (e.g. after promqltest's ``load``).

    The TSDB keeps histograms in chunks and only stores a hint per chunk; reading returns
    ``gauge`` for gauge histograms, ``unknown`` for the first histogram of a chunk and
    ``not_reset`` for the others. A counter histogram starts a new chunk after a gauge one and
    when the append check fails: an explicit ``reset`` hint, a lower count or zero count, a
    populated bucket that shrank or vanished, changed custom bounds, or a changed schema or zero
    threshold. So an explicit ``reset`` never reads back as ``reset``.

    Pass one run of consecutive histogram samples (a float sample in between starts a new chunk,
    so start a new run there). Not modelled: chunks cut for size or at the 2h chunk range
    boundary (those histograms read back as ``unknown`` instead of ``not_reset``), and the
    bucket layout unification within a chunk (it only adds empty buckets).
    """
    out: list[FloatHistogram] = []
    prev: FloatHistogram | None = None
    for h in samples:
        if h.counter_reset_hint == CounterResetHint.GAUGE:
            out.append(h)
        elif prev is None or prev.counter_reset_hint == CounterResetHint.GAUGE:
            out.append(h.with_hint(CounterResetHint.UNKNOWN))
        elif _storage_verdict(prev, h) == CounterResetHint.NOT_RESET:
            out.append(h.with_hint(CounterResetHint.NOT_RESET))
        else:
            out.append(h.with_hint(CounterResetHint.UNKNOWN))
        prev = h
    return out


def _storage_verdict(prev: FloatHistogram, h: FloatHistogram) -> CounterResetHint:
    if h.counter_reset_hint == CounterResetHint.RESET:
        return CounterResetHint.RESET
    if h.count < prev.count:
        return CounterResetHint.RESET
    if h.schema != prev.schema or h.zero_threshold != prev.zero_threshold:
        return CounterResetHint.UNKNOWN
    if h.uses_custom_buckets and not custom_bounds_match(h.custom_values, prev.custom_values):
        return CounterResetHint.RESET
    if h.zero_count < prev.zero_count:
        return CounterResetHint.RESET
    for pi, pc, ci, cc in (
        (prev.positive_index, prev.positive, h.positive_index, h.positive),
        (prev.negative_index, prev.negative, h.negative_index, h.negative),
    ):
        if _detect_reset_side(ci.tolist(), cc.tolist(), pi.tolist(), pc.tolist()):
            return CounterResetHint.RESET
    return CounterResetHint.NOT_RESET
