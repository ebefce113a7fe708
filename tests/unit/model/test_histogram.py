"""FloatHistogram arithmetic, layout, resets: hand-checked cases plus hypothesis properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clearsight.model.histogram import (
    CUSTOM_BUCKETS_SCHEMA,
    CounterResetHint,
    FloatHistogram,
    HistogramError,
    IncompatibleSchemaError,
    KahanHistogramSum,
    adjust_counter_reset,
    exponential_bound,
    exponential_bounds,
    indices_to_spans,
    spans_to_indices,
    storage_hints,
)
from clearsight.model.histogram_math import histogram_fraction, histogram_quantile
from clearsight.model.histogram_text import format_histogram, parse_histogram, promqltest_equal

R = CounterResetHint


def H(text: str) -> FloatHistogram:
    return parse_histogram(text).histogram


def same(a: FloatHistogram, b: FloatHistogram) -> bool:
    return promqltest_equal(a, b, True)


# ------------------------------------------------------------------------------ bounds


def test_exponential_bounds() -> None:
    assert exponential_bound(0, 0) == 1.0
    assert exponential_bound(1, 0) == 2.0
    assert exponential_bound(-1, 0) == 0.5
    assert exponential_bound(1, 1) == pytest.approx(math.sqrt(2))
    assert exponential_bound(2, 1) == 2.0
    assert exponential_bound(1, -1) == 4.0
    assert exponential_bound(-2, -2) == 2.0**-8
    # The last regular bucket ends at MaxFloat64, the next one (for +Inf observations) at +Inf.
    assert exponential_bound(1024, 0) == 1.7976931348623157e308
    assert exponential_bound(1025, 0) == math.inf
    assert exponential_bound(256, -2) == 1.7976931348623157e308
    assert exponential_bound(1024 * 256, 8) == 1.7976931348623157e308
    assert exponential_bound(1024 * 256 + 1, 8) == math.inf  # no OverflowError
    assert exponential_bound(-2000, 0) == 0.0
    idx = np.concatenate((np.arange(-40, 40), [-1200, 1023, 1024, 1025, 1026, 262144, 262145])).astype(
        np.int64
    )
    for schema in (-4, -1, 0, 3, 8):
        vec = exponential_bounds(idx, schema)
        assert vec.tolist() == [exponential_bound(i, schema) for i in idx.tolist()]
        assert bool(np.all(np.diff(vec[:80]) > 0))


def test_spans_round_trip() -> None:
    idx = spans_to_indices([(-2, 2), (3, 1), (0, 2)], 5)
    assert idx.tolist() == [-2, -1, 3, 4, 5]
    # Adjacent spans merge when converting back (same layout).
    assert indices_to_spans(idx) == [(-2, 2), (3, 3)]
    with pytest.raises(HistogramError):
        spans_to_indices([(0, 2)], 3)
    with pytest.raises(HistogramError):
        spans_to_indices([(0, 1), (-1, 1)], 2)
    h = FloatHistogram.from_spans(count=3, positive_spans=[(1, 1), (2, 2)], positive_buckets=[1, 1, 1])
    assert h.positive_index.tolist() == [1, 4, 5]


# ------------------------------------------------------------------------------ scalar math


def test_mul_div_neg() -> None:
    h = H("{{schema:0 count:4 sum:5 z_bucket:1 z_bucket_w:0.5 buckets:[1 2] n_buckets:[0 1]}}")
    assert same(h.mul(2), H("{{count:8 sum:10 z_bucket:2 z_bucket_w:0.5 buckets:[2 4] n_buckets:[0 2]}}"))
    assert h.mul(2).counter_reset_hint == R.UNKNOWN
    assert h.mul(-1).counter_reset_hint == R.GAUGE
    assert same(-h, h.mul(-1))
    assert same(
        h / 4, H("{{count:1 sum:1.25 z_bucket:0.25 z_bucket_w:0.5 buckets:[0.25 0.5] n_buckets:[0 0.25]}}")
    )
    # Division by zero: infinite/NaN totals and no buckets (Prometheus' Div).
    z = h.div(0)
    assert z.count == math.inf and z.sum == math.inf and z.zero_count == math.inf
    assert z.positive.size == 0 and z.negative.size == 0
    assert math.isnan(H("{{}}").div(0).count)
    assert h.div(-2).counter_reset_hint == R.GAUGE
    # The original is never modified.
    assert h.count == 4 and h.positive.tolist() == [1, 2]


# ------------------------------------------------------------------------------ add / sub


def test_add_same_layout() -> None:
    a = H("{{schema:0 count:4 sum:5 buckets:[1 2 1]}}")
    b = H("{{schema:0 count:2 sum:1 offset:1 buckets:[1 0 0 1]}}")
    r = a.add(b)
    assert not r.counter_reset_collision and not r.nhcb_bounds_reconciled
    assert same(r.histogram, H("{{schema:0 count:6 sum:6 buckets:[1 3 1 0 1]}}"))


def test_add_reduces_to_coarser_schema() -> None:
    fine = FloatHistogram.build(schema=1, count=3, sum=4, positive={1: 1, 2: 2})  # (1,√2], (√2,2]
    coarse = FloatHistogram.build(schema=0, count=3, sum=3, positive={1: 3, 2: 0})  # (1,2]
    for r in (fine + coarse, coarse + fine):
        assert r.schema == 0
        assert same(r, H("{{schema:0 count:6 sum:7 offset:1 buckets:[6]}}"))


def test_add_reconciles_zero_threshold() -> None:
    # (0.25,0.5] falls into the other histogram's zero bucket of width 0.5.
    a = FloatHistogram.build(schema=0, count=5, sum=3, positive={-1: 2, 0: 3})
    b = FloatHistogram.build(
        schema=0, count=2, sum=1, zero_threshold=0.5, zero_count=1, positive={-1: 0, 1: 1}
    )
    for r in (a + b, b + a):
        assert r.zero_threshold == 0.5
        assert same(r, H("{{count:7 sum:4 z_bucket:3 z_bucket_w:0.5 buckets:[3 1]}}"))


def test_add_moves_threshold_out_of_populated_bucket() -> None:
    # 0.7 lies inside the populated bucket (0.5,1]: the zero bucket grows to 1.
    a = FloatHistogram.build(schema=0, count=4, sum=3, positive={0: 3, 1: 1})
    b = FloatHistogram.build(schema=0, count=1, sum=0, zero_threshold=0.7, zero_count=1)
    r = a + b
    assert r.zero_threshold == 1.0
    assert same(r, H("{{count:5 sum:3 z_bucket:4 z_bucket_w:1 offset:1 buckets:[1]}}"))
    # An empty bucket under the threshold does not move it.
    a2 = FloatHistogram.build(schema=0, count=1, sum=3, positive={0: 0, 1: 1})
    assert (a2 + b).zero_threshold == 0.7


def test_sub_and_counter_reset_hints() -> None:
    a = H("{{count:4 sum:4 buckets:[1 2 1] counter_reset_hint:not_reset}}")
    b = H("{{count:1 sum:1 buckets:[0 1] counter_reset_hint:reset}}")
    r = a.sub(b)
    assert r.counter_reset_collision
    assert r.histogram.counter_reset_hint == R.UNKNOWN
    assert same(r.histogram, H("{{count:3 sum:3 buckets:[1 1 1] counter_reset_hint:unknown}}"))
    assert adjust_counter_reset(R.GAUGE, R.RESET) == (R.GAUGE, False)
    assert adjust_counter_reset(R.NOT_RESET, R.GAUGE) == (R.GAUGE, False)
    assert adjust_counter_reset(R.UNKNOWN, R.RESET) == (R.UNKNOWN, False)
    assert adjust_counter_reset(R.RESET, R.RESET) == (R.RESET, False)


def test_custom_buckets_add_matching_and_mismatched() -> None:
    # native_histograms.test: metric{series="2"} + ignoring(series) metric{series="3"}
    a = H("{{schema:-53 sum:1 count:1 custom_values:[10] buckets:[1]}}")
    b = H("{{schema:-53 sum:1 count:1 custom_values:[2 10] buckets:[1]}}")
    r = a.add(b)
    assert r.nhcb_bounds_reconciled
    assert same(r.histogram, H("{{schema:-53 count:2 sum:2 custom_values:[10] buckets:[2]}}"))
    d = a.sub(b)
    assert d.nhcb_bounds_reconciled
    assert same(d.histogram, H("{{schema:-53 custom_values:[10]}}"))
    # Disjoint bounds: everything lands in the +Inf bucket of an NHCB without bounds.
    c = H("{{schema:-53 sum:1 count:1 custom_values:[5] buckets:[0 1]}}")
    e = (a + c).compact()
    assert e.custom_values is None and e.positive_index.tolist() == [0] and e.positive.tolist() == [2]
    m = H("{{schema:-53 sum:2 count:3 custom_values:[10] buckets:[1 2]}}")
    r2 = a.add(m)
    assert not r2.nhcb_bounds_reconciled
    assert same(r2.histogram, H("{{schema:-53 count:4 sum:3 custom_values:[10] buckets:[2 2]}}"))


def test_mixing_exponential_and_custom_is_an_error() -> None:
    with pytest.raises(IncompatibleSchemaError, match="mix of exponential and custom bucket schemas"):
        H("{{schema:-53 custom_values:[1]}}").add(H("{{schema:0}}"))
    with pytest.raises(IncompatibleSchemaError):
        KahanHistogramSum(H("{{schema:0}}")).add(H("{{schema:-53}}"))


def test_kahan_sum_cancels_large_sums() -> None:
    # native_histograms.test "sum(histogram_sum)": 3.1 + 1e100 - 1e100 + 1.3 == 4.4
    parts = [
        H("{{count:25 sum:3.1 z_bucket:4 z_bucket_w:0.001 buckets:[1 2 0 1 1] n_buckets:[2 4 0 0 1 9]}}"),
        H(
            "{{count:41 sum:1e100 z_bucket:5 z_bucket_w:0.001 buckets:[1 3 1 2 1 1 1] n_buckets:[0 1 4 2 7 0 0 0 0 5 5 2]}}"
        ),
        H(
            "{{count:41 sum:-1e100 z_bucket:5 z_bucket_w:0.001 buckets:[1 3 1 2 1 1 1] n_buckets:[0 1 4 2 7 0 0 0 0 5 5 2]}}"
        ),
        H(
            "{{schema:1 count:0 sum:1.3 z_bucket:3 z_bucket_w:0.001 buckets:[2 4 2 3 2 2] n_buckets:[1 2 5 3 8 1 1 1 1 6 3]}}"
        ),
    ]
    acc = KahanHistogramSum(parts[0])
    for p in parts[1:]:
        assert acc.add(p) == (False, False)
    want = H(
        "{{schema:0 count:107 sum:4.4 z_bucket:17 z_bucket_w:0.001 buckets:[5 14 7 7 3 2 2] "
        "n_buckets:[3 13 19 6 17 18 0 0 0 10 10 4]}}"
    )
    assert same(acc.result(), want)
    plain = parts[0]
    for p in parts[1:]:
        plain = plain + p
    assert plain.sum != pytest.approx(4.4)  # the naive sum loses 3.1


def test_kahan_sum_custom_mismatched_bounds() -> None:
    acc = KahanHistogramSum(H("{{schema:-53 sum:1 count:1 custom_values:[5 10] buckets:[1]}}"))
    assert acc.add(H("{{schema:-53 sum:1 count:1 custom_values:[10] buckets:[1]}}")) == (False, True)
    assert same(acc.result(), H("{{schema:-53 count:2 sum:2 custom_values:[10] buckets:[2]}}"))


def test_kahan_sum_zero_threshold_and_schema() -> None:
    a = FloatHistogram.build(schema=1, count=5, sum=3, positive={-2: 2, 1: 3})
    b = FloatHistogram.build(schema=0, count=2, sum=1, zero_threshold=0.5, zero_count=1, positive={1: 1})
    acc = KahanHistogramSum(a)
    acc.add(b)
    assert same(acc.result(), a + b)


# ------------------------------------------------------------------------------ layout


def test_compact_drops_only_empty_buckets() -> None:
    h = FloatHistogram.build(count=2, positive={0: 0.0, 1: 1, 2: -0.0, 3: math.nan}, negative={5: 0})
    c = h.compact()
    assert c.positive_index.tolist() == [1, 3] and c.negative.size == 0
    assert c.compact() is c


def test_copy_to_schema() -> None:
    h = FloatHistogram.build(
        schema=2, count=10, sum=7, zero_count=1, positive={-1: 1, 0: 2, 1: 3, 4: 1}, negative={1: 2}
    )
    r = h.copy_to_schema(0)
    # schema 2 -> 0 merges four buckets: indices 1..4 -> 1, -3..0 -> 0.
    assert same(
        r,
        FloatHistogram.build(schema=0, count=10, sum=7, zero_count=1, positive={0: 3, 1: 4}, negative={1: 2}),
    )
    assert h.copy_to_schema(2) is h
    with pytest.raises(HistogramError):
        h.copy_to_schema(3)
    with pytest.raises(HistogramError):
        h.copy_to_schema(CUSTOM_BUCKETS_SCHEMA)
    with pytest.raises(HistogramError):
        H("{{schema:-53}}").copy_to_schema(0)


def test_validate() -> None:
    H("{{schema:-53 count:1 custom_values:[1 2] buckets:[0 0 1]}}").validate()
    with pytest.raises(HistogramError, match="custom bounds"):
        H("{{schema:-53 count:1 custom_values:[1] buckets:[0 0 1]}}").validate()
    with pytest.raises(HistogramError, match="invalid schema"):
        H("{{schema:9}}").validate()
    with pytest.raises(HistogramError, match="negative"):
        H("{{buckets:[-1]}}").validate()
    with pytest.raises(HistogramError, match="zero count"):
        H("{{schema:-53 z_bucket:1}}").validate()


def test_equals_is_exact() -> None:
    a = H("{{count:2 sum:1 buckets:[1 1]}}")
    assert a.equals(H("{{count:2 sum:1 buckets:[1 1] counter_reset_hint:gauge}}"))
    assert not a.equals(H("{{count:2 sum:1 buckets:[1 1 0]}}"))  # layout differs
    assert not a.equals(a.mul(1 + 1e-15))


# ------------------------------------------------------------------------------ counter resets


@pytest.mark.parametrize(
    ("prev", "cur", "reset"),
    [
        ("{{count:4 buckets:[1 2 1]}}", "{{count:5 buckets:[1 3 1]}}", False),
        ("{{count:4 buckets:[1 2 1]}}", "{{count:3 buckets:[1 1 1]}}", True),
        ("{{count:4 buckets:[1 2 1]}}", "{{count:5 buckets:[2 1 2]}}", True),
        ("{{count:4 buckets:[1 2 1]}}", "{{count:5 buckets:[1 2]}}", True),  # populated bucket vanished
        ("{{count:4 buckets:[1 2 0]}}", "{{count:5 buckets:[1 2]}}", False),  # empty bucket vanished
        ("{{count:4 buckets:[1 2 1]}}", "{{count:5 buckets:[1 2 1] counter_reset_hint:reset}}", True),
        ("{{count:4 buckets:[1 2 1]}}", "{{count:1 buckets:[1] counter_reset_hint:not_reset}}", False),
        ("{{count:4 z_bucket:2}}", "{{count:4 z_bucket:1 buckets:[1]}}", True),
        ("{{count:2 sum:5}}", "{{count:2 sum:1}}", False),  # the sum does not count
        # A finer schema can only come with a reset; a coarser one compares merged buckets.
        ("{{schema:0 count:2 buckets:[2]}}", "{{schema:1 count:2 buckets:[2]}}", True),
        ("{{schema:1 count:3 offset:1 buckets:[1 2]}}", "{{schema:0 count:3 offset:1 buckets:[3]}}", False),
        ("{{schema:1 count:3 offset:1 buckets:[1 2]}}", "{{schema:0 count:3 offset:1 buckets:[2]}}", True),
        # A wider zero bucket swallows (0.5,1]; a narrower one means a reset.
        ("{{count:3 z_bucket:1 z_bucket_w:0.1 buckets:[2]}}", "{{count:3 z_bucket:3 z_bucket_w:1}}", False),
        (
            "{{count:3 z_bucket:1 z_bucket_w:0.7 buckets:[2]}}",
            "{{count:3 z_bucket:1 z_bucket_w:0.1 buckets:[2]}}",
            True,
        ),
        ("{{count:3 z_bucket:1 z_bucket_w:0.1 buckets:[2]}}", "{{count:3 z_bucket:3 z_bucket_w:0.7}}", True),
        # Custom buckets: changed bounds compare counts over the shared bounds.
        (
            "{{schema:-53 count:2 custom_values:[5 10] buckets:[1 1]}}",
            "{{schema:-53 count:2 custom_values:[10] buckets:[2]}}",
            False,
        ),
        (
            "{{schema:-53 count:2 custom_values:[5 10] buckets:[1 1]}}",
            "{{schema:-53 count:2 custom_values:[10] buckets:[1 1]}}",
            True,
        ),
        ("{{count:1 buckets:[1]}}", "{{schema:-53 count:1 custom_values:[10] buckets:[1]}}", True),
    ],
)
def test_detect_reset(prev: str, cur: str, reset: bool) -> None:
    assert H(cur).detect_reset(H(prev)) is reset


def test_storage_hints() -> None:
    seq = [
        H("{{count:1 buckets:[1]}}"),
        H("{{count:2 buckets:[2]}}"),
        H("{{count:1 buckets:[1]}}"),
        H("{{schema:1 count:2 buckets:[2]}}"),
        H("{{schema:1 count:3 buckets:[3] counter_reset_hint:reset}}"),
        H("{{count:1 counter_reset_hint:gauge}}"),
        H("{{count:4 buckets:[4]}}"),
    ]
    got = [h.counter_reset_hint for h in storage_hints(seq)]
    # First of each chunk unknown, later ones not_reset; an explicit reset never reads back.
    assert got == [R.UNKNOWN, R.NOT_RESET, R.UNKNOWN, R.UNKNOWN, R.UNKNOWN, R.GAUGE, R.UNKNOWN]


# ------------------------------------------------------------------------------ properties

_COUNT = st.integers(min_value=0, max_value=50).map(float)


@st.composite
def exp_histograms(
    draw: st.DrawFn, schema: int | None = None, zero_threshold: float | None = None
) -> FloatHistogram:
    s = draw(st.integers(min_value=-2, max_value=4)) if schema is None else schema
    pos = draw(st.dictionaries(st.integers(min_value=-12, max_value=12), _COUNT, max_size=8))
    neg = draw(st.dictionaries(st.integers(min_value=-12, max_value=12), _COUNT, max_size=8))
    # Thresholds on a bucket boundary of every schema >= -2 (a threshold inside a coarser bucket
    # makes Prometheus' add order-dependent).
    zt = draw(st.sampled_from([0.0, 2.0**-8, 1.0])) if zero_threshold is None else zero_threshold
    zc = draw(_COUNT) if zt > 0 else 0.0
    # Valid histograms have no bucket entirely inside the zero bucket.
    pos = {i: v for i, v in pos.items() if exponential_bound(i, s) > zt}
    neg = {i: v for i, v in neg.items() if exponential_bound(i, s) > zt}
    total = sum(pos.values()) + sum(neg.values()) + zc
    sm = draw(st.integers(min_value=-100, max_value=100).map(float))
    return FloatHistogram.build(
        schema=s, count=total, sum=sm, zero_threshold=zt, zero_count=zc, positive=pos, negative=neg
    )


@st.composite
def custom_histograms(draw: st.DrawFn) -> FloatHistogram:
    cv = sorted(draw(st.sets(st.integers(min_value=-20, max_value=40).map(float), max_size=6)))
    pos = draw(st.dictionaries(st.integers(min_value=0, max_value=len(cv)), _COUNT, max_size=len(cv) + 1))
    return FloatHistogram.build(
        schema=CUSTOM_BUCKETS_SCHEMA,
        count=sum(pos.values()),
        sum=draw(st.integers(min_value=-100, max_value=100).map(float)),
        positive=pos,
        custom_values=cv,
    )


_settings = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(st.data())
def test_add_then_sub_is_identity_up_to_compaction(data: st.DataObject) -> None:
    schema = data.draw(st.integers(min_value=-2, max_value=4))
    zt = data.draw(st.sampled_from([0.0, 0.001, 0.5]))
    a = data.draw(exp_histograms(schema, zt))
    b = data.draw(exp_histograms(schema, zt))
    assert same((a + b - b).compact(), a.compact())


@_settings
@given(custom_histograms(), custom_histograms())
def test_custom_add_then_sub_with_same_bounds(a: FloatHistogram, b: FloatHistogram) -> None:
    n_bounds = 0 if a.custom_values is None else len(a.custom_values)
    pairs = zip(b.positive_index.tolist(), b.positive.tolist(), strict=True)
    b = FloatHistogram.build(
        schema=CUSTOM_BUCKETS_SCHEMA,
        count=b.count,
        sum=b.sum,
        positive={i: v for i, v in pairs if i <= n_bounds},
        custom_values=a.custom_values,
    )
    assert same((a + b - b).compact(), a.compact())


@_settings
@given(exp_histograms(), exp_histograms())
def test_add_preserves_totals_and_commutes(a: FloatHistogram, b: FloatHistogram) -> None:
    ab, ba = a + b, b + a
    assert same(ab, ba)
    assert ab.count == a.count + b.count
    assert ab.schema == min(a.schema, b.schema)
    assert ab.zero_threshold >= max(a.zero_threshold, b.zero_threshold)
    in_buckets = ab.zero_count + float(ab.positive.sum()) + float(ab.negative.sum())
    assert in_buckets == pytest.approx(ab.count)


@_settings
@given(exp_histograms(), st.integers(min_value=-4, max_value=4))
def test_reducing_schema_preserves_count_and_sum(h: FloatHistogram, target: int) -> None:
    target = min(target, h.schema)
    r = h.copy_to_schema(target)
    assert r.schema == target
    assert (r.count, r.sum, r.zero_count) == (h.count, h.sum, h.zero_count)
    assert float(r.positive.sum()) == float(h.positive.sum())
    assert float(r.negative.sum()) == float(h.negative.sum())
    # Merging never creates a reset, and the coarse histogram has the same quantile buckets.
    assert not r.with_hint(R.UNKNOWN).detect_reset(h)
    fr, fh = histogram_fraction(-math.inf, math.inf, r)[0], histogram_fraction(-math.inf, math.inf, h)[0]
    assert fr == fh or (math.isnan(fr) and math.isnan(fh))


@_settings
@given(st.one_of(exp_histograms(), custom_histograms()), st.lists(st.floats(0, 1), min_size=2, max_size=6))
def test_quantile_is_monotonic_in_q(h: FloatHistogram, qs: list[float]) -> None:
    # An NHCB without bounds has the single bucket (-Inf, +Inf]: Prometheus answers NaN.
    assume(not (h.uses_custom_buckets and (h.custom_values is None or len(h.custom_values) == 0)))
    qs = sorted(qs)
    vals = [histogram_quantile(q, h)[0] for q in qs]
    if h.count == 0:
        assert all(math.isnan(v) for v in vals)
        return
    for lo, hi in itertools.pairwise(vals):
        assert lo <= hi or math.isclose(lo, hi, rel_tol=1e-12)


@_settings
@given(st.one_of(exp_histograms(), custom_histograms()))
def test_fraction_of_everything_is_one(h: FloatHistogram) -> None:
    f, _ = histogram_fraction(-math.inf, math.inf, h)
    if h.count == 0:
        assert math.isnan(f)
    else:
        assert f == pytest.approx(1.0)
        assert histogram_fraction(-math.inf, 0, h)[0] + histogram_fraction(0, math.inf, h)[
            0
        ] == pytest.approx(1.0)


@_settings
@given(st.one_of(exp_histograms(), custom_histograms()), st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_fraction_is_within_zero_and_one(h: FloatHistogram, a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    f, _ = histogram_fraction(lo, hi, h)
    if h.count:
        assert -1e-12 <= f <= 1 + 1e-12


@_settings
@given(st.one_of(exp_histograms(), custom_histograms()))
def test_format_parse_round_trip(h: FloatHistogram) -> None:
    p = parse_histogram(format_histogram(h))
    assert same(p.histogram, h)


@_settings
@given(st.lists(exp_histograms(), min_size=1, max_size=5))
def test_kahan_sum_matches_plain_sum_on_small_integers(hs: list[FloatHistogram]) -> None:
    acc = KahanHistogramSum(hs[0])
    plain = hs[0]
    for h in hs[1:]:
        acc.add(h)
        plain = plain + h
    assert same(acc.result().compact(), plain.compact())


def test_stale_marker() -> None:
    from clearsight.model.histogram import is_stale_histogram, stale_histogram

    s = stale_histogram()
    assert is_stale_histogram(s) and math.isnan(s.sum)
    assert not is_stale_histogram(H("{{sum:NaN}}"))
    assert not is_stale_histogram(H("{{count:1}}"))


_WILD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf]),
)


@st.composite
def wild_histograms(draw: st.DrawFn) -> FloatHistogram:
    custom = draw(st.booleans())
    if custom:
        cv = sorted(draw(st.sets(st.floats(-1e300, 1e300), max_size=4)))
        pos = draw(st.dictionaries(st.integers(0, len(cv)), _WILD, max_size=5))
        return FloatHistogram.build(
            schema=CUSTOM_BUCKETS_SCHEMA, count=draw(_WILD), sum=draw(_WILD), positive=pos, custom_values=cv
        )
    return FloatHistogram.build(
        schema=draw(st.integers(-4, 8)),
        count=draw(_WILD),
        sum=draw(_WILD),
        zero_threshold=draw(st.sampled_from([0.0, 1e-300, 0.001, 1.0, 1e300])),
        zero_count=draw(_WILD),
        positive=draw(st.dictionaries(st.integers(-1200, 1200), _WILD, max_size=5)),
        negative=draw(st.dictionaries(st.integers(-1200, 1200), _WILD, max_size=5)),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wild_histograms(), wild_histograms(), _WILD, st.floats(-2, 2))
def test_no_python_exceptions_or_warnings_on_wild_values(
    a: FloatHistogram, b: FloatHistogram, x: float, q: float
) -> None:
    """Go never raises on float edge cases; neither may we (warnings are errors in the tests).

    The range-function and trim arithmetic is the engine's own (``nh_functions.histogram_rate``
    for rate/increase/delta, ``nh_aggregations.histogram_mean`` for avg/avg_over_time, the
    Kahan sum of sum/sum_over_time, ``histogram_math.trim_buckets`` for ``</`` and ``>/``)."""
    from clearsight.model.histogram_math import (
        histogram_avg,
        histogram_stddev,
        histogram_stdvar,
        trim_buckets,
    )
    from clearsight.query.promql.nh_aggregations import histogram_mean
    from clearsight.query.promql.nh_functions import histogram_rate
    from clearsight.query.promql.values import Annotations, FuncContext

    for h in (a, b):
        h.mul(x)
        h.div(x)
        h.compact()
        histogram_quantile(q, h)
        histogram_fraction(min(x, q), max(x, q), h)
        histogram_avg(h)
        histogram_stddev(h)
        histogram_stdvar(h)
        trim_buckets(h, x, True)
        trim_buckets(h, x, False)
        format_histogram(h)
        h.iter_buckets()
        if not h.uses_custom_buckets:
            h.copy_to_schema(-4)
    try:
        a.add(b)
        a.sub(b)
        b.detect_reset(a)
        acc = KahanHistogramSum(a)
        acc.add(b)
        acc.result()
        histogram_mean([a, b])
    except IncompatibleSchemaError:
        assert a.uses_custom_buckets != b.uses_custom_buckets
    for is_counter in (True, False):
        ctx = FuncContext(np.zeros(1, dtype=np.int64), [], Annotations())
        r = histogram_rate(ctx, [a, b], is_counter, "m")
        # No result only for delta across exponential and custom buckets, and then with the
        # warning (for rate/increase the switch is a counter reset: the first point is ignored).
        mixed = a.uses_custom_buckets != b.uses_custom_buckets
        assert (r is None) == (mixed and not is_counter)
        if r is None:
            assert ctx.annotations.warnings == [
                'PromQL warning: vector contains a mix of histograms with exponential and custom buckets '
                'schemas for metric name "m"']
