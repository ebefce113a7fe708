"""The compiled rate/increase/delta, irate/idelta and deriv/predict_linear kernels (query/promql/_rate.pyx)
against the numpy paths they replace: bit-identical results on random data (counter resets, irregular scrapes, gaps, NaN,
negative values, stale markers), through the engine, for range and instant queries and `@`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.model.samples import STALE_NAN
from clearsight.query.promql import fn_range
from clearsight.query.promql.engine import Engine
from clearsight.store.memory import MemorySeriesSelector

QUERIES = [
    "rate(m[1m])",
    "increase(m[45s])",
    "delta(m[2m])",
    "rate(m[30s] offset 20s)",
    "increase(m[1m] @ 200)",
    "rate(m[5m])",
    "sum by (g) (rate(m[1m]))",
    "rate(m[1m:10s])",
    "deriv(m[1m])",
    "predict_linear(m[2m], 60)",
    "predict_linear(m[45s] offset 10s, -30)",
    "irate(m[1m])",
    "idelta(m[45s])",
    "irate(m[30s] offset 20s)",
    "sum by (g) (irate(m[1m]))",
    "idelta(m[1m:10s])",
]

value = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 50).map(float),
    st.just(math.nan),
    st.just(STALE_NAN),
    st.just(0.0),
)


@st.composite
def stores(draw: st.DrawFn) -> MemorySeriesSelector:
    sel = MemorySeriesSelector()
    for i in range(draw(st.integers(1, 5))):
        n = draw(st.integers(0, 40))
        gaps = draw(st.lists(st.integers(1, 40_000), min_size=n, max_size=n))
        ts = np.cumsum(np.asarray(gaps, dtype=np.int64)) if n else np.zeros(0, dtype=np.int64)
        # mostly-increasing counters with resets, or arbitrary values
        if draw(st.booleans()):
            inc = draw(st.lists(st.floats(0, 100, allow_nan=False), min_size=n, max_size=n))
            vals = np.cumsum(np.asarray(inc, dtype=np.float64)) if n else np.zeros(0)
            for r in draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=3)):
                if n:
                    vals[r:] -= vals[r]
        else:
            vals = np.asarray(draw(st.lists(value, min_size=n, max_size=n)), dtype=np.float64)
        sel.add(make_labels({"__name__": "m", "i": str(i), "g": str(i % 2)}), ts, vals)
    return sel


def _bits(res: object) -> list[tuple[object, list[int], list[int]]]:
    out = []
    for s in res.series:  # type: ignore[attr-defined]
        out.append((s.labels, np.asarray(s.timestamps).tolist(), np.asarray(s.values).view(np.int64).tolist()))
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), st.sampled_from(QUERIES), st.integers(0, 600), st.integers(1, 60))
def test_native_rate_matches_numpy(sel: MemorySeriesSelector, query: str, start_s: int, step_s: int) -> None:
    assert fn_range._rate is not None, "the _rate extension is not built"
    eng = Engine()
    end_ms = (start_s + 20 * step_s) * 1000
    native_range = _bits(eng.range(sel, query, start_s * 1000, end_ms, step_s * 1000))
    native_instant = _bits(eng.instant(sel, query, end_ms))
    kernel = fn_range._rate
    try:
        fn_range._rate = None
        numpy_range = _bits(eng.range(sel, query, start_s * 1000, end_ms, step_s * 1000))
        numpy_instant = _bits(eng.instant(sel, query, end_ms))
    finally:
        fn_range._rate = kernel
    assert native_range == numpy_range
    assert native_instant == numpy_instant


def test_decreasing_window_ends_fall_back() -> None:
    # `@` pins every step to one time (non-decreasing: the kernel runs); a MatrixSteps with
    # decreasing ends is handed back to the numpy path.
    from clearsight.query.promql.values import MatrixSteps

    m = MatrixSteps(
        [make_labels({"__name__": "m"})],
        [np.array([1000, 2000, 3000], dtype=np.int64)],
        [np.array([1.0, 2.0, 3.0])],
        np.array([3000, 2000], dtype=np.int64),
        2000,
    )
    assert fn_range._extrapolated_rate_native(m, True, True) is None


@pytest.mark.parametrize("query", ["rate(m[1m])", "increase(m[1m])"])
def test_resets_are_added_in_time_order(query: str) -> None:
    sel = MemorySeriesSelector()
    ts = np.arange(0, 120_000, 10_000, dtype=np.int64)
    vals = np.array([5.0, 7, 1, 3, 0.5, 9, 10, 2, 4, 1e17, 1, 3])
    sel.add(make_labels({"__name__": "m"}), ts, vals)
    eng = Engine()
    got = _bits(eng.range(sel, query, 60_000, 120_000, 10_000))
    kernel = fn_range._rate
    try:
        fn_range._rate = None
        want = _bits(eng.range(sel, query, 60_000, 120_000, 10_000))
    finally:
        fn_range._rate = kernel
    assert got == want and got


@st.composite
def flats(draw: st.DrawFn) -> fn_range.Flat:
    """Concatenated series as the engine's selectors and subqueries build them: ascending starts,
    series possibly empty or not adjacent (a gap between one's end and the next's start)."""
    lengths = draw(st.lists(st.integers(0, 12), max_size=6))
    gaps = draw(st.lists(st.integers(0, 3), min_size=len(lengths), max_size=len(lengths)))
    starts, ends, pos = [], [], 0
    for n, g in zip(lengths, gaps, strict=True):
        pos += g
        starts.append(pos)
        pos += n
        ends.append(pos)
    v = np.asarray(draw(st.lists(value, min_size=pos, max_size=pos)), dtype=np.float64)
    return fn_range.Flat(np.arange(pos, dtype=np.int64), v, np.asarray(starts, dtype=np.int64),
                         np.asarray(ends, dtype=np.int64))


@settings(max_examples=400, deadline=None)
@given(flats())
def test_compiled_counter_resets_match_numpy(flat: fn_range.Flat) -> None:
    assert fn_range._rate is not None, "the _rate extension is not built"
    np.testing.assert_array_equal(fn_range._counter_resets(flat), fn_range._counter_resets_numpy(flat))


@given(st.lists(st.integers(-5, 5), max_size=8))
def test_nondecreasing_matches_numpy(ends: list[int]) -> None:
    e = np.asarray(ends, dtype=np.int64)
    assert fn_range._rate is not None, "the _rate extension is not built"
    assert fn_range._rate.nondecreasing(e) == bool(np.all(e[1:] >= e[:-1]))
