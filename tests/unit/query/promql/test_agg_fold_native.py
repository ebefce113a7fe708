"""The compiled single-lane ``sum``/``avg`` fold (query/promql/_aggfold.pyx) against the numpy path
it replaces (``agg_fold.SumAvg`` with the kernel switched off): bit-identical state and results
(NaN signs aside, see ``_bits``) on random rows folded in several batches (infinities, NaN, values
near the float64 limit so ``avg`` switches to the incremental mean, absent points, groups growing
between batches), and through the engine for ``sum``/``avg`` range queries. Hostile shapes raise
instead of writing out of bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.query.promql import agg_fold
from clearsight.query.promql.engine import Engine
from clearsight.store.memory import MemorySeriesSelector
from tests.support.spy import count_calls

value = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0, 1.7e308, -1.7e308, 1e-300]),
)


@st.composite
def batches(draw: st.DrawFn) -> tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]]:
    k = draw(st.integers(1, 4))
    out = []
    groups = 0
    for _ in range(draw(st.integers(1, 3))):
        groups = draw(st.integers(max(groups, 1), groups + 3))
        n = draw(st.integers(0, 12))
        vals = np.asarray(draw(st.lists(value, min_size=n * k, max_size=n * k)), dtype=np.float64).reshape(n, k)
        pres = np.asarray(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k)), dtype=bool).reshape(n, k)
        gid = np.asarray(draw(st.lists(st.integers(0, groups - 1), min_size=n, max_size=n)), dtype=np.int64)
        out.append((vals, pres, gid, groups))
    return k, out


def _fold(op: str, k: int, rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]],
          lanes: int = 1) -> agg_fold.SumAvg:
    fold = agg_fold.SumAvg(op, lanes, k)
    for vals, pres, gid, groups in rows:
        fold.add(vals, pres, gid, groups)
    return fold


def _bits(a: np.ndarray) -> list[int]:
    """The values' bits, every NaN as the one quiet NaN: the compiler may order the operands of a
    commutative addition either way, and the x86 result of NaN + NaN carries the first operand's
    sign. The sign of a NaN is not observable through the API (every NaN prints as ``NaN``)."""
    out = np.array(a, dtype=np.float64).ravel()
    out[np.isnan(out)] = math.nan
    return out.view(np.int64).tolist()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["sum", "avg"]), batches(), st.sampled_from([1, 2, 3]))
def test_kernel_matches_numpy_bit_for_bit(op: str, case: tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]],
                                          lanes: int) -> None:
    """One lane (``fold_sum_avg``), and lanes (``fold_sum_avg`` over the lane ids, then
    ``merge_lanes`` in ``finish``)."""
    assert agg_fold._aggfold is not None, "the compiled kernel is not built"
    k, rows = case
    native = _fold(op, k, rows, lanes)
    kernel, agg_fold._aggfold = agg_fold._aggfold, None
    try:
        reference = _fold(op, k, rows, lanes)
    finally:
        agg_fold._aggfold = kernel
    for name in ("s", "c", "cnt", "mean"):
        assert _bits(getattr(native, name)) == _bits(getattr(reference, name)), name
    assert native.seen.tolist() == reference.seen.tolist()
    assert native.incr.tolist() == reference.incr.tolist()
    got, want = native.finish(), reference.finish()
    assert _bits(got[0]) == _bits(want[0])
    assert got[1].tolist() == want[1].tolist() and got[2] == want[2]


def test_nan_from_opposite_infinities_then_nan_is_nan_on_both_paths() -> None:
    # inf + -inf gives x86's default NaN (sign set); adding NaN to it keeps one operand's sign,
    # and the compiled addition may take either: both must be NaN.
    vals = np.array([[math.inf], [-math.inf], [math.nan]])
    pres, gid = np.ones((3, 1), dtype=bool), np.zeros(3, dtype=np.int64)
    native = agg_fold.SumAvg("sum", 1, 1)
    native.add(vals, pres, gid, 1)
    kernel, agg_fold._aggfold = agg_fold._aggfold, None
    try:
        reference = agg_fold.SumAvg("sum", 1, 1)
        reference.add(vals, pres, gid, 1)
    finally:
        agg_fold._aggfold = kernel
    assert math.isnan(float(native.finish()[0][0, 0])) and math.isnan(float(reference.finish()[0][0, 0]))
    assert _bits(native.s) == _bits(reference.s)


@pytest.mark.parametrize("query", ["sum by (g) (m)", "avg by (g) (m)", "sum(m)", "avg without (i) (m * 1e300)",
                                   "avg(m)", "avg(m * 1e300)"])
def test_engine_range_results_unchanged(query: str) -> None:
    """(160 series: ``sum(m)`` and ``avg(m)`` have one group of more than ``2 * LANES`` members, summed in lanes.)"""
    rng = np.random.default_rng(7)
    sel = MemorySeriesSelector()
    for i in range(160):
        ts = np.arange(0, 600_000, 15_000, dtype=np.int64) + int(rng.integers(0, 5_000))
        vals = rng.normal(0, 1e3, ts.shape[0])
        vals[rng.random(ts.shape[0]) < 0.05] = math.inf
        sel.add(make_labels({"__name__": "m", "g": str(i % 3), "i": str(i)}), ts, vals)
    eng = Engine()
    native = eng.range(sel, query, 60_000, 600_000, 20_000)
    kernel, agg_fold._aggfold = agg_fold._aggfold, None
    try:
        reference = eng.range(sel, query, 60_000, 600_000, 20_000)
    finally:
        agg_fold._aggfold = kernel
    assert [s.labels for s in native.series] == [s.labels for s in reference.series]
    for a, b in zip(native.series, reference.series, strict=True):
        assert a.timestamps.tolist() == b.timestamps.tolist()
        assert _bits(a.values) == _bits(b.values)


def test_hostile_shapes_raise() -> None:
    assert agg_fold._aggfold is not None
    fold = agg_fold.SumAvg("sum", 1, 2)
    fold.add(np.ones((1, 2)), np.ones((1, 2), dtype=bool), np.zeros(1, dtype=np.int64), 1)
    with pytest.raises(ValueError, match="group id out of range"):
        fold.add(np.ones((1, 2)), np.ones((1, 2), dtype=bool), np.asarray([5], dtype=np.int64), 1)
    with pytest.raises(ValueError, match="differ in shape"):
        fold.add(np.ones((2, 2)), np.ones((1, 2), dtype=bool), np.zeros(2, dtype=np.int64), 1)


def test_large_groups_merge_their_lanes_in_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    assert agg_fold._aggfold is not None
    sel = MemorySeriesSelector()
    ts = np.arange(0, 120_000, 15_000, dtype=np.int64)
    for i in range(3 * agg_fold.LANES):
        sel.add(make_labels({"__name__": "m", "i": str(i)}), ts, np.full(ts.shape, float(i)))
    merged = count_calls(monkeypatch, agg_fold._aggfold, "merge_lanes")
    res = Engine().range(sel, "sum(m)", 0, 105_000, 15_000)
    assert merged.calls == 1
    assert res.series[0].values.tolist() == [float(sum(range(3 * agg_fold.LANES)))] * ts.shape[0]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["sum", "avg"]), batches())
def test_one_call_sum_avg_matches_the_fold_and_its_finish(op: str, case: tuple[int, list[tuple[np.ndarray, np.ndarray,
                                                                                                np.ndarray, int]]]) -> None:
    """``_aggfold.sum_avg`` (what ``aggregations.aggregate`` calls for a few rows) against
    ``SumAvg`` with the compiled fold and numpy's ``finish`` and against the numpy fold (bit for
    bit, NaN signs aside as in ``_bits``: a NaN's sign follows the order in which C and numpy meet
    NaN operands, e.g. ``[inf, -inf, nan]`` in a group, and no answer shows it). The batches are
    one vector here."""
    assert agg_fold._aggfold is not None
    k, rows = case
    groups = max(g for _, _, _, g in rows)
    vals = np.concatenate([r[0] for r in rows])
    pres = np.concatenate([r[1] for r in rows])
    gid = np.concatenate([r[2] for r in rows])
    got, seen = agg_fold._aggfold.sum_avg(vals, pres.view(np.uint8), gid, groups, op == "avg")
    fold = agg_fold.SumAvg(op, 1, k, groups)
    fold.add(vals, pres, gid, groups)
    want, want_seen, _ = fold.finish()
    assert _bits(got) == _bits(want)
    assert seen.tolist() == want_seen.tolist()
    kernel, agg_fold._aggfold = agg_fold._aggfold, None
    try:
        reference = agg_fold.SumAvg(op, 1, k, groups)
        reference.add(vals, pres, gid, groups)
    finally:
        agg_fold._aggfold = kernel
    assert _bits(got) == _bits(reference.finish()[0])


def test_one_call_sum_avg_refuses_hostile_shapes() -> None:
    assert agg_fold._aggfold is not None
    ones, pres = np.ones((2, 3)), np.ones((2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="group id out of range"):
        agg_fold._aggfold.sum_avg(ones, pres, np.asarray([0, 2], dtype=np.int64), 2, False)
    with pytest.raises(ValueError, match="differ in shape"):
        agg_fold._aggfold.sum_avg(ones, pres[:1], np.zeros(2, dtype=np.int64), 1, False)
    with pytest.raises(ValueError, match="negative group count"):
        agg_fold._aggfold.sum_avg(ones[:0], pres[:0], np.zeros(0, dtype=np.int64), -1, True)
    res, seen = agg_fold._aggfold.sum_avg(ones[:0], pres[:0], np.zeros(0, dtype=np.int64), 0, True)
    assert res.shape == (0, 3) and seen.shape == (0, 3)


def test_small_range_sum_takes_the_one_call_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    assert agg_fold._aggfold is not None
    sel = MemorySeriesSelector()
    ts = np.arange(0, 120_000, 15_000, dtype=np.int64)
    for i in range(4):
        sel.add(make_labels({"__name__": "m", "g": str(i % 2), "i": str(i)}), ts, np.full(ts.shape, float(i)))
    one_call = count_calls(monkeypatch, agg_fold._aggfold, "sum_avg")
    res = Engine().range(sel, "sum by (g) (m)", 0, 105_000, 15_000)
    assert one_call.calls == 1
    assert [s.values.tolist() for s in res.series] == [[2.0] * 8, [4.0] * 8]


_ONE_STEP_VALUES = st.sampled_from([0.0, -0.0, 1.0, -2.5, 0.1, 1e-300, 3e307, 1.7e308, -1.7e308, math.inf, -math.inf,
                                    math.nan, 123456789.123, -1e16, 1e16])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["sum", "avg"]), st.data())
def test_an_instant_querys_sum_avg_is_the_one_step_pythons(op: str, data: st.DataObject) -> None:
    """An instant query's ``sum``/``avg`` of up to ``_ONE_STEP``'s rows is the one compiled call
    (``_aggfold.sum_avg``) where there is one: the same single-lane operations as the one-step
    Python functions (``aggregations._sum_one_step``/``_avg_one_step``), bit for bit on every group
    with members (NaN signs aside, ``_bits``), overflow to the incremental mean included."""
    from clearsight.query.promql import aggregations

    assert agg_fold._aggfold is not None
    limit = aggregations._ONE_STEP[op][0]
    n = data.draw(st.integers(0, limit), label="rows")
    groups = data.draw(st.integers(1, 4), label="groups")
    vals = np.asarray(data.draw(st.lists(_ONE_STEP_VALUES, min_size=n, max_size=n)), dtype=np.float64)[:, None]
    pres = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)[:, None]
    gid = data.draw(st.lists(st.integers(0, groups - 1), min_size=n, max_size=n))
    python = aggregations._ONE_STEP[op][1]
    want, want_seen = python(op, vals, pres, gid, groups)
    got, seen = agg_fold._aggfold.sum_avg(vals, pres.view(np.uint8), np.asarray(gid, dtype=np.int64), groups,
                                          op == "avg")
    assert seen.tolist() == want_seen.tolist()
    members = want_seen[:, 0]
    assert _bits(got[members]) == _bits(want[members])


def test_an_instant_querys_avg_takes_the_compiled_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """``avg`` and ``sum`` at one step go to ``_aggfold.sum_avg`` (one call), not Python per row."""
    sel = MemorySeriesSelector()
    ts = np.asarray([0, 15_000], dtype=np.int64)
    for i in range(24):
        sel.add(make_labels({"__name__": "m", "i": str(i)}), ts, np.full(ts.shape, float(i) + 0.1))
    kernel = agg_fold._aggfold
    monkeypatch.setattr(agg_fold, "_aggfold", None)  # the one-step Python functions
    want = [Engine().instant(sel, q, 15_000).series[0].values.tolist() for q in ("avg(m)", "sum(m)")]
    monkeypatch.setattr(agg_fold, "_aggfold", kernel)
    calls = count_calls(monkeypatch, agg_fold._aggfold, "sum_avg")
    assert [Engine().instant(sel, q, 15_000).series[0].values.tolist() for q in ("avg(m)", "sum(m)")] == want
    assert calls.calls == 2
