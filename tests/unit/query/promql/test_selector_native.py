"""The compiled instant-vector selector kernel (query/promql/_selector.pyx) against the numpy path
(``latest_sample_index_numpy``): the same indices and presence on random series (empty ones, stale
markers, NaN, steps before, between and after the samples, one step and many, steps out of order,
and a range query's many ascending steps, which the kernel walks forward, as a select returns them), and the same engine answers for selector queries with the kernel switched
off. Shapes that do not fit raise instead of reading out of bounds."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.model.samples import STALE_NAN, SeriesData, stale_mask
from clearsight.query.promql import _selector, engine  # type: ignore[attr-defined]
from clearsight.query.promql.engine import Engine, latest_sample_index, latest_sample_index_numpy
from clearsight.store.memory import MemorySeriesSelector
from tests.support.spy import count_calls

value = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([STALE_NAN, math.nan, 0.0, -0.0]))


@st.composite
def series_data(draw: st.DrawFn) -> tuple[SeriesData, np.ndarray, int, int]:
    """Series as a select over ``[lo, hi]`` returns them (``lo`` = the first step - lookback + 1, as
    ``vector_selector`` asks), steps anywhere around them."""
    eff = np.asarray(draw(st.lists(st.integers(-50, 260), min_size=1, max_size=8)), dtype=np.int64)
    if draw(st.booleans()):
        eff = np.sort(eff)
    lookback = draw(st.integers(1, 120))
    lo = int(eff.min()) - lookback + 1
    return _draw_series(draw, draw(st.integers(0, 6)), lo, 300, 12), eff, lo, lookback


def _draw_series(draw: st.DrawFn, n: int, lo: int, hi: int, max_samples: int) -> SeriesData:
    """``n`` series of up to ``max_samples`` samples each at distinct times in [lo, hi]."""
    ts_all: list[int] = []
    vs_all: list[float] = []
    offsets = [0]
    for _ in range(n):
        ts = sorted(set(draw(st.lists(st.integers(lo, hi), max_size=max_samples))))
        ts_all += ts
        vs_all += draw(st.lists(value, min_size=len(ts), max_size=len(ts)))
        offsets.append(len(ts_all))
    return SeriesData([make_labels({"i": str(i)}) for i in range(n)], np.asarray(offsets, dtype=np.int64),
                      np.asarray(ts_all, dtype=np.int64), np.asarray(vs_all, dtype=np.float64))


@settings(max_examples=400, deadline=None)
@given(series_data())
def test_the_kernel_answers_as_the_numpy_path(case: tuple[SeriesData, np.ndarray, int, int]) -> None:
    data, eff, lo, lookback = case
    idx, ok = _selector.latest_index(data.offsets, data.timestamps, data.values, eff, lo, lookback)
    assert ok.shape == (len(data), eff.shape[0]) and ok.dtype == np.bool_ and idx.dtype == np.int64
    if data.timestamps.size == 0:  # series without samples (the numpy path cannot index them)
        assert not ok.any() and not idx.any()
        return
    ref_idx, ref_ok = latest_sample_index_numpy(data, eff, lo, lookback)
    np.testing.assert_array_equal(ok, np.broadcast_to(ref_ok, ok.shape))
    # where a sample is present both name the same one; elsewhere both clip the same way
    np.testing.assert_array_equal(idx, np.broadcast_to(ref_idx, idx.shape))


@settings(max_examples=400, deadline=None)
@given(series_data())
def test_the_gathering_kernel_answers_as_the_numpy_path(case: tuple[SeriesData, np.ndarray, int, int]) -> None:
    """``latest_rows``: the values and timestamps the numpy path gathers at its indices (absent
    cells too), its presence, and how many series ``compact`` would keep."""
    data, eff, lo, lookback = case
    if data.timestamps.size == 0:
        with pytest.raises(ValueError):
            _selector.latest_rows(data.offsets, data.timestamps, data.values, eff, lo, lookback)
        return
    values, ok, sample_ts, rows = _selector.latest_rows(data.offsets, data.timestamps, data.values, eff, lo,
                                                        lookback)
    ref_idx, ref_ok = latest_sample_index_numpy(data, eff, lo, lookback)
    ref_idx = np.broadcast_to(ref_idx, ok.shape)
    np.testing.assert_array_equal(ok, np.broadcast_to(ref_ok, ok.shape))
    np.testing.assert_array_equal(values.view(np.int64), data.values[ref_idx].view(np.int64))  # NaN bits too
    np.testing.assert_array_equal(sample_ts, data.timestamps[ref_idx])
    assert rows == int(ok.any(axis=1).sum())


@st.composite
def range_data(draw: st.DrawFn) -> tuple[SeriesData, np.ndarray, int, int]:
    """A range query's steps (ascending, evenly spaced, many) over series denser and sparser than
    them, with repeated steps (``@``) now and then: the kernel walks such steps forward."""
    k = draw(st.integers(1, 60))
    step = draw(st.integers(0, 25))
    eff = np.arange(k, dtype=np.int64) * step + draw(st.integers(-50, 100))
    lookback = draw(st.integers(1, 120))
    lo = int(eff.min()) - lookback + 1
    return _draw_series(draw, draw(st.integers(1, 5)), lo, int(eff.max()) + 5, 80), eff, lo, lookback


@settings(max_examples=400, deadline=None)
@given(range_data())
def test_the_kernels_walking_ascending_steps_answer_as_the_numpy_path(
        case: tuple[SeriesData, np.ndarray, int, int]) -> None:
    data, eff, lo, lookback = case
    idx, ok = _selector.latest_index(data.offsets, data.timestamps, data.values, eff, lo, lookback)
    if data.timestamps.size == 0:
        assert not ok.any() and not idx.any()
        return
    ref_idx, ref_ok = latest_sample_index_numpy(data, eff, lo, lookback)
    ref_idx, ref_ok = np.broadcast_to(ref_idx, ok.shape), np.broadcast_to(ref_ok, ok.shape)
    np.testing.assert_array_equal(ok, ref_ok)
    np.testing.assert_array_equal(idx, ref_idx)
    values, ok2, sample_ts, rows = _selector.latest_rows(data.offsets, data.timestamps, data.values, eff, lo,
                                                         lookback)
    np.testing.assert_array_equal(ok2, ref_ok)
    np.testing.assert_array_equal(values.view(np.int64), data.values[ref_idx].view(np.int64))
    np.testing.assert_array_equal(sample_ts, data.timestamps[ref_idx])
    assert rows == int(ref_ok.any(axis=1).sum())


def test_bad_shapes_raise() -> None:
    ts = np.asarray([1, 2, 3], dtype=np.int64)
    vs = np.asarray([1.0, 2.0, 3.0])
    eff = np.asarray([3], dtype=np.int64)
    for kernel in (_selector.latest_index, _selector.latest_rows):
        with pytest.raises(ValueError):
            kernel(np.asarray([0, 5], dtype=np.int64), ts, vs, eff, 0, 10)
        with pytest.raises(ValueError):
            kernel(np.asarray([0, 3], dtype=np.int64), ts, vs[:2], eff, 0, 10)
        with pytest.raises(ValueError):
            kernel(np.asarray([-1, 3], dtype=np.int64), ts, vs, eff, 0, 10)
        with pytest.raises(ValueError, match="offsets decrease"):  # a middle offset past the samples
            kernel(np.asarray([0, 500, 3], dtype=np.int64), ts, vs, eff, 0, 10)
        with pytest.raises(ValueError):  # not int64
            kernel(np.asarray([0, 3], dtype=np.int32), ts, vs, eff, 0, 10)


def _random_store(seed: int, series: int, samples: int, stale_share: Callable[[int], float],
                  labels: Callable[[int], dict[str, str]]) -> MemorySeriesSelector:
    """``series`` series ``m`` of ``samples`` random samples in the first hour, about
    ``stale_share(i)`` of series ``i``'s stale markers."""
    rng = np.random.default_rng(seed)
    sel = MemorySeriesSelector()
    for i in range(series):
        ts = np.sort(rng.choice(np.arange(0, 3_600_000, 1000), size=samples, replace=False)).astype(np.int64)
        vs = rng.normal(size=samples)
        vs[rng.random(samples) < stale_share(i)] = STALE_NAN
        sel.add(make_labels({"__name__": "m", **labels(i)}), ts, vs)
    return sel


def test_the_engine_uses_it_and_answers_alike_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    sel = _random_store(7, 20, 300, lambda i: 0.05, lambda i: {"i": str(i % 7), "j": str(i)})
    queries = ["m", "m offset 1m", "m @ 1800", "sum by (i) (m)", "m > 0", "timestamp(m)"]
    kernel = count_calls(monkeypatch, _selector, "latest_index")
    gather = count_calls(monkeypatch, _selector, "latest_rows")
    compiled = [(Engine().instant(sel, q, 1_800_000).series, Engine().range(sel, q, 0, 3_600_000, 15_000).series)
                for q in queries]
    assert gather.calls >= 2 * len(queries) and kernel.calls == 0  # float selectors gather in the kernel
    monkeypatch.setattr(engine, "_selector", None)
    for q, (inst, rng_) in zip(queries, compiled, strict=True):
        ref_i = Engine().instant(sel, q, 1_800_000).series
        ref_r = Engine().range(sel, q, 0, 3_600_000, 15_000).series
        for got, ref in ((inst, ref_i), (rng_, ref_r)):
            assert [s.labels for s in got] == [s.labels for s in ref], q
            for a, b in zip(got, ref, strict=True):
                np.testing.assert_array_equal(a.timestamps, b.timestamps)
                np.testing.assert_array_equal(a.values, b.values)
    assert latest_sample_index is engine.latest_sample_index


@settings(max_examples=400, deadline=None)
@given(series_data())
def test_range_runs_answer_as_numpy(case: tuple[SeriesData, np.ndarray, int, int]) -> None:
    """``range_runs``: the stale markers' positions, and the series left with a sample without them
    (None when all are), as ``_float_matrix``'s numpy path finds them."""
    data = case[0]
    gone, nonempty = _selector.range_runs(data.offsets, data.values)
    want_gone = np.flatnonzero(stale_mask(data.values))
    np.testing.assert_array_equal(gone, want_gone)
    offs = data.offsets - np.searchsorted(want_gone, data.offsets, side="left")
    want = np.flatnonzero(offs[1:] > offs[:-1])
    if nonempty is None:
        assert want.tolist() == list(range(len(data)))
    else:
        assert nonempty.tolist() == want.tolist() and want.size < len(data)


def test_range_selectors_answer_alike_without_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    # some series mostly stale markers
    sel = _random_store(11, 12, 200, lambda i: 0.9 if i % 5 == 0 else 0.05, lambda i: {"i": str(i)})
    queries = ["rate(m[1m])", "count_over_time(m[30s])", "max_over_time(m[2m] offset 1m)", "m[1m]"]
    runs = count_calls(monkeypatch, _selector, "range_runs")
    compiled = [Engine().instant(sel, q, 1_800_000).series for q in queries]
    compiled += [Engine().range(sel, q, 0, 3_600_000, 15_000).series for q in queries[:-1]]
    assert runs.calls == 2 * len(queries) - 1
    monkeypatch.setattr(engine, "_selector", None)
    ref = [Engine().instant(sel, q, 1_800_000).series for q in queries]
    ref += [Engine().range(sel, q, 0, 3_600_000, 15_000).series for q in queries[:-1]]
    for got, want in zip(compiled, ref, strict=True):
        assert [s.labels for s in got] == [s.labels for s in want]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a.timestamps, b.timestamps)
            np.testing.assert_array_equal(a.values.view(np.int64), b.values.view(np.int64))


@given(st.integers(-(2**63), 2**63 - 1))
def test_one_step_is_a_new_one_element_column(t: int) -> None:
    """``one_step`` (an instant query's step column) is what ``np.array([t], dtype=np.int64)``
    makes: a new, writable, contiguous array each call."""
    a, b = _selector.one_step(t), _selector.one_step(t)
    assert a is not b and a.dtype == np.int64 and a.shape == (1,) and a.tolist() == [t]
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.owndata
    a[0] = 0
    assert b.tolist() == [t]
