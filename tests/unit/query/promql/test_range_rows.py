"""A range result's rows: the points of rows present at some steps only are cut from one array
of times and one of values (``engine._partial_rows``); every row's points are the steps where it is
present and its values there, as cutting each row apart gives them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.query.promql.engine import _range_series
from clearsight.query.promql.values import VectorSteps


@st.composite
def vectors(draw: st.DrawFn) -> tuple[VectorSteps, np.ndarray]:
    k = draw(st.integers(1, 8))
    kinds = draw(st.lists(st.sampled_from(["full", "absent", "some"]), max_size=8))
    present = np.zeros((len(kinds), k), dtype=bool)
    for i, kind in enumerate(kinds):
        if kind == "full":
            present[i] = True
        elif kind == "some":
            present[i] = draw(st.lists(st.booleans(), min_size=k, max_size=k))
    values = np.asarray(draw(st.lists(st.floats(allow_nan=True), min_size=len(kinds) * k,
                                      max_size=len(kinds) * k)), dtype=np.float64).reshape(len(kinds), k)
    labels = [(("__name__", "m"), ("i", f"{9 - i}")) for i in range(len(kinds))]  # sorting reverses the rows
    ts = np.arange(k, dtype=np.int64) * 15_000 + 1_000
    return VectorSteps(labels, values, present), ts


@settings(max_examples=300, deadline=None)
@given(vectors())
def test_rows_are_each_rows_present_points(case: tuple[VectorSteps, np.ndarray]) -> None:
    v, ts = case
    got = _range_series(v, ts)
    want = sorted(((lbl, ts[p], row[p]) for lbl, p, row in zip(v.labels, v.present, v.values, strict=True)
                   if p.any()), key=lambda r: r[0])
    assert [s.labels for s in got] == [w[0] for w in want]
    for s, (_, t, vals) in zip(got, want, strict=True):
        assert s.timestamps.dtype == np.int64 and s.values.dtype == np.float64
        assert s.timestamps.tolist() == t.tolist()
        assert s.values.tobytes() == vals.tobytes()  # bit for bit (NaN payloads, -0.0)
        assert s.timestamps is not ts
    v.values[:] = 7.0  # the result does not share the evaluator's arrays
    for s, (_, _t, vals) in zip(got, want, strict=True):
        assert s.values.tobytes() == vals.tobytes()
