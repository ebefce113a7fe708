"""The compiled ``*_over_time``/``changes``/``resets`` kernel (query/promql/_overtime.pyx) against
the numpy path it replaces: bit-identical results (NaN signs aside, see ``_value_bits``) on random
data (NaN, infinities, signed zeros, ill-conditioned and overflowing sums, windows longer than
numpy's pairwise block, empty series, window ends in any order), directly and through the engine
for range and instant queries, offsets and ``@``. The one intended difference: a ``min``/``max``
that is a zero takes the first zero's sign, as Prometheus' loop does (numpy's SIMD ``fmax`` may
keep another); that case is checked against Prometheus' loop instead."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.model.samples import STALE_NAN
from clearsight.query.promql import fn_range
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.fn_common import Flat
from clearsight.query.promql.values import Annotations, FuncContext, MatrixSteps, Value, VectorSteps
from clearsight.store.memory import MemorySeriesSelector

FUNCS = sorted(fn_range._OVER_TIME_OPS)
IMPLS = {
    "count_over_time": fn_range.fn_count_over_time,
    "present_over_time": fn_range.fn_present_over_time,
    "last_over_time": fn_range.fn_last_over_time,
    "first_over_time": fn_range.fn_first_over_time,
    "ts_of_last_over_time": fn_range.fn_ts_of_last_over_time,
    "ts_of_first_over_time": fn_range.fn_ts_of_first_over_time,
    "max_over_time": fn_range.fn_max_over_time,
    "min_over_time": fn_range.fn_min_over_time,
    "sum_over_time": fn_range.fn_sum_over_time,
    "avg_over_time": fn_range.fn_avg_over_time,
    "changes": fn_range.fn_changes,
    "resets": fn_range.fn_resets,
    "ts_of_max_over_time": fn_range.fn_ts_of_max_over_time,
    "ts_of_min_over_time": fn_range.fn_ts_of_min_over_time,
}

special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 1.0, -1.0])
value = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-5, 50).map(float),
    st.floats(allow_nan=False, allow_infinity=False),
    special,
)
# ill-conditioned sums (cancellation), the compensated replay's case
cancelling = st.sampled_from([1e16, -1e16, 3.0, 1e-3, -7.5, 2.0**53, 1e100, -1e100])


@contextmanager
def numpy_path() -> Iterator[None]:
    kernel = fn_range._overtime
    fn_range._overtime = None
    try:
        yield
    finally:
        fn_range._overtime = kernel


def _value_bits(values: object) -> list[int]:
    """The values' bits, every NaN as the one quiet NaN: the compiler may order the operands of a
    commutative addition either way, and the x86 result of NaN + NaN (or of inf + -inf, then NaN)
    carries the first operand's sign. The sign of a NaN is not observable through the API (every
    NaN prints as ``NaN``)."""
    out = np.array(values, dtype=np.float64).ravel()
    out[np.isnan(out)] = math.nan
    return out.view(np.int64).tolist()


def _bits(out: VectorSteps) -> tuple[object, ...]:
    return (out.labels, _value_bits(out.values), np.asarray(out.present).tolist(),
            None if out.drop_name is None else np.asarray(out.drop_name).tolist())


def _prometheus_extreme(window: list[float], use_max: bool) -> float:
    """Prometheus' max_over_time/min_over_time loop."""
    r = window[0]
    for f in window:
        if (f > r if use_max else f < r) or math.isnan(r):
            r = f
    return r


@st.composite
def matrices(draw: st.DrawFn) -> MatrixSteps:
    """A MatrixSteps over flat arrays as the engine's selectors build them (series after one
    another, possibly empty), timestamps with repeats and gaps, window ends in any order."""
    lengths = draw(st.lists(st.integers(0, 300), max_size=4))
    starts, ends, pos = [], [], 0
    for n in lengths:
        starts.append(pos)
        pos += n
        ends.append(pos)
    elems = draw(st.sampled_from([value, cancelling, st.integers(0, 3).map(float)]))
    v = np.asarray(draw(st.lists(elems, min_size=pos, max_size=pos)), dtype=np.float64)
    t = np.zeros(pos, dtype=np.int64)
    for s, e in zip(starts, ends, strict=True):
        steps = draw(st.lists(st.integers(0, 20_000), min_size=e - s, max_size=e - s))
        t[s:e] = np.cumsum(np.asarray(steps, dtype=np.int64)) if e > s else t[s:e]
    k = draw(st.integers(1, 6))
    wend = np.asarray(draw(st.lists(st.integers(-10_000, 6_000_000), min_size=k, max_size=k)), dtype=np.int64)
    if draw(st.booleans()):
        wend = np.sort(wend)
    rng = draw(st.sampled_from([1, 15_000, 60_000, 600_000, 3_600_000, 10_000_000]))
    labels = [make_labels({"__name__": "m", "i": str(i)}) for i in range(len(lengths))]
    m = MatrixSteps(labels, [t[s:e] for s, e in zip(starts, ends, strict=True)],
                    [v[s:e] for s, e in zip(starts, ends, strict=True)], wend, rng)
    m.flat_cache = Flat(t, v, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))
    return m


def _call(func: str, m: MatrixSteps) -> VectorSteps:
    ctx = FuncContext(np.asarray(m.window_end), [], Annotations())
    args: list[Value] = [m]
    out = IMPLS[func](ctx, args)
    assert isinstance(out, VectorSteps)
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(matrices(), st.sampled_from(FUNCS))
def test_kernel_matches_numpy(m: MatrixSteps, func: str) -> None:
    assert fn_range._overtime is not None, "the _overtime extension is not built"
    native = fn_range.over_time_native([m], func)
    assert native is not None
    assert _bits(_call(func, m)) == _bits(native)
    with numpy_path():
        want = _call(func, m)
    if func not in ("max_over_time", "min_over_time"):
        assert _bits(native) == _bits(want)
        return
    # min/max: the numpy path's value but for the sign of a zero, which is Prometheus' loop's
    assert _bits(native)[0] == _bits(want)[0] and _bits(native)[2:] == _bits(want)[2:]
    assert native.values.shape == want.values.shape
    flat = m.flat_cache
    for r, (got, exp) in enumerate(zip(native.values.tolist(), want.values.tolist(), strict=True)):
        i = m.labels.index(native.labels[r])
        s, e = int(flat.starts[i]), int(flat.ends[i])
        for j, (g, x) in enumerate(zip(got, exp, strict=True)):
            if g == 0 and x == 0:
                ts = flat.t[s:e]
                we = int(m.window_end[j])
                lo = s + int(np.searchsorted(ts, we - m.range_ms, side="right"))
                hi = s + int(np.searchsorted(ts, we, side="right"))
                ref = _prometheus_extreme(flat.v[lo:hi].tolist(), func == "max_over_time")
                assert math.copysign(1.0, g) == math.copysign(1.0, ref)
            else:
                assert _value_bits([g]) == _value_bits([x])


def test_long_windows_take_pairwise_and_compensated_sums() -> None:
    # 12,000 samples per window: numpy's pairwise sum recurses past its 128-sample blocks, and the
    # kernel releases the GIL (more than its 32k samples plus windows); the second series cancels
    # (1e16 + 1 - 1e16 ...), which only the compensated replay gets right, and the third overflows,
    # which avg_over_time answers with its incremental mean.
    size = 12_000
    t = np.arange(1, size + 1, dtype=np.int64) * 1000
    rng = np.random.default_rng(7)
    series = [rng.standard_normal(size) * 1e3, np.tile([1e16, 1.0, -1e16, 0.5], size // 4), np.full(size, 1e308)]
    m = MatrixSteps([make_labels({"__name__": "m", "i": str(i)}) for i in range(3)], [t] * 3, series,
                    np.array([size * 1000, size * 500], dtype=np.int64), size * 1000)
    for func in ("sum_over_time", "avg_over_time", "max_over_time", "changes"):
        native = _call(func, m)
        with numpy_path():
            want = _call(func, m)
        assert _bits(native) == _bits(want)
    assert _call("sum_over_time", m).values[1, 0] == size // 4 * 1.5
    assert _call("avg_over_time", m).values[1, 0] == 0.375
    assert _call("avg_over_time", m).values[2, 0] == pytest.approx(1e308)


def test_anchored_and_histograms_take_the_numpy_path() -> None:
    t = np.array([1000, 2000, 3000], dtype=np.int64)
    anchored = MatrixSteps([make_labels({"__name__": "m"})], [t], [np.array([1.0, 2.0, 1.0])],
                           np.array([3000], dtype=np.int64), 2000, anchored=True, lookback_ms=300_000)
    assert fn_range.over_time_native([anchored], "changes") is None
    hist = MatrixSteps([make_labels({"__name__": "m"})], [t], [np.array([1.0, 2.0, 1.0])],
                       np.array([3000], dtype=np.int64), 2000, hists=[np.array([None, None, None], dtype=object)])
    assert fn_range.over_time_native([hist], "max_over_time") is None


QUERIES = [f"{f}(m[{r}])" for f in FUNCS for r in ("1m", "5m")] + [
    "max_over_time(m[30s] offset 20s)",
    "sum_over_time(m[1m] @ 200)",
    "avg_over_time(m[2m:10s])",
    "changes(m[1m] offset -15s)",
    "sum by (g) (count_over_time(m[1m]))",
    "last_over_time(m[45s])",
]

engine_value = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 5).map(float),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e16, -1e16, STALE_NAN]),
)


@st.composite
def stores(draw: st.DrawFn) -> MemorySeriesSelector:
    sel = MemorySeriesSelector()
    for i in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, 40))
        gaps = draw(st.lists(st.integers(1, 40_000), min_size=n, max_size=n))
        ts = np.cumsum(np.asarray(gaps, dtype=np.int64)) if n else np.zeros(0, dtype=np.int64)
        vals = np.asarray(draw(st.lists(engine_value, min_size=n, max_size=n)), dtype=np.float64)
        sel.add(make_labels({"__name__": "m", "i": str(i), "g": str(i % 2)}), ts, vals)
    return sel


def _answer(res: object) -> list[tuple[object, list[int], list[int]]]:
    return [(s.labels, np.asarray(s.timestamps).tolist(), _value_bits(s.values))
            for s in res.series]  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), st.sampled_from(QUERIES), st.integers(0, 600), st.integers(1, 60))
def test_engine_answers_match_numpy(sel: MemorySeriesSelector, query: str, start_s: int, step_s: int) -> None:
    # Positive zeros only: a window's min/max then has one answer (see the module docstring).
    assert fn_range._overtime is not None, "the _overtime extension is not built"
    eng = Engine()
    end_ms = (start_s + 20 * step_s) * 1000
    native = (_answer(eng.range(sel, query, start_s * 1000, end_ms, step_s * 1000)), _answer(eng.instant(sel, query, end_ms)))
    with numpy_path():
        want = (_answer(eng.range(sel, query, start_s * 1000, end_ms, step_s * 1000)), _answer(eng.instant(sel, query, end_ms)))
    assert native == want
