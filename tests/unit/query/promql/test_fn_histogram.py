"""histogram_quantile / histogram_quantiles / histogram_fraction over classic bucket series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clearsight.model.labels import Labels
from clearsight.query.promql.values import QueryError, ScalarSteps, VectorSteps

from .test_fn_support import L, M, as_dict, assert_values, call, ctx, instant, load, scalar, seq

NAN = float("nan")
INF = float("inf")
T = 50 * M


def buckets(name: str, spec: dict[str, tuple[float, float]], **extra: str) -> dict[Labels, list[float | None]]:
    return {L(name=name, le=le, **extra): seq(a, b, 10) for le, (a, b) in spec.items()}


def classic_histogram() -> VectorSteps:
    data = buckets("h_bucket", {"0.1": (0, 5), ".2": (0, 7), "1e0": (0, 11), "+Inf": (0, 12)}, start="positive")
    data |= buckets("h_bucket", {"-.2": (0, 1), "-0.1": (0, 2), "0.3": (0, 2), "+Inf": (0, 3)}, start="negative")
    return instant(load(5 * M, data), [T])


POS, NEG = L(start="positive"), L(start="negative")


@pytest.mark.parametrize(
    ("q", "pos", "neg"),
    [(0, 0, -0.2), (0.2, 0.048, -0.2), (0.5, 0.15, -0.15), (0.8, 0.72, 0.3), (1, 1, 0.3)],
)
def test_histogram_quantile(q: float, pos: float, neg: float) -> None:
    c = ctx([T])
    got = call("histogram_quantile", c, scalar(q), classic_histogram())
    assert_values(got, {POS: pos, NEG: neg})
    assert isinstance(got, VectorSteps) and got.drop_name is not None and got.drop_name.all()
    assert c.annotations.warnings == [] and c.annotations.infos == []


@pytest.mark.parametrize(("q", "want", "text"), [(-0.1, -INF, "-0.1"), (1.01, INF, "1.01"), (NAN, NAN, "NaN")])
def test_histogram_quantile_out_of_range(q: float, want: float, text: str) -> None:
    c = ctx([T])
    got = as_dict(call("histogram_quantile", c, scalar(q), classic_histogram()))
    assert set(got) == {POS, NEG}
    assert all((math.isnan(x) and math.isnan(want)) or x == want for x in got.values())
    assert c.annotations.warnings == [f"PromQL warning: quantile value should be between 0 and 1, got {text}"]


def test_histogram_quantile_monotonicity_fix_and_info() -> None:
    data = buckets("nonmonotonic_bucket", {"0.1": (0, 2), "1": (0, 1), "10": (0, 5), "100": (0, 4), "1000": (0, 9), "+Inf": (0, 8)})
    v = instant(load(5 * M, data), [T])
    for q, want in ((0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)):
        c = ctx([T])
        assert_values(call("histogram_quantile", c, scalar(q), v), {(): want})
        assert c.annotations.infos == [
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see "
            "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name "
            '"nonmonotonic_bucket", from buckets 1 to +Inf, with a max diff of 10, over 1 samples from '
            "1970-01-01T00:50:00Z to 1970-01-01T00:50:00Z"
        ]


def test_histogram_quantiles() -> None:
    c = ctx([T])
    got = call("histogram_quantiles", c, classic_histogram(), "q", scalar(0), scalar(0.5), scalar(1))
    assert_values(
        got,
        {
            L(q="0.0", start="positive"): 0, L(q="0.0", start="negative"): -0.2,
            L(q="0.5", start="positive"): 0.15, L(q="0.5", start="negative"): -0.15,
            L(q="1.0", start="positive"): 1, L(q="1.0", start="negative"): 0.3,
        },
    )
    with pytest.raises(QueryError, match="same labelset"):
        call("histogram_quantiles", ctx([T]), classic_histogram(), "start", scalar(0.5))


def test_coalesced_bounds_missing_inf_and_empty() -> None:
    data = {
        L(i="1", le="0.1"): [1], L(i="1", le="0.2"): [1], L(i="1", le="2e-1"): [1], L(i="1", le="2.0e-1"): [1],
        L(i="1", le="+Inf"): [4], L(i="2", le="+inf"): [0], L(i="2", le="+Inf"): [0],
        L(i="3", le="1"): [1], L(i="3", le="2"): [2],
        L(i="4", le="1"): [0], L(i="4", le="+Inf"): [0],
    }
    got = as_dict(call("histogram_quantile", ctx([0]), scalar(0.5), instant(load(M, data), [0])))
    # i=1: buckets 0.1 -> 1, 0.2 -> 3 (merged), +Inf -> 4; rank 2 falls in (0.1, 0.2].
    assert got[L(i="1")] == pytest.approx(0.15)
    assert all(math.isnan(got[L(i=k)]) for k in ("2", "3", "4"))


def test_bad_le_label_warns_and_is_skipped() -> None:
    v = instant(load(M, {L(name="series", ale="0.1"): [2], L(name="series", le="Hello World"): [3]}), [0])
    c = ctx([0])
    assert as_dict(call("histogram_quantile", c, scalar(0.8), v)) == {}
    assert c.annotations.warnings == [
        'PromQL warning: bucket label "le" is missing or has a malformed value of "" for metric name "series"',
        'PromQL warning: bucket label "le" is missing or has a malformed value of "Hello World" for metric name "series"',
    ]


def test_quantile_varies_per_step_and_bucket_presence() -> None:
    s = load(M, {L(le="1"): [1, 1, None], L(le="2"): [3, 3, 3], L(le="+Inf"): [4, 4, 4]})
    steps = [0, M, 2 * M]
    got = call("histogram_quantile", ctx(steps), ScalarSteps(np.array([0.5, 0.25, 0.5])), instant(s, steps, lookback_ms=M))
    assert isinstance(got, VectorSteps)
    # step 0: rank 2 in (1, 2] -> 1.5; step 1: rank 1 -> bucket 1 -> 1.0; step 2: the le=1 bucket is
    # gone, so rank 2 falls in [0, 2] -> 2 * 2/3.
    assert got.values[0].tolist() == pytest.approx([1.5, 1.0, 4 / 3])


@pytest.mark.parametrize(
    ("lo", "hi", "want"),
    [(0, 4, 0.6666666666666666), (0, 6, 1), (0, 3.5, 0.5833333333333334), (2, 2, 0), (3, 2, 0), (NAN, 1, NAN),
     (0, NAN, NAN), (-10, -5, 0), (-INF, INF, 1)],
)
def test_histogram_fraction(lo: float, hi: float, want: float) -> None:
    data = buckets("h2_bucket", {"0": (0, 0), "2": (0, 1), "4": (0, 2), "6": (0, 3), "+Inf": (0, 3)})
    got = as_dict(call("histogram_fraction", ctx([T]), scalar(lo), scalar(hi), instant(load(5 * M, data), [T])))
    assert list(got) == [()]
    assert (math.isnan(want) and math.isnan(got[()])) or got[()] == pytest.approx(want)


def test_histogram_fraction_edges() -> None:
    pos = {L(le="1"): [1], L(le="2"): [3], L(le="3"): [6], L(le="+Inf"): [100]}
    assert as_dict(call("histogram_fraction", ctx([0]), scalar(0), scalar(1.5), instant(load(M, pos), [0]))) == {(): 0.02}
    neg = {L(le="-3"): [10], L(le="-2"): [12], L(le="-1"): [15], L(le="+Inf"): [100]}
    assert as_dict(call("histogram_fraction", ctx([0]), scalar(-4), scalar(-2), instant(load(M, neg), [0]))) == {(): 0.02}
    zero = {L(le="1"): [0], L(le="+Inf"): [0]}
    assert math.isnan(as_dict(call("histogram_fraction", ctx([0]), scalar(0), scalar(5), instant(load(M, zero), [0])))[()])


def test_native_only_functions_are_empty_for_floats() -> None:
    v = classic_histogram()
    for fn in ("histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar"):
        out = call(fn, ctx([T]), v)
        assert isinstance(out, VectorSteps) and out.num_series == 0


def test_histogram_quantiles_per_step_quantiles() -> None:
    s = load(M, {L(le="1"): [1, 1], L(le="2"): [3, 3], L(le="+Inf"): [4, 4]})
    steps = [0, M]
    v = instant(s, steps)
    got = call("histogram_quantiles", ctx(steps), v, "q", ScalarSteps(np.array([0.5, 0.25])))
    assert isinstance(got, VectorSteps)
    assert as_dict(got, 0) == {L(q="0.5"): 1.5}
    assert as_dict(got, 1) == {L(q="0.25"): 1.0}
    # The same quantile twice collides.
    with pytest.raises(QueryError, match="same labelset"):
        call("histogram_quantiles", ctx(steps), v, "q", scalar(0.5, 2), scalar(0.5, 2))
